//! Printable 4x6 inch shipping labels rendered as a one-page PDF.
//!
//! The label is a bordered layout with a FROM block, a large SHIP TO block,
//! the service and weight, the order id, the pickup window and a Code 128
//! (code set B) barcode of the tracking number with the number printed below
//! it.
//!
//! No PDF crate is used on purpose: a label is a handful of text runs, lines
//! and bars, and the ~200 lines of PDF writing below keep the Lambda
//! bootstrap small. ASCII text uses the standard 14 fonts (Helvetica and
//! Helvetica-Bold), so nothing is embedded. A run with other characters
//! (Łódź, 東京) uses a composite (Type0) font whose codes are the
//! characters' own Unicode values, with a ToUnicode map saying so: a reader
//! extracts, searches and copies the text as written, and renders it with
//! the system font it substitutes for the named one. No font is embedded:
//! one that covers CJK is megabytes, more than the whole bootstrap may
//! weigh. The output is deterministic (no timestamps, no ids), so the same
//! label always gives byte-identical bytes.

use std::fmt::Write as _;

use orderflow_contracts::{Address, OrderId};

use crate::decide::{Effect, GRAMS_PER_UNIT};

/// The label document of a shipment: what [`Label`] it prints, rendered.
pub fn render(request: &Effect, order_id: &OrderId) -> Vec<u8> {
    let (to, units) = request
        .state
        .reserved
        .as_ref()
        .map_or((Vec::new(), 0), |r| {
            (
                address_lines(&r.ship_to),
                r.lines.iter().map(|l| l.quantity.get()).sum(),
            )
        });
    let to: Vec<&str> = to.iter().map(String::as_str).collect();
    let pickup = format!(
        "{} {}-{} UTC",
        request.pickup.from.format("%Y-%m-%d"),
        request.pickup.from.format("%H:%M"),
        request.pickup.to.format("%H:%M")
    );
    render_pdf(&Label {
        tracking_number: request.tracking_number.as_str(),
        order_id: order_id.as_str(),
        service: "GROUND",
        ship_from: &["orderflow fulfilment", "1 Warehouse Way", "Springfield"],
        ship_to: &to,
        pickup: &pickup,
        weight_grams: units.saturating_mul(GRAMS_PER_UNIT),
    })
}

fn address_lines(address: &Address) -> Vec<String> {
    let mut lines = vec![address.name.clone(), address.line1.clone()];
    lines.extend(address.line2.clone());
    lines.push(format!("{} {}", address.postal_code, address.city));
    lines.push(address.country.clone());
    lines
}

/// What goes on a label.
///
/// All text is printed as given, in any script of Unicode's basic plane;
/// control characters and characters beyond that plane (emoji) are
/// printed as `'?'`, en and em dashes as `'-'`. Lines too wide for the label
/// are cut and end in `...`; address blocks with too many lines are capped.
#[derive(Debug, Clone, Copy)]
pub struct Label<'a> {
    /// Carrier tracking number, e.g. `"OF1234567890"` (ASCII alphanumerics);
    /// encoded in the barcode and printed below it.
    pub tracking_number: &'a str,
    /// Order id printed on the label.
    pub order_id: &'a str,
    /// Service level, e.g. `"GROUND"`.
    pub service: &'a str,
    /// Sender address lines.
    pub ship_from: &'a [&'a str],
    /// Recipient address lines (name, street, city, country...).
    pub ship_to: &'a [&'a str],
    /// Pickup window, e.g. `"2026-11-25 09:00–12:00 UTC"`.
    pub pickup: &'a str,
    /// Parcel weight in grams; printed in kilograms.
    pub weight_grams: u32,
}

