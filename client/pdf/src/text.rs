//! Text as the built-in fonts can show it: WinAnsi characters, measured and
//! wrapped to a width.
//!
//! The PDFs use the standard Helvetica fonts, which every PDF reader has and
//! which add nothing to the file or to the browser bundle. Their encoding,
//! WinAnsi (Windows-1252), covers the Latin-1 letters (é, ü, ñ, ø, ß…) and the
//! typographic punctuation, and nothing else: any other character is shown as
//! `?`, openly, rather than dropped or shown as a wrong letter.

use crate::metrics;

/// One of the two fonts the PDFs use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Font {
    /// Helvetica.
    Regular,
    /// Helvetica-Bold.
    Bold,
}

impl Font {
    fn widths(self) -> &'static [u16; 224] {
        match self {
            Font::Regular => &metrics::HELVETICA,
            Font::Bold => &metrics::HELVETICA_BOLD,
        }
    }
}

/// The WinAnsi byte for `c`, or `None` if WinAnsi has no such character
/// (PDF 32000-1, Annex D.2).
pub(crate) fn win_ansi_byte(c: char) -> Option<u8> {
    let cp = u32::from(c);
    if (0x20..=0x7E).contains(&cp) || (0xA0..=0xFF).contains(&cp) {
        return u8::try_from(cp).ok();
    }
    Some(match c {
        '\u{20AC}' => 0x80,
        '\u{201A}' => 0x82,
        '\u{0192}' => 0x83,
        '\u{201E}' => 0x84,
        '\u{2026}' => 0x85,
        '\u{2020}' => 0x86,
        '\u{2021}' => 0x87,
        '\u{02C6}' => 0x88,
        '\u{2030}' => 0x89,
        '\u{0160}' => 0x8A,
        '\u{2039}' => 0x8B,
        '\u{0152}' => 0x8C,
        '\u{017D}' => 0x8E,
        '\u{2018}' => 0x91,
        '\u{2019}' => 0x92,
        '\u{201C}' => 0x93,
        '\u{201D}' => 0x94,
        '\u{2022}' => 0x95,
        '\u{2013}' => 0x96,
        '\u{2014}' => 0x97,
        '\u{02DC}' => 0x98,
        '\u{2122}' => 0x99,
        '\u{0161}' => 0x9A,
        '\u{203A}' => 0x9B,
        '\u{0153}' => 0x9C,
        '\u{017E}' => 0x9E,
        '\u{0178}' => 0x9F,
        _ => return None,
    })
}

/// `s` as the fonts can show it: tabs become spaces, carriage returns and
/// other control characters go (line feeds stay: they end lines), and every
/// character WinAnsi lacks becomes `?`.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' => Some('\n'),
            '\t' => Some(' '),
            c if c.is_control() => None,
            c if win_ansi_byte(c).is_some() => Some(c),
            _ => Some('?'),
        })
        .collect()
}

/// The width of cleaned text `s` in points, at `size` points.
pub(crate) fn width(s: &str, font: Font, size: f32) -> f32 {
    let widths = font.widths();
    let units: u32 =
        s.chars().filter_map(win_ansi_byte).map(|b| widths.get(usize::from(b).saturating_sub(0x20)).copied().map_or(0, u32::from)).sum();
    units as f32 * size / 1000.0
}

/// Cleaned text `s` broken into lines no wider than `max` points: at spaces
/// where it can, inside a word only when the word alone is wider than a line.
/// Each line feed in `s` starts a new line, so an empty line stays empty.
pub(crate) fn wrap(s: &str, font: Font, size: f32, max: f32) -> Vec<String> {
    let mut lines = Vec::new();
    for source in s.split('\n') {
        let mut line = String::new();
        for word in source.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
            if width(&candidate, font, size) <= max {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if width(word, font, size) <= max {
                line = word.to_owned();
            } else {
                // A word wider than the line: break it where it overflows.
                for c in word.chars() {
                    line.push(c);
                    if width(&line, font, size) > max && line.chars().count() > 1 {
                        line.pop();
                        lines.push(std::mem::take(&mut line));
                        line.push(c);
                    }
                }
            }
        }
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_outside_winansi_become_question_marks_and_latin1_stays() {
        assert_eq!(clean("Zoë Łukasz Nguyễn 李 “ok” – 5 €"), "Zoë ?ukasz Nguy?n ? “ok” – 5 €");
        assert_eq!(clean("a\tb\r\nc\u{7}d"), "a b\ncd");
    }

    #[test]
    fn widths_follow_the_helvetica_metrics() {
        // Helvetica: "i" is 222/1000 em, "W" 944; Helvetica-Bold "i" 278.
        assert!((width("iW", Font::Regular, 10.0) - 11.66).abs() < 0.001);
        assert!((width("i", Font::Bold, 10.0) - 2.78).abs() < 0.001);
        assert!(width("?", Font::Regular, 10.0) > 0.0);
    }

    #[test]
    fn a_long_paragraph_wraps_at_spaces_within_the_width() {
        let text = "The patient reports intermittent palpitations over the past six weeks, worse on exertion. ".repeat(20);
        let lines = wrap(&text, Font::Regular, 10.0, 300.0);
        assert!(lines.len() > 10, "{} lines", lines.len());
        for line in &lines {
            assert!(width(line, Font::Regular, 10.0) <= 300.0, "too wide: {line}");
            assert!(!line.starts_with(' ') && !line.ends_with(' '));
        }
        let rejoined = lines.join(" ");
        assert_eq!(rejoined.split_whitespace().collect::<Vec<_>>(), text.split_whitespace().collect::<Vec<_>>(), "no word is lost");
    }

    #[test]
    fn a_word_wider_than_the_line_is_broken_inside_and_nothing_is_lost() {
        let word = "x".repeat(200);
        let lines = wrap(&word, Font::Regular, 10.0, 100.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| width(l, Font::Regular, 10.0) <= 100.0));
        assert_eq!(lines.concat(), word);
    }

    #[test]
    fn line_feeds_start_new_lines_and_blank_lines_stay() {
        assert_eq!(wrap("one\n\ntwo", Font::Regular, 10.0, 500.0), vec!["one", "", "two"]);
    }
}
