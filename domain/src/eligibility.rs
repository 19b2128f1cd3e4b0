//! Which practices receive referrals, and which receive a given referral.
//!
//! A practice receives referrals when it is a specialist practice that
//! Handoff staff have verified and that has not paused its intake. It
//! receives a given referral when, in addition, its specialty and region are
//! the referral's and its intake covers the referral's category (and
//! subcategory). The server's directory, the routing actor's "choose for me"
//! and the web client's list of candidates all apply this one rule.

use handoff_protocol::v1::{Intake, PracticeKind};
use handoff_protocol::ws::Routing;

/// What eligibility looks at in a practice, borrowed from whichever record
/// the caller holds (the store's, or a directory entry).
#[derive(Clone, Copy, Debug)]
pub struct Receiver<'a> {
    /// Referring office or specialist practice.
    pub kind: PracticeKind,
    /// Verified by Handoff staff.
    pub verified: bool,
    /// Intake paused by the practice or by staff.
    pub paused: bool,
    /// The specialist's specialty slug.
    pub specialty: Option<&'a str>,
    /// The practice's region slug.
    pub region: Option<&'a str>,
    /// The categories it accepts; empty means every category of its specialty.
    pub intake: &'a [Intake],
}

/// Whether a practice receives referrals at all: a verified specialist
/// practice whose intake is not paused.
pub fn receives_referrals(kind: PracticeKind, verified: bool, paused: bool) -> bool {
    kind == PracticeKind::Specialist && verified && !paused
}

/// Whether an intake accepts `category` (and `subcategory`). An empty intake
/// accepts every category; an entry without a subcategory accepts all of its
/// category's; an entry for one subcategory also accepts referrals that name
/// no subcategory.
pub fn covers(intake: &[Intake], category: &str, subcategory: Option<&str>) -> bool {
    intake.is_empty()
        || intake.iter().any(|i| {
            i.category == category
                && match (i.subcategory.as_deref(), subcategory) {
                    (None, _) | (Some(_), None) => true,
                    (Some(a), Some(b)) => a == b,
                }
        })
}

/// Whether the practice can receive this referral now.
pub fn eligible(p: &Receiver<'_>, r: &Routing) -> bool {
    receives_referrals(p.kind, p.verified, p.paused)
        && p.specialty == Some(r.specialty.as_str())
        && p.region == Some(r.region.as_str())
        && covers(p.intake, &r.category, r.subcategory.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::tests::routing;

    fn intake(c: &str, s: Option<&str>) -> Intake {
        Intake { category: c.into(), subcategory: s.map(Into::into) }
    }

    fn cardiology<'a>(intake: &'a [Intake]) -> Receiver<'a> {
        Receiver {
            kind: PracticeKind::Specialist,
            verified: true,
            paused: false,
            specialty: Some("cardiology"),
            region: Some("fraser"),
            intake,
        }
    }

    #[test]
    fn only_verified_unpaused_specialists_receive() {
        assert!(receives_referrals(PracticeKind::Specialist, true, false));
        assert!(!receives_referrals(PracticeKind::Specialist, false, false), "unverified");
        assert!(!receives_referrals(PracticeKind::Specialist, true, true), "paused");
        assert!(!receives_referrals(PracticeKind::Referring, true, false), "a referring office");
    }

    #[test]
    fn intake_coverage() {
        assert!(covers(&[], "arrhythmia", None), "an empty intake takes every category");
        assert!(covers(&[], "arrhythmia", Some("svt")));
        let whole = [intake("arrhythmia", None)];
        assert!(covers(&whole, "arrhythmia", None));
        assert!(covers(&whole, "arrhythmia", Some("svt")), "a whole category takes its subcategories");
        assert!(!covers(&whole, "heart-failure", None), "another category");
        let one = [intake("arrhythmia", Some("svt"))];
        assert!(covers(&one, "arrhythmia", Some("svt")));
        assert!(!covers(&one, "arrhythmia", Some("afib")), "another subcategory");
        assert!(covers(&one, "arrhythmia", None), "a referral naming no subcategory");
    }

    #[test]
    fn eligibility_needs_every_condition() {
        let whole = [intake("arrhythmia", None)];
        let r = routing("cardiology", "arrhythmia", None, "fraser");
        assert!(eligible(&cardiology(&whole), &r));
        assert!(!eligible(&Receiver { verified: false, ..cardiology(&whole) }, &r), "unverified");
        assert!(!eligible(&Receiver { paused: true, ..cardiology(&whole) }, &r), "paused");
        assert!(!eligible(&Receiver { kind: PracticeKind::Referring, ..cardiology(&whole) }, &r), "referring office");
        assert!(!eligible(&Receiver { specialty: Some("dermatology"), ..cardiology(&whole) }, &r), "specialty");
        assert!(!eligible(&Receiver { specialty: None, ..cardiology(&whole) }, &r), "no specialty");
        assert!(!eligible(&Receiver { region: Some("island"), ..cardiology(&whole) }, &r), "region");
        assert!(!eligible(&Receiver { region: None, ..cardiology(&whole) }, &r), "no region");
        assert!(!eligible(&cardiology(&[intake("heart-failure", None)]), &r), "intake");
    }
}
