//! The standard layout of a referral's PDF.

use handoff_crypto::referral::{ReferralContent, SenderRole};

use crate::{Document, Section};

/// What a referral's PDF shows, in plaintext: what the client knows about the
/// referral, and its opened content.
#[derive(Clone, Debug)]
pub struct ReferralPdf<'a> {
    /// The referral number, `HR-XXXX-XXXX`.
    pub number: String,
    /// When it was sent, already formatted for the reader.
    pub sent_at: String,
    /// Its status as the reader sees it ("Sent", "Accepted", ...).
    pub status: String,
    /// The receiving practice's name.
    pub to_practice: String,
    /// The sending practice's name, for a practice's referral (`None` for a
    /// free referral, whose sender is in [`ReferralContent::free_sender`]).
    pub from_practice: Option<String>,
    /// The urgency as shown ("Routine", "Urgent", ...).
    pub urgency: String,
    /// The human category path: "Specialty › Category › Subcategory, Region".
    pub category: String,
    /// The opened content: patient, reason, clinical details, free sender.
    pub content: &'a ReferralContent,
    /// The attachments' file names.
    pub attachments: Vec<String>,
}

/// What an empty value prints as.
const NOT_GIVEN: &str = "Not given";

fn row(label: &str, value: &str) -> (String, String) {
    let value = value.trim();
    (label.to_owned(), if value.is_empty() { NOT_GIVEN.to_owned() } else { value.to_owned() })
}

/// The standard layout of a referral: its title, a summary (number, date
/// sent, status, receiving practice, urgency, category), the patient, the
/// reason and clinical details, who sent it (a free sender's details, or the
/// sending practice) and the attachments' names.
pub fn referral_document(input: &ReferralPdf) -> Document {
    let content = input.content;
    let patient = &content.patient;
    let summary = Section {
        heading: "Summary".into(),
        fields: vec![
            row("Referral number", &input.number),
            row("Date sent", &input.sent_at),
            row("Status", &input.status),
            row("Receiving practice", &input.to_practice),
            row("Urgency", &input.urgency),
            row("Category", &input.category),
        ],
        text: Vec::new(),
    };
    let patient = Section {
        heading: "Patient".into(),
        fields: vec![
            row("Name", &patient.name),
            row("Date of birth", &patient.date_of_birth),
            row("Sex", &patient.sex),
            row("Health number", &patient.health_number),
            row("Phone", &patient.phone),
            row("Address", &patient.address),
        ],
        text: Vec::new(),
    };
    let referral = Section {
        heading: "Referral".into(),
        fields: Vec::new(),
        text: vec![row("Reason for referral", &content.reason), row("Clinical details", &content.clinical_details)],
    };
    let sender_fields = match (&content.free_sender, &input.from_practice) {
        (Some(free), _) => vec![
            row(
                "Role",
                match free.role {
                    SenderRole::Moa => "MOA / administrator, for the referring provider",
                    SenderRole::Provider => "The referring provider",
                },
            ),
            row("Name", &free.name),
            row("Email", &free.email),
            row("Referring provider", &free.provider_name),
            row("MSP number", &free.provider_msp),
            row("Clinic", &free.clinic_name),
            row("Clinic phone", &free.clinic_phone),
            row("Clinic address", &free.clinic_address),
        ],
        (None, Some(practice)) => vec![row("Practice", practice)],
        (None, None) => vec![row("Practice", "")],
    };
    let sender = Section { heading: "Sent by".into(), fields: sender_fields, text: Vec::new() };
    let files = if input.attachments.is_empty() { "None".to_owned() } else { input.attachments.join("\n") };
    let attachments = Section { heading: "Attachments".into(), fields: vec![row("Files", &files)], text: Vec::new() };
    Document {
        title: format!("Referral {}", input.number),
        number: input.number.clone(),
        sections: vec![summary, patient, referral, sender, attachments],
    }
}

#[cfg(test)]
mod tests {
    use handoff_crypto::referral::{Demographics, FreeSender};

    use super::*;

    fn input(content: &ReferralContent) -> ReferralPdf<'_> {
        ReferralPdf {
            number: "HR-7K2M-9QXD".into(),
            sent_at: "2026-12-01 09:30".into(),
            status: "Sent".into(),
            to_practice: "Harbour Cardiology".into(),
            from_practice: Some("Kits Family Practice".into()),
            urgency: "Routine".into(),
            category: "Cardiology › Arrhythmia › Palpitations, Vancouver Coastal".into(),
            content,
            attachments: Vec::new(),
        }
    }

    fn field<'d>(doc: &'d Document, heading: &str, label: &str) -> Option<&'d str> {
        let section = doc.sections.iter().find(|s| s.heading == heading)?;
        section.fields.iter().chain(&section.text).find(|(l, _)| l == label).map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_practice_referral_names_the_sending_practice_and_no_attachments_as_none() {
        let content = ReferralContent { patient: Demographics { name: "Ada Lovelace".into(), ..Default::default() }, ..Default::default() };
        let doc = referral_document(&input(&content));
        assert_eq!(doc.title, "Referral HR-7K2M-9QXD");
        assert_eq!(doc.number, "HR-7K2M-9QXD");
        let headings: Vec<&str> = doc.sections.iter().map(|s| s.heading.as_str()).collect();
        assert_eq!(headings, ["Summary", "Patient", "Referral", "Sent by", "Attachments"]);
        assert_eq!(field(&doc, "Sent by", "Practice"), Some("Kits Family Practice"));
        assert_eq!(field(&doc, "Attachments", "Files"), Some("None"));
        assert_eq!(field(&doc, "Patient", "Name"), Some("Ada Lovelace"));
        assert_eq!(field(&doc, "Patient", "Phone"), Some(NOT_GIVEN), "an empty value says so");
        assert_eq!(field(&doc, "Summary", "Receiving practice"), Some("Harbour Cardiology"));
    }

    #[test]
    fn a_free_referral_shows_the_free_senders_details_not_a_practice() {
        let content = ReferralContent {
            free_sender: Some(FreeSender {
                role: SenderRole::Provider,
                name: "Dr. Priya Natarajan".into(),
                email: "priya@clinic.example".into(),
                provider_name: "Dr. Priya Natarajan".into(),
                provider_msp: "12345".into(),
                clinic_name: "Main Street Walk-in".into(),
                clinic_phone: "604-555-0100".into(),
                clinic_address: "1 Main St, Vancouver".into(),
            }),
            ..Default::default()
        };
        let mut pdf = input(&content);
        pdf.from_practice = None;
        pdf.attachments = vec!["ecg.pdf".into(), "holter.pdf".into()];
        let doc = referral_document(&pdf);
        assert_eq!(field(&doc, "Sent by", "Practice"), None);
        assert_eq!(field(&doc, "Sent by", "Role"), Some("The referring provider"));
        assert_eq!(field(&doc, "Sent by", "Clinic"), Some("Main Street Walk-in"));
        assert_eq!(field(&doc, "Sent by", "MSP number"), Some("12345"));
        assert_eq!(field(&doc, "Sent by", "Email"), Some("priya@clinic.example"));
        assert_eq!(field(&doc, "Attachments", "Files"), Some("ecg.pdf\nholter.pdf"));
    }
}