/// Page width in points (4 in).
const PAGE_W: f64 = 288.0;
/// Page height in points (6 in).
const PAGE_H: f64 = 432.0;
/// Distance from the page edge to the outer border.
const MARGIN: f64 = 8.0;
/// Left edge of text inside the border.
const TEXT_X: f64 = 14.0;
/// Right edge text must stay left of.
const TEXT_RIGHT: f64 = PAGE_W - MARGIN - 6.0;
/// Most FROM lines printed.
const MAX_FROM_LINES: usize = 7;
/// Most SHIP TO lines printed.
const MAX_TO_LINES: usize = 7;
/// Characters of any one input string looked at; bounds the work per line.
const MAX_INPUT_CHARS: usize = 256;
/// Most tracking-number characters put in the barcode. At 28 the module is
/// ~0.7 pt (9.8 mil) and still decodes from a 203 dpi thermal print; 30 did not.
const MAX_BARCODE_CHARS: usize = 28;
/// Widest barcode module, in points.
const MAX_MODULE_W: f64 = 1.5;
/// Quiet zone on each side of the barcode, in modules (Code 128 needs 10).
const QUIET_MODULES: usize = 10;

/// One of the two standard fonts the label uses.
#[derive(Debug, Clone, Copy)]
enum Font {
    Regular,
    Bold,
}

impl Font {
    /// The font resource for `text`: Helvetica for ASCII, the composite
    /// Unicode font otherwise.
    fn resource(self, text: &str) -> &'static str {
        match (self, text.is_ascii()) {
            (Font::Regular, true) => "F1",
            (Font::Bold, true) => "F2",
            (Font::Regular, false) => "F3",
            (Font::Bold, false) => "F4",
        }
    }

    /// Advance widths (1/1000 em) of chars 32..=126, from the Helvetica and
    /// Helvetica-Bold AFM metrics (WinAnsi names: 39 is quotesingle, 96 grave).
    fn widths(self) -> &'static [u16; 95] {
        match self {
            Font::Regular => &HELVETICA_WIDTHS,
            Font::Bold => &HELVETICA_BOLD_WIDTHS,
        }
    }

    /// Width of `text` at `size` points; `text` is expected to be sanitized.
    fn text_width(self, text: &str, size: f64) -> f64 {
        text.chars().map(|c| self.char_width(c)).sum::<f64>() * size / 1000.0
    }

    fn char_width(self, c: char) -> f64 {
        if !c.is_ascii() {
            return f64::from(unicode_width(c));
        }
        let widths = self.widths();
        let index = (c as usize).wrapping_sub(32);
        f64::from(widths.get(index).copied().unwrap_or(1015))
    }
}

/// The advance (1/1000 em) the label gives a character outside ASCII: a full
/// em for the wide East Asian scripts, a Helvetica lowercase letter's for
/// the rest. The same widths go into the composite font's `/W` array, so
/// the layout and the reader agree.
fn unicode_width(c: char) -> u16 {
    if is_wide(c) { 1000 } else { 556 }
}

/// Whether `c` is in a wide East Asian block: CJK radicals to Yi, Hangul,
/// CJK compatibility ideographs and forms, full-width forms.
fn is_wide(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1100..=0x115F
            | 0x2E80..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
    )
}

#[rustfmt::skip]
const HELVETICA_WIDTHS: [u16; 95] = [
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556,
    1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556,
    333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556,
    556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584,
];

#[rustfmt::skip]
const HELVETICA_BOLD_WIDTHS: [u16; 95] = [
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278,
    556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 333, 333, 584, 584, 584, 611,
    975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722, 611, 833, 722, 778,
    667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556,
    333, 556, 611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611,
    611, 611, 389, 556, 333, 611, 556, 778, 556, 556, 500, 389, 280, 389, 584,
];

