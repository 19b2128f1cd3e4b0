//! Lays a [`Document`] out on US Letter pages, then writes each page's
//! content stream.
//!
//! All lengths are in PDF points (1/72 inch), measured from the page's
//! bottom-left corner as PDF does.

use pdf_writer::{Content, Name, Str};

use crate::text::{self, Font};
use crate::{Document, MAX_PAGES, PdfError};

/// US Letter width: 8.5 in.
pub(crate) const PAGE_WIDTH: f32 = 612.0;
/// US Letter height: 11 in.
pub(crate) const PAGE_HEIGHT: f32 = 792.0;
/// The left, right and top margins: 0.75 in.
pub(crate) const MARGIN: f32 = 54.0;
/// Text stops this far above the bottom edge (1 in); the footer sits below.
const BOTTOM: f32 = 72.0;
/// The footer's baseline: 0.5 in above the bottom edge.
const FOOTER_BASELINE: f32 = 36.0;
const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
/// The width of a field's label column.
const LABEL_WIDTH: f32 = 140.0;

const TITLE_SIZE: f32 = 18.0;
const HEADING_SIZE: f32 = 12.5;
const LABEL_SIZE: f32 = 9.5;
const BODY_SIZE: f32 = 10.0;
const FOOTER_SIZE: f32 = 8.5;
/// Line height as a multiple of the font size.
const LEADING: f32 = 1.35;

/// Something drawn on a page.
#[derive(Clone, Debug, PartialEq)]
enum Item {
    /// One line of cleaned text, its baseline starting at (x, y).
    Text { x: f32, y: f32, font: Font, size: f32, grey: bool, text: String },
    /// A thin horizontal rule at height y across the text column.
    Rule { y: f32 },
}

/// Where the next thing goes.
struct Cursor {
    pages: Vec<Vec<Item>>,
    /// The top of the space left on the current page.
    y: f32,
}

impl Cursor {
    fn new() -> Self {
        Self { pages: vec![Vec::new()], y: PAGE_HEIGHT - MARGIN }
    }

    fn new_page(&mut self) -> Result<(), PdfError> {
        if self.pages.len() >= MAX_PAGES {
            return Err(PdfError::TooLong { max: MAX_PAGES });
        }
        self.pages.push(Vec::new());
        self.y = PAGE_HEIGHT - MARGIN;
        Ok(())
    }

    /// Starts a new page unless `height` more points fit on this one (a
    /// fresh page always takes what it is given).
    fn room_for(&mut self, height: f32) -> Result<(), PdfError> {
        let fresh = self.pages.last().is_none_or(Vec::is_empty);
        if self.y - height < BOTTOM && !fresh { self.new_page() } else { Ok(()) }
    }

    fn push(&mut self, item: Item) {
        if let Some(page) = self.pages.last_mut() {
            page.push(item);
        }
    }

    /// One line of text at the cursor, then the cursor moves below it.
    fn line(&mut self, x: f32, font: Font, size: f32, text: String) {
        self.y -= size * LEADING;
        if !text.is_empty() {
            self.push(Item::Text { x, y: self.y + size * (LEADING - 1.0), font, size, grey: false, text });
        }
    }

    fn gap(&mut self, points: f32) {
        self.y -= points;
    }
}

fn line_height(size: f32) -> f32 {
    size * LEADING
}

/// The resource names of the two fonts in every page's resources.
pub(crate) const REGULAR: Name<'static> = Name(b"F1");
/// See [`REGULAR`].
pub(crate) const BOLD: Name<'static> = Name(b"F2");

/// Lays `doc` out and returns each page's content stream, footers included.
pub(crate) fn pages(doc: &Document) -> Result<Vec<Vec<u8>>, PdfError> {
    let mut c = Cursor::new();
    for line in text::wrap(&text::clean(&doc.title), Font::Bold, TITLE_SIZE, CONTENT_WIDTH) {
        c.room_for(line_height(TITLE_SIZE))?;
        c.line(MARGIN, Font::Bold, TITLE_SIZE, line);
    }
    for section in &doc.sections {
        c.gap(14.0);
        let heading = text::wrap(&text::clean(&section.heading), Font::Bold, HEADING_SIZE, CONTENT_WIDTH);
        // Keep the heading with the first two lines of what follows it.
        c.room_for(heading.len() as f32 * line_height(HEADING_SIZE) + 6.0 + 2.0 * line_height(BODY_SIZE))?;
        for line in heading {
            c.line(MARGIN, Font::Bold, HEADING_SIZE, line);
        }
        c.gap(2.0);
        let rule = c.y;
        c.push(Item::Rule { y: rule });
        c.gap(4.0);
        for (label, value) in &section.fields {
            field(&mut c, label, value)?;
        }
        for (label, body) in &section.text {
            paragraph(&mut c, label, body)?;
        }
    }
    let total = c.pages.len();
    let number = text::clean(&doc.number);
    Ok(c.pages.into_iter().enumerate().map(|(i, items)| content(items, &footer(&number, i + 1, total))).collect())
}

