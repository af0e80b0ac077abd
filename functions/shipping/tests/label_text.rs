//! A label read back by a real PDF reader: `pdftotext`, from poppler
//! (Debian's `poppler-utils`, which `.ci/run` installs). What it extracts is
//! what a reader searches, copies and shows; an address in any script must
//! come out as written, not as `?`.

use std::io::Write;
use std::process::{Command, Stdio};

use shipping::label_pdf::{Label, render_pdf};

/// The text `pdftotext` reads from `pdf`, in layout order.
fn pdftotext(pdf: &[u8]) -> String {
    let mut child = Command::new("pdftotext")
        .args(["-enc", "UTF-8", "-", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("pdftotext (Debian's poppler-utils) is needed for this test: {e}")
        });
    child
        .stdin
        .take()
        .unwrap_or_else(|| panic!("no stdin"))
        .write_all(pdf)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "pdftotext failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{e}"))
}

fn label<'a>(ship_to: &'a [&'a str]) -> Label<'a> {
    Label {
        tracking_number: "OF0123456789ABCDEFGH",
        order_id: "ord-unicode-1",
        service: "GROUND",
        ship_from: &["orderflow fulfilment", "1 Warehouse Way", "Springfield"],
        ship_to,
        pickup: "2026-11-25 09:00-12:00 UTC",
        weight_grams: 500,
    }
}

#[test]
fn a_polish_and_a_japanese_address_read_back_as_written() {
    let to = [
        "Łucja Wójcik-Żółć",
        "ul. Piotrkowska 104",
        "90-926 Łódź",
        "東京都千代田区丸の内1-9-1",
        "山田 太郎 様",
        "Ελλάδα, Україна, Zürich",
    ];
    let text = pdftotext(&render_pdf(&label(&to)));
    for line in to {
        assert!(text.contains(line), "{line:?} not legible in:\n{text}");
    }
    assert!(!text.contains('?'), "a character was replaced:\n{text}");
    assert!(text.contains("OF0123456789ABCDEFGH"), "{text}");
}

#[test]
fn an_ascii_label_reads_back_unchanged() {
    let to = [
        "Ada Lovelace",
        "12 St James's Square",
        "London SW1Y 4JH",
        "GB",
    ];
    let text = pdftotext(&render_pdf(&label(&to)));
    for line in to {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
}