/// Code 128 bar/space widths (in modules) for symbol values 0..=105; each
/// pattern starts with a bar and spans 11 modules.
#[rustfmt::skip]
const CODE128_PATTERNS: [&[u8; 6]; 106] = [
    b"212222", b"222122", b"222221", b"121223", b"121322", b"131222", b"122213", b"122312",
    b"132212", b"221213", b"221312", b"231212", b"112232", b"122132", b"122231", b"113222",
    b"123122", b"123221", b"223211", b"221132", b"221231", b"213212", b"223112", b"312131",
    b"311222", b"321122", b"321221", b"312212", b"322112", b"322211", b"212123", b"212321",
    b"232121", b"111323", b"131123", b"131321", b"112313", b"132113", b"132311", b"211313",
    b"231113", b"231311", b"112133", b"112331", b"132131", b"113123", b"113321", b"133121",
    b"313121", b"211331", b"231131", b"213113", b"213311", b"213131", b"311123", b"311321",
    b"331121", b"312113", b"312311", b"332111", b"314111", b"221411", b"431111", b"111224",
    b"111422", b"121124", b"121421", b"141122", b"141221", b"112214", b"112412", b"122114",
    b"122411", b"142112", b"142211", b"241211", b"221114", b"413111", b"241112", b"134111",
    b"111242", b"121142", b"121241", b"114212", b"124112", b"124211", b"411212", b"421112",
    b"421211", b"212141", b"214121", b"412121", b"111143", b"111341", b"131141", b"114113",
    b"114311", b"411113", b"411311", b"113141", b"114131", b"311141", b"411131", b"211412",
    b"211214", b"211232",
];
/// Code 128 stop pattern, including the final 2-module termination bar.
const CODE128_STOP: &[u8; 7] = b"2331112";
/// Symbol value of Start Code B.
const CODE128_START_B: u8 = 104;

/// Replaces what the label cannot print: en/em dashes become `'-'`; control
/// characters, surrogates' stand-ins and anything beyond the basic plane
/// (which a two-byte code cannot name) become `'?'`. Looks at
/// `MAX_INPUT_CHARS` at most.
fn sanitize(text: &str) -> String {
    text.chars()
        .take(MAX_INPUT_CHARS)
        .map(|c| match c {
            ' '..='~' => c,
            '\u{2013}' | '\u{2014}' | '\u{2212}' => '-',
            c if c.is_control() || u32::from(c) > 0xFFFF || u32::from(c) == 0xFFFD => '?',
            c => c,
        })
        .collect()
}

/// Sanitizes `text` and cuts it so it is at most `max_width` wide, ending
/// in `...` when something was cut.
fn fit(text: &str, font: Font, size: f64, max_width: f64) -> String {
    let text = sanitize(text);
    if font.text_width(&text, size) <= max_width {
        return text;
    }
    let budget = max_width - font.text_width("...", size);
    let mut width = 0.0;
    let mut out = String::new();
    for c in text.chars() {
        width += font.char_width(c) * size / 1000.0;
        if width > budget {
            break;
        }
        out.push(c);
    }
    if budget > 0.0 {
        out.push_str("...");
    }
    out
}

/// Escapes `(`, `)` and `\` for a PDF literal string.
fn escape_pdf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '(' | ')' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Formats a coordinate with at most 3 decimals and no exponent.
fn num(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_owned();
    }
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() || text == "-0" {
        "0".to_owned()
    } else {
        text.to_owned()
    }
}

/// Code 128 code set B symbol values for `data`: start, data, checksum, stop
/// (106). Chars outside code set B (ASCII 32..=126 here) are encoded as `'?'`.
fn code128b_values(data: &str) -> Vec<u8> {
    let mut values = vec![CODE128_START_B];
    values.extend(data.chars().map(|c| match c {
        ' '..='~' => (c as u8) - 32,
        _ => b'?' - 32,
    }));
    values.push(code128_checksum(&values));
    values.push(106);
    values
}

/// Modulo-103 checksum: start value plus each data value times its position.
fn code128_checksum(start_and_data: &[u8]) -> u8 {
    let mut sum: u64 = 0;
    for (position, &value) in start_and_data.iter().enumerate() {
        let weight = position.max(1) as u64;
        sum = (sum + weight * u64::from(value)) % 103;
    }
    // `sum` < 103 here, so the cast is lossless.
    sum as u8
}

/// Bar/space widths (in modules) of a whole symbol, starting with a bar.
fn code128_widths(values: &[u8]) -> Vec<u8> {
    let mut widths = Vec::with_capacity(values.len() * 6 + 1);
    for &value in values {
        let pattern: &[u8] = match CODE128_PATTERNS.get(usize::from(value)) {
            Some(pattern) => &pattern[..],
            None => &CODE128_STOP[..],
        };
        widths.extend(pattern.iter().map(|digit| digit - b'0'));
    }
    widths
}

/// A page content stream under construction.
#[derive(Default)]
struct Content {
    ops: String,
}

