//! A referral as a PDF, built here from the plaintext (the server never has
//! it) with the `handoff-pdf` crate, and offered as a download named
//! `referral-<number>.pdf`. The free sender's download step and the referral
//! screen of either practice's members use the same builder.

use handoff_crypto::referral::ReferralContent;
use handoff_domain::taxonomy::Lookup as _;
use handoff_protocol::v1::Taxonomy;
use handoff_protocol::ws::{Routing, Status};

use crate::api::{ApiError, ApiResult};
use crate::state::{status_label, urgency_label};

/// What a referral's PDF shows, beside its sealed content.
#[derive(Clone, Debug, PartialEq)]
pub struct ReferralFacts {
    /// The referral number.
    pub number: String,
    /// When it was sent (ms since the epoch).
    pub sent_at: i64,
    /// Where it is now.
    pub status: Status,
    /// The receiving practice's name.
    pub to_practice: String,
    /// The sending practice's name (none for a free referral).
    pub from_practice: Option<String>,
    /// Its routing (category and urgency, current).
    pub routing: Routing,
    /// The decrypted content.
    pub content: ReferralContent,
    /// The attachments' names.
    pub attachments: Vec<String>,
}

/// "Specialty › Category › Subcategory, Region", by the taxonomy's names.
pub fn category_path(taxonomy: &Taxonomy, r: &Routing) -> String {
    let mut parts = vec![taxonomy.specialty_name(&r.specialty), taxonomy.category_name(&r.specialty, &r.category)];
    if let Some(sub) = &r.subcategory {
        let name = taxonomy
            .category(&r.specialty, &r.category)
            .and_then(|c| c.subcategories.iter().find(|s| &s.slug == sub))
            .map(|s| s.name.clone())
            .unwrap_or_else(|| sub.clone());
        parts.push(name);
    }
    format!("{}, {}", parts.join(" › "), taxonomy.region_name(&r.region))
}

/// The file name a referral's PDF is saved under.
pub fn file_name(number: &str) -> String {
    let safe: String = number.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
    format!("referral-{safe}.pdf")
}

/// Builds the referral's PDF.
pub fn referral_pdf(taxonomy: &Taxonomy, f: &ReferralFacts) -> ApiResult<Vec<u8>> {
    let input = handoff_pdf::ReferralPdf {
        number: f.number.clone(),
        sent_at: crate::ui::when(f.sent_at),
        status: status_label(f.status).to_string(),
        to_practice: f.to_practice.clone(),
        urgency: urgency_label(f.routing.urgency).to_string(),
        category: category_path(taxonomy, &f.routing),
        content: &f.content,
        from_practice: f.from_practice.clone(),
        attachments: f.attachments.clone(),
    };
    handoff_pdf::render(&handoff_pdf::referral_document(&input)).map_err(|e| ApiError::local(format!("The PDF could not be made: {e}")))
}

/// Builds the referral's PDF and offers it as a download.
pub fn download_referral_pdf(taxonomy: &Taxonomy, f: &ReferralFacts) -> ApiResult<()> {
    let bytes = referral_pdf(taxonomy, f)?;
    crate::screens::auth::save_file(&file_name(&f.number), "application/pdf", &bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn the_pdf_is_named_after_the_referral_number_and_nothing_else_gets_into_the_name() {
        assert_eq!(file_name("HR-7K3F-9Q2M"), "referral-HR-7K3F-9Q2M.pdf");
        assert_eq!(file_name("../x y"), "referral-___x_y.pdf");
    }
}
