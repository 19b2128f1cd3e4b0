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
//!
//! The PDF objects are written with `pdf-writer`; the layout (wrapping,
//! pagination, footers) and the fonts' metrics are this crate's own.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

mod layout;
mod metrics;
mod referral;
mod text;

use pdf_writer::{Finish, Name, Pdf, Rect, Ref, TextStr};

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
}

/// Renders `doc` as a PDF file on US Letter pages.
///
/// Text is set in Helvetica (regular and bold), which every PDF reader has,
/// so nothing is embedded. Characters outside the fonts' WinAnsi encoding
/// (Windows-1252: ASCII, the Latin-1 letters, typographic quotes and dashes,
/// €) are printed as `?`; tabs print as spaces and other control characters
/// are left out.
pub fn render(doc: &Document) -> Result<Vec<u8>, PdfError> {
    let contents = layout::pages(doc)?;
    // Objects: 1 catalog, 2 page tree, 3 and 4 the fonts, 5 the document
    // information, then each page and its content stream.
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let regular = Ref::new(3);
    let bold = Ref::new(4);
    let info = Ref::new(5);
    let page_refs: Vec<(Ref, Ref)> = (0..contents.len())
        .map(|i| {
            let at = i32::try_from(6 + 2 * i).unwrap_or(i32::MAX);
            (Ref::new(at), Ref::new(at.saturating_add(1)))
        })
        .collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_refs.iter().map(|(page, _)| *page)).count(i32::try_from(page_refs.len()).unwrap_or(i32::MAX));
    // The standard fonts: every reader has them, so nothing is embedded.
    pdf.type1_font(regular).base_font(Name(b"Helvetica")).encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold")).encoding_predefined(Name(b"WinAnsiEncoding"));
    let title = text::clean(&doc.title).replace('\n', " ");
    pdf.document_info(info).title(TextStr(&title)).creator(TextStr("Handoff"));
    let letter = Rect::new(0.0, 0.0, layout::PAGE_WIDTH, layout::PAGE_HEIGHT);
    for ((page_ref, content_ref), content) in page_refs.iter().zip(&contents) {
        let mut page = pdf.page(*page_ref);
        page.parent(tree).media_box(letter).contents(*content_ref);
        page.resources().fonts().pair(layout::REGULAR, regular).pair(layout::BOLD, bold);
        page.finish();
        pdf.stream(*content_ref, content);
    }
    Ok(pdf.finish())
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