impl Content {
    /// Draws already-fitted `text` with its baseline starting at (x, y):
    /// ASCII as a literal string in Helvetica, anything else as the
    /// characters' two-byte codes in the composite font.
    fn text(&mut self, font: Font, size: f64, x: f64, y: f64, text: &str) {
        if text.is_empty() {
            return;
        }
        let string = if text.is_ascii() {
            format!("({})", escape_pdf_string(text))
        } else {
            let mut hex = String::with_capacity(text.len() * 4 + 2);
            hex.push('<');
            for unit in text.encode_utf16() {
                let _ = write!(hex, "{unit:04X}");
            }
            hex.push('>');
            hex
        };
        let _ = writeln!(
            self.ops,
            "BT /{} {} Tf {} {} Td {string} Tj ET",
            font.resource(text),
            num(size),
            num(x),
            num(y),
        );
    }

    /// Draws `text` cut to `max_width`, starting at (x, y).
    fn text_fit(&mut self, font: Font, size: f64, x: f64, y: f64, max_width: f64, text: &str) {
        let fitted = fit(text, font, size, max_width);
        self.text(font, size, x, y, &fitted);
    }

    /// Draws `text` cut to `max_width` and centred on `center_x`.
    fn text_centered(
        &mut self,
        font: Font,
        size: f64,
        center_x: f64,
        y: f64,
        max_width: f64,
        text: &str,
    ) {
        let fitted = fit(text, font, size, max_width);
        let x = center_x - font.text_width(&fitted, size) / 2.0;
        self.text(font, size, x, y, &fitted);
    }

    fn line(&mut self, width: f64, x1: f64, y1: f64, x2: f64, y2: f64) {
        let _ = writeln!(
            self.ops,
            "{} w {} {} m {} {} l S",
            num(width),
            num(x1),
            num(y1),
            num(x2),
            num(y2)
        );
    }

    fn stroke_rect(&mut self, width: f64, x: f64, y: f64, w: f64, h: f64) {
        let _ = writeln!(
            self.ops,
            "{} w {} {} {} {} re S",
            num(width),
            num(x),
            num(y),
            num(w),
            num(h)
        );
    }

    fn fill_rect(&mut self, x: f64, y: f64, w: f64, h: f64) {
        let _ = writeln!(self.ops, "{} {} {} {} re", num(x), num(y), num(w), num(h));
    }

    /// Draws a Code 128 B barcode of `data` centred on `center_x`, bars from
    /// `y` to `y + height`, at most `max_width` wide including quiet zones.
    fn barcode(&mut self, data: &str, center_x: f64, y: f64, height: f64, max_width: f64) {
        let widths = code128_widths(&code128b_values(data));
        let symbol_modules: usize = widths.iter().map(|&w| usize::from(w)).sum();
        let total_modules = symbol_modules + 2 * QUIET_MODULES;
        let module = (max_width / total_modules as f64).min(MAX_MODULE_W);
        let mut x = center_x - symbol_modules as f64 * module / 2.0;
        for (index, &w) in widths.iter().enumerate() {
            let w = f64::from(w) * module;
            if index % 2 == 0 {
                self.fill_rect(x, y, w, height);
            }
            x += w;
        }
        self.ops.push_str("f\n");
    }
}

/// Formats grams as kilograms with two decimals, rounded half up.
fn format_weight(grams: u32) -> String {
    let hundredths = (u64::from(grams) + 5) / 10;
    format!("{}.{:02} kg", hundredths / 100, hundredths % 100)
}

/// Builds the page content stream for `label`.
fn page_content(label: &Label<'_>) -> String {
    let mut c = Content::default();
    draw_frame(&mut c);
    draw_from(&mut c, label);
    draw_service_and_weight(&mut c, label);
    draw_ship_to(&mut c, label);
    draw_order_and_pickup(&mut c, label);
    draw_tracking(&mut c, label);
    c.ops
}

/// Draws the frame and the rules between the sections.
fn draw_frame(c: &mut Content) {
    let inner_w = PAGE_W - 2.0 * MARGIN;
    let right = PAGE_W - MARGIN;
    c.stroke_rect(1.5, MARGIN, MARGIN, inner_w, PAGE_H - 2.0 * MARGIN);
    c.line(1.0, 180.0, 340.0, 180.0, PAGE_H - MARGIN);
    c.line(1.5, MARGIN, 340.0, right, 340.0);
    c.line(1.5, MARGIN, 200.0, right, 200.0);
    c.line(1.5, MARGIN, 160.0, right, 160.0);
}

