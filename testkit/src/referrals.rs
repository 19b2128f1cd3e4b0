//! What a fixture referral says: where it is routed and the patient content
//! the client seals.

use handoff_crypto::ReferralContent;
use handoff_crypto::referral::Demographics;
use handoff_protocol::ws::{Routing, Urgency};

/// Routine cardiology in Fraser, in `category` (a cardiology taxonomy slug),
/// the routing that [`verified_specialist`](crate::verified_specialist) practices take.
pub fn routing(category: &str) -> Routing {
    Routing {
        specialty: "cardiology".into(),
        category: category.into(),
        subcategory: None,
        region: "fraser".into(),
        urgency: Urgency::Routine,
    }
}

/// A full, realistic referral for the patient `name`: every demographic
/// field, a reason and clinical details. The same as
/// `referral_content(name).build()`.
pub fn content(name: &str) -> ReferralContent {
    referral_content(name).build()
}

/// A builder starting from [`content`]'s realistic referral for `name`.
pub fn referral_content(name: &str) -> ContentBuilder {
    ContentBuilder {
        content: ReferralContent {
            patient: Demographics {
                name: name.into(),
                date_of_birth: "1961-04-12".into(),
                sex: "F".into(),
                health_number: "9876 543 210".into(),
                phone: "604-555-0199".into(),
                address: "1234 Kingsway, Burnaby BC".into(),
            },
            reason: "Intermittent palpitations with presyncope".into(),
            clinical_details: "Holter showed runs of SVT; metoprolol 25 mg bid; TSH normal".into(),
            free_sender: None,
        },
    }
}

/// Builds the patient content of a referral, field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "call build() to get the content"]
pub struct ContentBuilder {
    content: ReferralContent,
}

impl ContentBuilder {
    /// Only the patient's name; every other field is empty (for a benchmark
    /// that controls the payload's size exactly).
    pub fn bare(name: &str) -> Self {
        Self { content: ReferralContent { patient: Demographics { name: name.into(), ..Default::default() }, ..Default::default() } }
    }

    /// Uses this date of birth (`YYYY-MM-DD`).
    pub fn date_of_birth(mut self, date: impl Into<String>) -> Self {
        self.content.patient.date_of_birth = date.into();
        self
    }

    /// Uses this reason for referral.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.content.reason = reason.into();
        self
    }

    /// Uses these clinical details.
    pub fn clinical_details(mut self, details: impl Into<String>) -> Self {
        self.content.clinical_details = details.into();
        self
    }

    /// Makes the clinical details `bytes` bytes of filler, which sizes the
    /// sealed payload.
    pub fn clinical_details_bytes(self, bytes: usize) -> Self {
        self.clinical_details("x".repeat(bytes))
    }

    /// The content.
    pub fn build(self) -> ReferralContent {
        self.content
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_content_is_sized_by_its_details() {
        let c = ContentBuilder::bare("Bench Patient 3").date_of_birth("1970-01-01").reason("benchmark").clinical_details_bytes(500).build();
        let want = ReferralContent {
            patient: Demographics { name: "Bench Patient 3".into(), date_of_birth: "1970-01-01".into(), ..Default::default() },
            reason: "benchmark".into(),
            clinical_details: "x".repeat(500),
            free_sender: None,
        };
        assert_eq!(c, want);
        assert_eq!(content("Ada").patient.health_number, "9876 543 210");
        assert_eq!(routing("heart-failure").category, "heart-failure");
    }
}
