//! The PDFs read back with Debian's poppler-utils (`pdftotext`, `pdfinfo`),
//! as a person's PDF reader or a search would read them.
//!
//! poppler-utils is installed by `cargo xtask test`; without it these tests
//! fail (they never skip).

use std::path::Path;
use std::process::Command;

use handoff_crypto::referral::{Demographics, FreeSender, ReferralContent, SenderRole};
use handoff_pdf::{Document, ReferralPdf, Section, referral_document, render};

/// Runs a poppler tool and returns its standard output.
fn poppler(tool: &str, args: &[&str], pdf: &Path) -> String {
    let out = match Command::new(tool).args(args).arg(pdf).arg("-").output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{tool}` is missing: run `cargo xtask test`, which installs Debian's poppler-utils")
        }
        Err(e) => panic!("running {tool}: {e}"),
    };
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
    // poppler reports a malformed file ("Syntax Error: ...") on stderr, even when it copes.
    assert!(out.stderr.is_empty(), "{tool} complained: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("poppler writes UTF-8")
}

/// `pdfinfo` takes no output file argument.
fn pdfinfo(pdf: &Path) -> String {
    let out = match Command::new("pdfinfo").arg(pdf).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`pdfinfo` is missing: run `cargo xtask test`, which installs Debian's poppler-utils")
        }
        Err(e) => panic!("running pdfinfo: {e}"),
    };
    assert!(out.status.success(), "pdfinfo failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "pdfinfo complained: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("pdfinfo writes UTF-8")
}

fn written(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new().suffix(".pdf").tempfile().unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}

fn page_count(info: &str) -> usize {
    info.lines().find_map(|l| l.strip_prefix("Pages:")).and_then(|n| n.trim().parse().ok()).expect("pdfinfo prints Pages:")
}

/// Text with its line breaks and runs of spaces made single spaces, so a
/// phrase can be found whichever way the reader joined its lines.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A long clinical history: about 40 sentences, well over a page, with one
/// word that appears only near its end.
fn long_history() -> String {
    let mut text = String::new();
    for visit in 1..=40 {
        text.push_str(&format!(
            "Visit {visit}: the patient reports intermittent palpitations lasting minutes, worse on exertion and after caffeine, \
             with no syncope; blood pressure and heart rate were recorded and the medication list reviewed with the family. "
        ));
        if visit == 37 {
            text.push_str(
                "A Holter monitor later showed runs of supraventricular tachycardia, labelled zygomorphic-marker for this test. ",
            );
        }
        if visit % 10 == 0 {
            text.push('\n');
        }
    }
    text
}

fn free_content() -> ReferralContent {
    ReferralContent {
        patient: Demographics {
            name: "Zoë Margaret Okafor".into(),
            date_of_birth: "1961-04-23".into(),
            sex: "Female".into(),
            health_number: "9876 543 210".into(),
            phone: "604-555-0199".into(),
            address: "2211 West 4th Avenue, Vancouver BC V6K 1N8".into(),
        },
        reason: "Assessment of recurrent palpitations and possible supraventricular tachycardia.".into(),
        clinical_details: long_history(),
        free_sender: Some(FreeSender {
            role: SenderRole::Moa,
            name: "Jordan Reyes".into(),
            email: "jordan@mainstreetclinic.example".into(),
            provider_name: "Dr. Priya Natarajan".into(),
            provider_msp: "12345".into(),
            clinic_name: "Main Street Walk-in Clinic".into(),
            clinic_phone: "604-555-0100".into(),
            clinic_address: "1 Main Street, Vancouver BC".into(),
        }),
    }
}

fn free_referral(content: &ReferralContent) -> ReferralPdf<'_> {
    ReferralPdf {
        number: "HR-7K2M-9QXD".into(),
        sent_at: "1 Dec 2026, 09:30".into(),
        status: "Sent".into(),
        to_practice: "Harbour Cardiology Associates".into(),
        from_practice: None,
        urgency: "Routine".into(),
        category: "Cardiology › Arrhythmia › Palpitations, Vancouver Coastal".into(),
        content,
        attachments: vec!["ecg-2026-11-28.pdf".into(), "holter-summary.pdf".into()],
    }
}

#[test]
fn a_long_free_referral_reads_back_with_pdftotext_over_several_letter_pages() {
    let content = free_content();
    let pdf = written(&render(&referral_document(&free_referral(&content))).unwrap());
    let text = words(&poppler("pdftotext", &[], pdf.path()));
    for expected in [
        "Referral HR-7K2M-9QXD",
        "Zoë Margaret Okafor",
        "Harbour Cardiology Associates",
        "Main Street Walk-in Clinic",
        "Dr. Priya Natarajan",
        "jordan@mainstreetclinic.example",
        "Cardiology › Arrhythmia › Palpitations, Vancouver Coastal",
        "zygomorphic-marker",
        "ecg-2026-11-28.pdf",
        "Visit 40:",
    ] {
        assert!(text.contains(expected), "{expected:?} not found in the PDF's text:\n{text}");
    }
    let info = pdfinfo(pdf.path());
    let pages = page_count(&info);
    assert!(pages > 1, "the long history needs more than one page:\n{info}");
    assert!(info.contains("612 x 792 pts (letter)"), "US Letter pages:\n{info}");
    assert!(info.contains("Title:") && info.contains("Referral HR-7K2M-9QXD"), "the PDF's title:\n{info}");
    // The word deep in the history is on a later page, not the first.
    let first = words(&poppler("pdftotext", &["-f", "1", "-l", "1"], pdf.path()));
    assert!(!first.contains("zygomorphic-marker"), "the marker word is past the first page");
}

#[test]
fn every_page_has_the_referral_number_and_page_n_of_m_in_its_footer() {
    let content = free_content();
    let pdf = written(&render(&referral_document(&free_referral(&content))).unwrap());
    let pages = page_count(&pdfinfo(pdf.path()));
    assert!(pages > 1);
    for page in 1..=pages {
        let n = page.to_string();
        let text = words(&poppler("pdftotext", &["-f", &n, "-l", &n], pdf.path()));
        assert!(text.contains("Referral HR-7K2M-9QXD"), "page {page} lacks the number: {text}");
        assert!(text.contains(&format!("Page {page} of {pages}")), "page {page} lacks its footer: {text}");
    }
}

#[test]
fn wrapped_text_stays_inside_the_page_margins_and_clear_of_the_footer() {
    let content = free_content();
    let pdf = written(&render(&referral_document(&free_referral(&content))).unwrap());
    // -bbox lists every word with its box, in points from the top-left corner.
    let boxes = poppler("pdftotext", &["-bbox"], pdf.path());
    let attr = |line: &str, name: &str| -> f32 {
        let start = line.find(&format!("{name}=\"")).expect("bbox attribute") + name.len() + 2;
        line[start..].split('"').next().unwrap().parse().unwrap()
    };
    let mut seen = 0;
    for line in boxes.lines().filter(|l| l.trim_start().starts_with("<word ")) {
        seen += 1;
        let (x_min, x_max, y_min, y_max) = (attr(line, "xMin"), attr(line, "xMax"), attr(line, "yMin"), attr(line, "yMax"));
        assert!(x_min >= 53.0 && x_max <= 612.0 - 53.0, "a word outside the side margins: {line}");
        assert!(y_min >= 54.0 && y_max <= 792.0 - 30.0, "a word outside the top or bottom margin: {line}");
        // Body text stops 1 in above the bottom edge; below that is only the footer's line (baseline 0.5 in up).
        if y_max > 792.0 - 72.0 {
            assert!(y_min > 792.0 - 36.0 - 12.0, "body text runs into the footer: {line}");
        }
    }
    assert!(seen > 500, "only {seen} words found");
}

#[test]
fn characters_outside_winansi_print_as_question_marks() {
    let content = ReferralContent {
        patient: Demographics { name: "Łucja Nguyễn 李".into(), ..Default::default() },
        reason: "Café visit: naïve “quotes” — façade €5".into(),
        ..Default::default()
    };
    let mut input = free_referral(&content);
    input.from_practice = Some("Kits Family Practice".into());
    let pdf = written(&render(&referral_document(&input)).unwrap());
    let text = words(&poppler("pdftotext", &[], pdf.path()));
    assert!(text.contains("?ucja Nguy?n ?"), "non-WinAnsi letters become '?': {text}");
    assert!(text.contains("Café visit: naïve “quotes” — façade €5"), "WinAnsi characters survive: {text}");
    assert!(text.contains("Kits Family Practice"), "the sending practice is named: {text}");
    assert_eq!(page_count(&pdfinfo(pdf.path())), 1, "a short referral is one page");
}

#[test]
fn a_generic_document_keeps_its_sections_in_order() {
    let doc = Document {
        title: "Referral HR-AAAA-BBBB".into(),
        number: "HR-AAAA-BBBB".into(),
        sections: vec![
            Section { heading: "First heading".into(), fields: vec![("Alpha".into(), "one".into())], text: Vec::new() },
            Section { heading: "Second heading".into(), fields: Vec::new(), text: vec![("Beta".into(), "two".into())] },
        ],
    };
    let pdf = written(&render(&doc).unwrap());
    let text = words(&poppler("pdftotext", &[], pdf.path()));
    let at = |s: &str| text.find(s).unwrap_or_else(|| panic!("{s:?} missing from {text}"));
    assert!(at("First heading") < at("Alpha") && at("Alpha") < at("Second heading") && at("Second heading") < at("two"), "{text}");
}