/// Draws the FROM block (top left).
fn draw_from(c: &mut Content, label: &Label<'_>) {
    c.text(Font::Bold, 7.0, TEXT_X, 414.0, "FROM:");
    let mut y = 403.0;
    for line in label.ship_from.iter().take(MAX_FROM_LINES) {
        c.text_fit(Font::Regular, 8.0, TEXT_X, y, 180.0 - TEXT_X - 4.0, line);
        y -= 9.5;
    }
}

/// Draws the service and weight (top right). A long service name is shrunk
/// (down to 8 pt) before it is cut.
fn draw_service_and_weight(c: &mut Content, label: &Label<'_>) {
    let box_x = 186.0;
    let box_w = TEXT_RIGHT - box_x;
    c.text(Font::Bold, 7.0, box_x, 414.0, "SERVICE:");
    let service = sanitize(label.service);
    let natural = Font::Bold.text_width(&service, 18.0);
    let size = if natural > box_w {
        (18.0 * box_w / natural).max(8.0)
    } else {
        18.0
    };
    c.text_fit(Font::Bold, size, box_x, 394.0, box_w, &service);
    c.text(Font::Bold, 7.0, box_x, 370.0, "WEIGHT:");
    c.text_fit(
        Font::Bold,
        13.0,
        box_x,
        352.0,
        box_w,
        &format_weight(label.weight_grams),
    );
}

/// Draws the SHIP TO block.
fn draw_ship_to(c: &mut Content, label: &Label<'_>) {
    c.text(Font::Bold, 9.0, TEXT_X, 327.0, "SHIP TO:");
    let mut y = 309.0;
    for line in label.ship_to.iter().take(MAX_TO_LINES) {
        c.text_fit(
            Font::Bold,
            13.0,
            TEXT_X + 8.0,
            y,
            TEXT_RIGHT - TEXT_X - 8.0,
            line,
        );
        y -= 16.0;
    }
}

/// Draws the order id and the pickup window.
fn draw_order_and_pickup(c: &mut Content, label: &Label<'_>) {
    let value_x = 62.0;
    c.text(Font::Bold, 8.0, TEXT_X, 185.0, "ORDER:");
    c.text_fit(
        Font::Regular,
        10.0,
        value_x,
        185.0,
        TEXT_RIGHT - value_x,
        label.order_id,
    );
    c.text(Font::Bold, 8.0, TEXT_X, 169.0, "PICKUP:");
    c.text_fit(
        Font::Regular,
        10.0,
        value_x,
        169.0,
        TEXT_RIGHT - value_x,
        label.pickup,
    );
}

/// Draws the tracking barcode with the encoded text below it. Over-long
/// numbers are cut to `MAX_BARCODE_CHARS` so the bars stay scannable; the
/// printed text is exactly what the barcode holds.
fn draw_tracking(c: &mut Content, label: &Label<'_>) {
    let inner_w = PAGE_W - 2.0 * MARGIN;
    let center_x = PAGE_W / 2.0;
    c.text(Font::Bold, 7.0, TEXT_X, 149.0, "TRACKING #:");
    let tracking: String = sanitize(label.tracking_number)
        .chars()
        .take(MAX_BARCODE_CHARS)
        .collect();
    if !tracking.is_empty() {
        c.barcode(&tracking, center_x, 46.0, 92.0, inner_w - 8.0);
        c.text_centered(Font::Bold, 12.0, center_x, 26.0, inner_w - 8.0, &tracking);
    }
}

/// Collects numbered objects and writes the xref table and trailer.
struct PdfWriter {
    out: Vec<u8>,
    offsets: Vec<usize>,
}

impl PdfWriter {
    fn new() -> Self {
        // The binary comment marks the file as binary for transfer tools.
        let mut out = b"%PDF-1.4\n%".to_vec();
        out.extend_from_slice(&[0xE2, 0xE3, 0xCF, 0xD3, b'\n']);
        Self {
            out,
            offsets: Vec::new(),
        }
    }

