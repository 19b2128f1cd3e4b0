//! Referral PDFs, built on the client from plaintext (ARCHITECTURE.md,
//! "Referral PDFs").
//!
//! The server never sees a referral's content, so its PDF is made where the
//! content is opened: in the browser (this crate builds for
//! `wasm32-unknown-unknown`) or natively. [`render`] lays out any
//! [`Document`] (a title and sections of label/value fields and labelled
//! paragraphs) on US Letter pages with margins, wrapping long text over lines
//! and onto further pages, and a footer on every page with the referral
//! number and "Page N of M". [`referral_document`] builds the standard
//! layout of a referral.
//!
//! The text is real PDF text in the standard Helvetica fonts, so readers can
//! search, select and extract it. Those fonts' WinAnsi encoding covers the
//! Latin-1 letters and common punctuation; every other character is printed
//! as `?` (see [`render`]).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod layout;
mod metrics;
mod referral;
mod text;

use printpdf::{PdfDocument, PdfPage, PdfParseErrorSeverity, PdfSaveOptions, Pt, Rect};

pub use referral::{ReferralPdf, referral_document};

/// The most pages [`render`] makes: a document that needs more is refused
/// with [`PdfError::TooLong`] rather than keeping the browser busy.
pub const MAX_PAGES: usize = 200;

/// A document to print: a title, then sections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Document {
    /// The title at the top of the first page (also the PDF's title).
    pub title: String,
    /// The referral number, shown in every page's footer.
    pub number: String,
    /// The sections, in order.
    pub sections: Vec<Section>,
}

/// A headed part of a [`Document`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Section {
    /// The section's heading.
    pub heading: String,
    /// Short label/value rows: the label in a left column, the value beside it.
    pub fields: Vec<(String, String)>,
    /// Labelled paragraphs after the fields, across the full width; they wrap
    /// over lines and pages. Line feeds in a paragraph start new lines.
    pub text: Vec<(String, String)>,
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PdfError {
    /// The document needs more than [`MAX_PAGES`] pages.
    #[error("the document needs more than {max} pages")]
    TooLong {
        /// The limit, [`MAX_PAGES`].
        max: usize,
    },
    /// The PDF writer reported an error.
    #[error("the PDF could not be written: {0}")]
    Write(String),
}

/// Renders `doc` as a PDF file on US Letter pages.
///
/// Text is set in Helvetica (regular and bold), which every PDF reader has,
/// so nothing is embedded. Characters outside the fonts' WinAnsi encoding
/// (Windows-1252: ASCII, the Latin-1 letters, typographic quotes and dashes,
/// €) are printed as `?`; tabs print as spaces and other control characters
/// are left out.
pub fn render(doc: &Document) -> Result<Vec<u8>, PdfError> {
    let pages = layout::pages(doc)?
        .into_iter()
        .map(|ops| {
            let letter = Rect::from_wh(Pt(layout::PAGE_WIDTH), Pt(layout::PAGE_HEIGHT));
            PdfPage { media_box: letter.clone(), trim_box: letter.clone(), crop_box: letter, ops }
        })
        .collect();
    let mut pdf = PdfDocument::new(&text::clean(&doc.title).replace('\n', " "));
    pdf.metadata.info.creator = "Handoff".to_owned();
    let mut warnings = Vec::new();
    let bytes = pdf.with_pages(pages).save(&PdfSaveOptions::default(), &mut warnings);
    if let Some(error) = warnings.into_iter().find(|w| w.severity == PdfParseErrorSeverity::Error) {
        return Err(PdfError::Write(error.msg));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc_with(text: String) -> Document {
        Document {
            title: "Referral HR-TEST-0001".into(),
            number: "HR-TEST-0001".into(),
            sections: vec![Section { heading: "Referral".into(), fields: Vec::new(), text: vec![("Clinical details".into(), text)] }],
        }
    }

    #[test]
    fn a_short_document_renders_as_one_pdf_page() {
        let pdf = render(&doc_with("Short.".into())).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        assert_eq!(layout::pages(&doc_with("Short.".into())).unwrap().len(), 1);
    }

    #[test]
    fn a_document_longer_than_the_page_limit_is_refused() {
        // About 50 lines a page: enough lines for more than MAX_PAGES pages.
        let text = "line\n".repeat(60 * MAX_PAGES);
        assert_eq!(render(&doc_with(text)), Err(PdfError::TooLong { max: MAX_PAGES }));
        let fits = "line\n".repeat(40 * (MAX_PAGES - 10));
        assert!(render(&doc_with(fits)).is_ok(), "a long document under the limit still renders");
    }
}