/// A label in the left column and its value wrapped in the right one; a row
/// that fits on a page is not split across two.
fn field(c: &mut Cursor, label: &str, value: &str) -> Result<(), PdfError> {
    let labels = text::wrap(&text::clean(label), Font::Bold, LABEL_SIZE, LABEL_WIDTH - 8.0);
    let values = text::wrap(&text::clean(value), Font::Regular, BODY_SIZE, CONTENT_WIDTH - LABEL_WIDTH);
    let rows = labels.len().max(values.len());
    let row_height = line_height(BODY_SIZE);
    let usable = PAGE_HEIGHT - MARGIN - BOTTOM;
    if rows as f32 * row_height <= usable {
        c.room_for(rows as f32 * row_height)?;
    }
    let mut labels = labels.into_iter();
    let mut values = values.into_iter();
    for _ in 0..rows {
        c.room_for(row_height)?;
        let top = c.y;
        if let Some(l) = labels.next().filter(|l| !l.is_empty()) {
            // Label and value share a baseline; the smaller label sits on it.
            let y = top - row_height + BODY_SIZE * (LEADING - 1.0);
            c.push(Item::Text { x: MARGIN, y, font: Font::Bold, size: LABEL_SIZE, grey: true, text: l });
        }
        c.line(MARGIN + LABEL_WIDTH, Font::Regular, BODY_SIZE, values.next().unwrap_or_default());
    }
    c.gap(3.0);
    Ok(())
}

/// A label on its own line, then the text wrapped across the full width,
/// line by line over as many pages as it needs.
fn paragraph(c: &mut Cursor, label: &str, body: &str) -> Result<(), PdfError> {
    c.gap(4.0);
    let label = text::clean(label);
    if !label.is_empty() {
        c.room_for(line_height(LABEL_SIZE) + 2.0 + line_height(BODY_SIZE))?;
        for line in text::wrap(&label, Font::Bold, LABEL_SIZE, CONTENT_WIDTH) {
            c.line(MARGIN, Font::Bold, LABEL_SIZE, line);
        }
        c.gap(2.0);
    }
    for line in text::wrap(&text::clean(body), Font::Regular, BODY_SIZE, CONTENT_WIDTH) {
        c.room_for(line_height(BODY_SIZE))?;
        c.line(MARGIN, Font::Regular, BODY_SIZE, line);
    }
    c.gap(4.0);
    Ok(())
}

/// The footer of page `page` of `total`: the referral number on the left,
/// "Page N of M" on the right.
fn footer(number: &str, page: usize, total: usize) -> Vec<Item> {
    let right = format!("Page {page} of {total}");
    let right_x = PAGE_WIDTH - MARGIN - text::width(&right, Font::Regular, FOOTER_SIZE);
    let text = |x: f32, text: String| Item::Text { x, y: FOOTER_BASELINE, font: Font::Regular, size: FOOTER_SIZE, grey: true, text };
    let mut items = vec![Item::Rule { y: FOOTER_BASELINE + FOOTER_SIZE * 1.6 }];
    if !number.is_empty() {
        items.push(text(MARGIN, format!("Referral {number}")));
    }
    items.push(text(right_x, right));
    items
}

/// One page's content stream: its items, then its footer.
fn content(items: Vec<Item>, footer: &[Item]) -> Vec<u8> {
    let mut c = Content::new();
    c.set_stroke_gray(0.6).set_line_width(0.6);
    for item in items.into_iter().chain(footer.iter().cloned()) {
        match item {
            Item::Text { x, y, font, size, grey, text } => {
                let bytes: Vec<u8> = text.chars().filter_map(text::win_ansi_byte).collect();
                c.begin_text()
                    .set_fill_gray(if grey { 0.35 } else { 0.0 })
                    .set_font(if font == Font::Bold { BOLD } else { REGULAR }, size)
                    .next_line(x, y)
                    .show(Str(&bytes))
                    .end_text();
            }
            Item::Rule { y } => {
                c.move_to(MARGIN, y).line_to(PAGE_WIDTH - MARGIN, y).stroke();
            }
        }
    }
    c.finish().into_vec()
}