    /// Appends the next object (numbered from 1) with the given body.
    fn object(&mut self, body: &[u8]) {
        self.offsets.push(self.out.len());
        let header = format!("{} 0 obj\n", self.offsets.len());
        self.out.extend_from_slice(header.as_bytes());
        self.out.extend_from_slice(body);
        self.out.extend_from_slice(b"\nendobj\n");
    }

    /// Appends a stream object holding `data`.
    fn stream(&mut self, data: &[u8]) {
        let mut body = format!("<< /Length {} >>\nstream\n", data.len()).into_bytes();
        body.extend_from_slice(data);
        body.extend_from_slice(b"\nendstream");
        self.object(&body);
    }

    /// Writes the xref table (every entry exactly 20 bytes) and trailer.
    fn finish(mut self, root: usize) -> Vec<u8> {
        let xref_offset = self.out.len();
        let mut tail = format!("xref\n0 {}\n0000000000 65535 f \n", self.offsets.len() + 1);
        for offset in &self.offsets {
            let _ = writeln!(tail, "{offset:010} 00000 n ");
        }
        let _ = write!(
            tail,
            "trailer\n<< /Size {} /Root {root} 0 R >>\nstartxref\n{xref_offset}\n%%EOF\n",
            self.offsets.len() + 1
        );
        self.out.extend_from_slice(tail.as_bytes());
        self.out
    }
}

/// Renders the label as a single-page PDF (288 x 432 pt = 4x6 in).
///
/// Never panics; the same label always gives byte-identical output.
pub fn render_pdf(label: &Label<'_>) -> Vec<u8> {
    let content = page_content(label);
    let mut pdf = PdfWriter::new();
    pdf.object(b"<< /Type /Catalog /Pages 2 0 R >>");
    pdf.object(b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    let page = format!(
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] \
         /Resources << /Font << /F1 4 0 R /F2 5 0 R /F3 7 0 R /F4 8 0 R >> >> \
         /Contents 6 0 R >>",
        num(PAGE_W),
        num(PAGE_H)
    );
    pdf.object(page.as_bytes());
    pdf.object(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    );
    pdf.object(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    );
    pdf.stream(content.as_bytes());
    // Objects 7 and 8: the composite fonts; 9 and 10 their descendants; 11
    // the ToUnicode map they share.
    for name in ["Unicode", "Unicode-Bold"] {
        let descendant = pdf.offsets.len() + 3;
        let font = format!(
            "<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H \
             /DescendantFonts [{descendant} 0 R] /ToUnicode 11 0 R >>"
        );
        pdf.object(font.as_bytes());
    }
    for (name, font) in [("Unicode", Font::Regular), ("Unicode-Bold", Font::Bold)] {
        let descendant = format!(
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} \
             /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> \
             /FontDescriptor << /Type /FontDescriptor /FontName /{name} /Flags 32 \
             /FontBBox [-166 -225 1000 931] /ItalicAngle 0 /Ascent 718 /Descent -207 \
             /CapHeight 718 /StemV 88 >> /DW 556 {} /CIDToGIDMap /Identity >>",
            composite_widths(font)
        );
        pdf.object(descendant.as_bytes());
    }
    pdf.stream(&to_unicode_cmap());
    pdf.finish(1)
}

/// The `/W` entry of a composite font: ASCII as wide as in `font`'s
/// Helvetica (a run with one accented letter is drawn whole in the
/// composite font), a full em for the wide blocks of [`is_wide`], and
/// `/DW` (556) for the rest: the widths the layout measured with.
fn composite_widths(font: Font) -> String {
    let ascii: Vec<String> = font.widths().iter().map(u16::to_string).collect();
    format!(
        "/W [32 [{}] 4352 4447 1000 11904 42191 1000 44032 55203 1000 \
         63744 64255 1000 65072 65103 1000 65280 65376 1000 65504 65510 1000]",
        ascii.join(" ")
    )
}

/// A ToUnicode CMap mapping every two-byte code to the same UTF-16 value:
/// the codes the composite fonts are drawn with are the text's own
/// characters. `bfrange` may only vary the last byte, hence one range per
/// high byte.
fn to_unicode_cmap() -> Vec<u8> {
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
         /CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n\
         /CMapName /Orderflow-Identity-UCS def\n/CMapType 2 def\n\
         1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    for chunk in (0..=0xFFu32).collect::<Vec<_>>().chunks(100) {
        let _ = writeln!(cmap, "{} beginbfrange", chunk.len());
        for high in chunk {
            // Surrogate codes are never drawn (sanitize keeps to the basic
            // plane); mapping them costs nothing.
            let _ = writeln!(cmap, "<{high:02X}00> <{high:02X}FF> <{high:02X}00>");
        }
        cmap.push_str("endbfrange\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend");
    cmap.into_bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn sample() -> Label<'static> {
        Label {
            tracking_number: "OF1234567890",
            order_id: "ord-(42)\\x",
            service: "GROUND",
            ship_from: &["Orderflow Fulfilment", "1 Dock Road", "Leeds LS1 1AA", "UK"],
            ship_to: &[
                "Ada Lovelace",
                "12 St James's Square",
                "London SW1Y 4JH",
                "United Kingdom",
            ],
            pickup: "2026-11-25 09:00\u{2013}12:00 UTC",
            weight_grams: 1250,
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).rposition(|w| w == needle)
    }

    /// Checks the xref table against the objects; returns the object count.
    fn check_xref(pdf: &[u8]) -> usize {
        let start = rfind(pdf, b"startxref\n").unwrap() + "startxref\n".len();
        let end = start + pdf[start..].iter().position(|&b| b == b'\n').unwrap();
        let xref: usize = std::str::from_utf8(&pdf[start..end])
            .unwrap()
            .parse()
            .unwrap();
        assert!(pdf[xref..].starts_with(b"xref\n0 "));
        let table = std::str::from_utf8(&pdf[xref..]).unwrap();
        let mut lines = table.lines().skip(1);
        let count: usize = lines.next().unwrap()[2..].parse().unwrap();
        let entries: Vec<&str> = lines.take(count).collect();
        assert_eq!(entries[0], "0000000000 65535 f ");
        for (number, entry) in entries.iter().enumerate().skip(1) {
            assert_eq!(entry.len(), 19, "entry plus LF must be 20 bytes");
            assert!(entry.ends_with(" 00000 n "));
            let offset: usize = entry[..10].parse().unwrap();
            let expected = format!("{number} 0 obj");
            assert!(
                pdf[offset..].starts_with(expected.as_bytes()),
                "object {number} not at {offset}"
            );
        }
        assert!(table.contains(&format!("trailer\n<< /Size {count} /Root 1 0 R >>")));
        count
    }

    #[test]
    fn output_is_deterministic() {
        let a = render_pdf(&sample());
        let b = render_pdf(&sample());
        assert!(a == b, "same input must give byte-identical output");
        let other = Label {
            weight_grams: 1260,
            ..sample()
        };
        assert!(
            a != render_pdf(&other),
            "different input must change the output"
        );
    }

    #[test]
    fn starts_with_header_and_ends_with_eof() {
        let pdf = render_pdf(&sample());
        assert!(pdf.starts_with(b"%PDF-1.4\n"));
        assert!(pdf.ends_with(b"%%EOF\n"));
    }

    #[test]
    fn xref_offsets_point_at_objects() {
        // Catalog, pages, page, two Helvetica fonts, content, two composite
        // fonts, their descendants, the ToUnicode map; and the free entry.
        assert_eq!(check_xref(&render_pdf(&sample())), 12);
    }

    #[test]
    fn stream_length_is_exact() {
        let pdf = render_pdf(&sample());
        let length_at = find(&pdf, b"/Length ").unwrap() + "/Length ".len();
        let length_end = length_at + pdf[length_at..].iter().position(|&b| b == b' ').unwrap();
        let length: usize = std::str::from_utf8(&pdf[length_at..length_end])
            .unwrap()
            .parse()
            .unwrap();
        let data = find(&pdf, b"stream\n").unwrap() + "stream\n".len();
        let end = find(&pdf, b"\nendstream").unwrap();
        assert_eq!(end - data, length);
    }

    #[test]
    fn code128_checksum_known_vector() {
        // By hand for "PJJ123C" in code set B (value = ASCII - 32):
        // 104 + 1*48(P) + 2*42(J) + 3*42(J) + 4*17(1) + 5*18(2) + 6*19(3) + 7*35(C)
        // = 104 + 48 + 84 + 126 + 68 + 90 + 114 + 245 = 879; 879 mod 103 = 55 ('W').
        assert_eq!(
            code128b_values("PJJ123C"),
            vec![104, 48, 42, 42, 17, 18, 19, 35, 55, 106]
        );
        // "Wikipedia" in code set B, checksum worked out the same way:
        // 104 + 55 + 2*73 + 3*75 + 4*73 + 5*80 + 6*69 + 7*68 + 8*73 + 9*65 = 3281; mod 103 = 88.
        assert_eq!(
            code128_checksum(&[104, 55, 73, 75, 73, 80, 69, 68, 73, 65]),
            88
        );
    }

    #[test]
    fn code128_patterns_are_well_formed() {
        for (value, pattern) in CODE128_PATTERNS.iter().enumerate() {
            let modules: u32 = pattern.iter().map(|d| u32::from(d - b'0')).sum();
            assert_eq!(modules, 11, "pattern {value}");
        }
        let stop: u32 = CODE128_STOP.iter().map(|d| u32::from(d - b'0')).sum();
        assert_eq!(stop, 13);
        let mut unique = CODE128_PATTERNS.to_vec();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 106);
        // Start B, 'A', checksum, stop: 11 + 11 + 11 + 13 modules.
        let widths = code128_widths(&code128b_values("A"));
        assert_eq!(widths.iter().map(|&w| u32::from(w)).sum::<u32>(), 46);
        assert_eq!(&widths[..6], &[2, 1, 1, 2, 1, 4]);
    }

    #[test]
    fn pdf_strings_are_escaped() {
        assert_eq!(escape_pdf_string(r"a(b)c\d"), r"a\(b\)c\\d");
        let pdf = render_pdf(&sample());
        assert!(find(&pdf, br"(ord-\(42\)\\x) Tj").is_some());
    }

    #[test]
    fn text_is_sanitized() {
        assert_eq!(
            sanitize("09:00\u{2013}12:00 Zürich\n\u{1F4E6}"),
            "09:00-12:00 Zürich??"
        );
        let pdf = render_pdf(&sample());
        assert!(find(&pdf, b"(2026-11-25 09:00-12:00 UTC) Tj").is_some());
        assert!(find(&pdf, b"(1.25 kg) Tj").is_some());
    }

    #[test]
    fn long_lines_are_cut_to_fit() {
        let long = "W".repeat(500);
        let fitted = fit(&long, Font::Bold, 13.0, 200.0);
        assert!(fitted.ends_with("..."));
        assert!(Font::Bold.text_width(&fitted, 13.0) <= 200.0);
        assert_eq!(fit("short", Font::Regular, 10.0, 200.0), "short");
        assert_eq!(fit("anything", Font::Regular, 10.0, 1.0), "");
        assert_eq!(format_weight(0), "0.00 kg");
        assert_eq!(format_weight(u32::MAX), "4294967.30 kg");
    }

    #[test]
    fn empty_and_huge_inputs_do_not_panic() {
        let empty = Label {
            tracking_number: "",
            order_id: "",
            service: "",
            ship_from: &[],
            ship_to: &[],
            pickup: "",
            weight_grams: 0,
        };
        check_xref(&render_pdf(&empty));

        let huge = "\u{1F4E6}()\\\r\n\u{7f}".repeat(5_000) + &"M".repeat(100_000);
        let many: Vec<&str> = vec![huge.as_str(); 1_000];
        let wild = Label {
            tracking_number: &huge,
            order_id: &huge,
            service: &huge,
            ship_from: &many,
            ship_to: &many,
            pickup: &huge,
            weight_grams: u32::MAX,
        };
        let pdf = render_pdf(&wild);
        check_xref(&pdf);
        assert!(pdf.len() < 64 * 1024);
    }
}
