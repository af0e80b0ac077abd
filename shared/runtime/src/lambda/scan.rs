//! The fast path of [`read_invocation`](super::read_invocation): one pass
//! over an SQS event as Lambda writes it.
//!
//! An SQS record's body is the EventBridge envelope as JSON text, so every
//! quote in it arrives escaped (`{\"version\": \"0\", …`): about a hundred
//! escapes in a typical body. serde_json finds the end of such a string
//! and copies it out piece by piece, which was most of the cost of reading
//! a record. This scanner reads the event's members itself and copies a
//! body between escapes eight bytes at a time.
//!
//! It reads only what it checks in full and answers `None` for anything
//! else: a `\u` escape, a member the serde path reads given twice or of
//! another type than it takes, deep nesting, anything that is not JSON.
//! The serde path then reads that payload, or names what is wrong with it.
//! So the scanner can only be faster, never different: the `invocation`
//! fuzz target and the tests below hold it to the serde path.

use super::Invocation;
use crate::batch::Record;

/// How deep a skipped value may nest before the scanner leaves the payload
/// to the serde path (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 64;

/// The most room a string is given ahead of its copy (64 KiB, below glibc's
/// threshold for mapping an allocation of its own); a longer body grows.
const MAX_ROOM: usize = 64 * 1024;

/// Reads an SQS event (`{"Records": [...]}`), or `None` for anything the
/// scanner does not read in full.
pub(crate) fn sqs_event(payload: &str) -> Option<Invocation> {
    let mut scan = Scan {
        text: payload,
        at: 0,
    };
    let mut records = None;
    scan.members(|scan, key| {
        match key {
            "Records" if records.is_none() => records = Some(scan.records()?),
            "Records" => return None,
            _ => scan.skip(MAX_DEPTH)?,
        }
        Some(())
    })?;
    scan.end()?;
    // `"Records": null`, or no `Records` at all: a direct invocation, which
    // the serde path tells apart.
    let (records, source) = records?;
    let fifo = source.as_deref().is_some_and(|arn| arn.ends_with(".fifo"));
    Some(Invocation::Sqs {
        records,
        fifo,
        source,
    })
}

/// A cursor over the payload.
struct Scan<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scan<'a> {
    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        let bytes = self.text.as_bytes();
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(self.at) {
            self.at += 1;
        }
        bytes.get(self.at).copied()
    }

    /// Consumes `byte`, after whitespace.
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Nothing but whitespace is left.
    fn end(&mut self) -> Option<()> {
        self.peek().is_none().then_some(())
    }

    /// Calls `member` on each member name of an object, with the cursor on
    /// its value, which `member` must consume. A name is passed as written,
    /// escapes and all: no name with an escape (other than `\u`, which the
    /// scanner declines) can stand for one the scanner looks for, as none of
    /// those has a quote, a backslash, a slash or a control character.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.items(b'{', b'}', |scan| {
            let key = scan.raw_string()?;
            scan.eat(b':')?;
            member(scan, key)
        })
    }

    /// Calls `element` on each element of an array, with the cursor on it.
    fn elements(&mut self, element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.items(b'[', b']', element)
    }

    /// Calls `item` on each item between `open` and `close`, which commas
    /// separate; `item` must consume it.
    fn items(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        if self.peek()? == close {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                byte if byte == close => {
                    self.at += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The records, and the first one's `eventSourceARN` (the serde path
    /// reads the others' and keeps only the first).
    fn records(&mut self) -> Option<(Vec<Record>, Option<String>)> {
        let mut records = Vec::new();
        let mut source = None;
        self.elements(|scan| {
            let first = records.is_empty();
            let (record, its_source) = scan.record(first)?;
            if first {
                source = its_source;
            }
            records.push(record);
            Some(())
        })?;
        Some((records, source))
    }

    /// One record, as the serde path's `SqsRecord` reads it: `messageId`
    /// and `body` required, `receiptHandle` and `attributes` defaulted,
    /// every member at most once. Its `eventSourceARN` is checked, and
    /// copied out if `keep_source`.
    fn record(&mut self, keep_source: bool) -> Option<(Record, Option<String>)> {
        let mut message_id = None;
        let mut body = None;
        let mut receipt_handle = None;
        let mut receive_count = None;
        let mut source = None;
        self.members(|scan, key| {
            match key {
                "messageId" if message_id.is_none() => message_id = Some(scan.string()?),
                "body" if body.is_none() => body = Some(scan.string()?),
                "receiptHandle" if receipt_handle.is_none() => {
                    receipt_handle = Some(scan.string()?)
                }
                "attributes" if receive_count.is_none() => {
                    receive_count = Some(scan.receive_count()?)
                }
                "eventSourceARN" if source.is_none() => {
                    source = Some(if keep_source {
                        scan.optional_string()?
                    } else {
                        scan.optional_raw()?.map(|_| String::new())
                    })
                }
                "messageId" | "body" | "receiptHandle" | "attributes" | "eventSourceARN" => {
                    return None;
                }
                _ => scan.skip(MAX_DEPTH)?,
            }
            Some(())
        })?;
        let record = Record {
            message_id: message_id?,
            body: body?,
            receive_count: receive_count.flatten().unwrap_or(1),
            receipt_handle: receipt_handle.unwrap_or_default(),
        };
        Some((record, source.flatten()))
    }

    /// The record's `attributes` object: its `ApproximateReceiveCount` read
    /// as a number (`None` when absent, null or not a `u32`).
    fn receive_count(&mut self) -> Option<Option<u32>> {
        let mut count = None;
        self.members(|scan, key| {
            match key {
                "ApproximateReceiveCount" if count.is_none() => count = Some(scan.optional_raw()?),
                "ApproximateReceiveCount" => return None,
                _ => scan.skip(MAX_DEPTH)?,
            }
            Some(())
        })?;
        // Read as written: an escape would stand for no digit, and would
        // fail the parse of the unescaped text as it fails this one.
        Some(count.flatten().and_then(|c| c.parse().ok()))
    }

    /// A string as written (escapes and all, each checked), or null.
    fn optional_raw(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.raw_string().map(Some)
    }

    /// A string or null.
    fn optional_string(&mut self) -> Option<Option<String>> {
        if self.peek()? == b'n' {
            self.literal("null")?;
            return Some(None);
        }
        self.string().map(Some)
    }

    /// A string as written, escapes and all (each checked), borrowed.
    fn raw_string(&mut self) -> Option<&'a str> {
        self.peek()?;
        let start = self.at + 1;
        self.skip_string()?;
        self.text.get(start..self.at - 1)
    }

    /// A string, unescaped. One without escapes is copied whole; one with
    /// them, the body, is copied between them eight bytes at a time.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        let start = self.at;
        self.at += self.to_special()?;
        if *bytes.get(self.at)? == b'"' {
            self.at += 1;
            return self.text.get(start..self.at - 1).map(str::to_owned);
        }
        // Room for the rest of the payload, which the string (shortened by
        // its escapes) cannot outgrow, up to a bound: a batch's payload can
        // be megabytes, and room that large would be mapped afresh for
        // every record.
        let mut out = Vec::with_capacity((bytes.len() - start).min(MAX_ROOM));
        out.extend_from_slice(bytes.get(start..self.at)?);
        loop {
            match *bytes.get(self.at)? {
                b'"' => break,
                b'\\' => out.push(unescape(*bytes.get(self.at + 1)?)?),
                _ => return None,
            }
            self.at += 2;
            self.copy_to_special(&mut out)?;
        }
        self.at += 1;
        if out.capacity() > 2 * out.len() + 64 {
            // A batch's first bodies: give back the room of the others.
            out.shrink_to_fit();
        }
        // Whole characters: the copies end only at ASCII bytes.
        String::from_utf8(out).ok()
    }

    /// Copies the text from the cursor up to the next `"`, `\` or control
    /// character to `out`, leaving the cursor on it. Eight bytes go at a
    /// time, whole, and `out` is cut back to the special one: a copy of a
    /// fixed size is a single store, where one of a few bytes is a call.
    fn copy_to_special(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let bytes = self.text.as_bytes();
        while let Some(chunk) = bytes.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().ok()?);
            out.extend_from_slice(&word.to_le_bytes());
            if let Some(within) = first_special(word) {
                out.truncate(out.len() - 8 + within);
                self.at += within;
                return Some(());
            }
            self.at += 8;
        }
        let tail = self.to_special()?;
        out.extend_from_slice(bytes.get(self.at..self.at + tail)?);
        self.at += tail;
        Some(())
    }

    /// Skips a string, checking its escapes.
    fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        let bytes = self.text.as_bytes();
        loop {
            let end = self.at + self.to_special()?;
            self.at = end + 1;
            match *bytes.get(end)? {
                b'"' => return Some(()),
                b'\\' => {
                    unescape(*bytes.get(self.at)?)?;
                    self.at += 1;
                }
                _ => return None,
            }
        }
    }

    /// The distance from the cursor to the next `"`, `\` or control
    /// character (which JSON forbids raw in a string), eight bytes at a
    /// time; `None` at the end of the text.
    fn to_special(&self) -> Option<usize> {
        let rest = self.text.as_bytes().get(self.at..)?;
        let mut chunks = rest.chunks_exact(8);
        let mut offset = 0;
        for chunk in &mut chunks {
            if let Some(within) = first_special(u64::from_le_bytes(chunk.try_into().ok()?)) {
                return Some(offset + within);
            }
            offset += 8;
        }
        // The last few bytes, padded with spaces, which are not special.
        let tail = chunks.remainder();
        let mut last = [b' '; 8];
        last[..tail.len()].copy_from_slice(tail);
        first_special(u64::from_le_bytes(last)).map(|within| offset + within)
    }

    /// Skips any JSON value, checking it as serde_json does when it skips
    /// one; a string with a `\u` escape is left to the serde path.
    fn skip(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                let depth = depth.checked_sub(1)?;
                self.members(|scan, _| scan.skip(depth))
            }
            b'[' => {
                let depth = depth.checked_sub(1)?;
                self.elements(|scan| scan.skip(depth))
            }
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        let end = self.at + word.len();
        (self.text.get(self.at..end)? == word).then(|| self.at = end)
    }

    /// A number, by JSON's grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let digits = |at: &mut usize| {
            let start = *at;
            while bytes.get(*at).is_some_and(u8::is_ascii_digit) {
                *at += 1;
            }
            (*at > start).then_some(())
        };
        let mut at = self.at;
        if bytes.get(at) == Some(&b'-') {
            at += 1;
        }
        if bytes.get(at) == Some(&b'0') {
            at += 1;
        } else {
            digits(&mut at)?;
        }
        if bytes.get(at) == Some(&b'.') {
            at += 1;
            digits(&mut at)?;
        }
        if let Some(b'e' | b'E') = bytes.get(at) {
            at += 1;
            if let Some(b'+' | b'-') = bytes.get(at) {
                at += 1;
            }
            digits(&mut at)?;
        }
        self.at = at;
        Some(())
    }
}

/// The byte a one-letter escape stands for; `None` for `\u` (left to the
/// serde path) and for anything JSON does not allow.
fn unescape(letter: u8) -> Option<u8> {
    Some(match letter {
        b'"' => b'"',
        b'\\' => b'\\',
        b'/' => b'/',
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        _ => return None,
    })
}

/// Where the first `"`, `\` or control character of `word` (eight bytes,
/// little-endian) is, if it has one.
fn first_special(word: u64) -> Option<usize> {
    let found = specials(word);
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// The high bit of each byte of `word` that is `"`, `\` or below 0x20, and
/// possibly of bytes above the first such one (the usual has-zero-byte
/// trick, exact up to the first match): only the lowest set bit counts.
fn specials(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let quote = zero(word ^ (ONES * u64::from(b'"')));
    let backslash = zero(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    quote | backslash | control
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::lambda::read_with_serde;

    /// The benches' batch of ten is read in one pass, as a batch from SQS
    /// is: a bench of the serde path would time the wrong reader.
    #[test]
    fn a_bench_batch_is_read_in_one_pass() {
        let sample = crate::testing::read_sample("payment/order-placed.sqs.json").unwrap();
        let batch = crate::testing::batch_of(&sample, 10).unwrap();
        let Some(Invocation::Sqs { records, .. }) = sqs_event(&batch) else {
            panic!("the one-pass reader left the batch to serde: {batch}");
        };
        let ids: std::collections::BTreeSet<_> =
            records.iter().map(|r| r.message_id.clone()).collect();
        assert_eq!((records.len(), ids.len()), (10, 10));
        assert!(records.iter().all(|r| r.body == records[0].body));
    }

    /// The scanner answers what the serde path answers, or leaves the
    /// payload to it.
    fn agrees(payload: &str) -> Result<(), TestCaseError> {
        if let Some(fast) = sqs_event(payload) {
            let slow = read_with_serde(payload);
            prop_assert_eq!(Some(&fast), slow.as_ref().ok(), "{}", payload);
        }
        Ok(())
    }

    fn record(members: &str) -> String {
        format!(r#"{{"Records": [{{{members}}}]}}"#)
    }

    fn samples() -> Vec<(String, String)> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
        let mut samples = Vec::new();
        for dir in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.to_string_lossy().ends_with(".sqs.json") {
                    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
                    samples.push((path.display().to_string(), text));
                }
            }
        }
        assert!(samples.len() >= 6, "the sample SQS events: {samples:?}");
        samples
    }

    /// The fast path is the path: every sample event, as Lambda writes one,
    /// is read by it, as the serde path reads it.
    #[test]
    fn every_sample_sqs_event_is_read_in_one_pass_as_serde_reads_it() {
        for (name, payload) in samples() {
            let fast = sqs_event(&payload).unwrap_or_else(|| panic!("{name}: left to serde"));
            let slow = read_with_serde(&payload).map_err(|e| e.to_string());
            assert_eq!(Ok(fast), slow, "{name}");
        }
    }

    /// What the scanner does not read in full it leaves to the serde path,
    /// which accepts some of it and names what is wrong with the rest.
    #[test]
    fn what_it_does_not_read_in_full_it_leaves_to_serde() {
        let deep = format!(
            r#""messageId": "m", "body": "x", "deep": {}1{}"#,
            "[".repeat(70),
            "]".repeat(70)
        );
        let declined = [
            record(r#""messageId": "m", "body": "caf\u00e9""#),
            record(r#""messageId": "m", "b\u006fdy": "x""#),
            record(r#""messageId": "m", "body": "x", "body": "y""#),
            record(r#""messageId": "m", "body": "x", "attributes": null"#),
            record(
                r#""messageId": "m", "body": "x", "attributes": {"ApproximateReceiveCount": "2", "ApproximateReceiveCount": "3"}"#,
            ),
            record(r#""messageId": null, "body": "x""#),
            record(r#""messageId": "m""#),
            record(r#""messageId": "m", "body": "x", "extra": 01"#),
            record(r#""messageId": "m", "body": "x", "extra": [1,]"#),
            record(r#""messageId": "m", "body": "x", "extra": 1."#),
            record(r#""messageId": "m", "body": "x", "extra": nul"#),
            record(r#""messageId": "m", "body": "a \q""#),
            record("\"messageId\": \"m\", \"body\": \"a raw \u{1} control character\""),
            record(&deep),
            r#"{"Records": null}"#.to_owned(),
            r#"{"version": "0", "detail-type": "OrderPlaced"}"#.to_owned(),
            r#"{"Records": [], "Records": []}"#.to_owned(),
            r#"{"Records": []} x"#.to_owned(),
            r#"[{"Records": []}]"#.to_owned(),
            r#"{"Records": [{"messageId": "m", "body": "x"}"#.to_owned(),
        ];
        for payload in &declined {
            assert_eq!(sqs_event(payload), None, "{payload}");
        }
        let read = [
            record(r#""messageId": "m", "body": "\"\\\/\b\f\n\r\t""#),
            record(
                r#""messageId": "m", "body": "x", "attributes": {"ApproximateReceiveCount": "7"}, "eventSourceARN": "arn:aws:sqs:eu-west-1:1:q.fifo""#,
            ),
            record(
                r#""messageId": "m", "body": "x", "attributes": {"ApproximateReceiveCount": "many"}, "eventSourceARN": null"#,
            ),
            record(
                r#""messageId": "m", "body": "x", "n": [-0.5e+3, 12, 0, 1E9, true, false, null, {}, [], {"a": [1]}]"#,
            ),
            // Member names with escapes, in a member skipped.
            record(r#""messageId": "m", "body": "x", "md5OfBody": {"\"": null, "a\nb": 1}"#),
            " \n{ \"Records\" : [ ] , \"more\": {\"Records\": 1} } \t".to_owned(),
        ];
        for payload in &read {
            let fast = sqs_event(payload).unwrap_or_else(|| panic!("left to serde: {payload}"));
            let slow = read_with_serde(payload).map_err(|e| e.to_string());
            assert_eq!(Ok(fast), slow, "{payload}");
        }
    }

    /// Bodies longer than the room a string is given ahead, in a batch of
    /// many records: each grows as it needs and keeps no more room than it
    /// needs.
    #[test]
    fn long_bodies_in_a_long_batch_read_whole() {
        let long = r#"{"quote": "\"", "é": "\\"}"#.repeat(MAX_ROOM / 8);
        let bodies: Vec<serde_json::Value> = (0..40)
            .map(|i| {
                if i % 10 == 0 {
                    long.clone()
                } else {
                    format!("{i}: \"{i}\"")
                }
                .into()
            })
            .collect();
        let records: Vec<_> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| serde_json::json!({ "messageId": format!("m{i}"), "body": body }))
            .collect();
        let payload = serde_json::json!({ "Records": records }).to_string();
        let Some(Invocation::Sqs { records, .. }) = sqs_event(&payload) else {
            panic!("left to serde");
        };
        assert_eq!(records.len(), 40);
        for (record, body) in records.iter().zip(&bodies) {
            assert_eq!(Some(record.body.as_str()), body.as_str());
            assert!(record.body.capacity() <= 2 * record.body.len() + 64);
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One record as a JSON object: any id, body and source, a receive
    /// count or none, and another member before or after.
    fn record_value(
        (id, body, count, source, extra, extra_first): (
            String,
            String,
            Option<String>,
            Option<String>,
            serde_json::Value,
            bool,
        ),
    ) -> serde_json::Value {
        let mut record = serde_json::Map::new();
        if extra_first {
            record.insert("messageAttributes".into(), extra.clone());
        }
        record.insert("messageId".into(), id.into());
        record.insert("body".into(), body.into());
        if let Some(count) = count {
            let attributes =
                serde_json::json!({ "SentTimestamp": "1", "ApproximateReceiveCount": count });
            record.insert("attributes".into(), attributes);
        }
        record.insert("eventSourceARN".into(), source.into());
        if !extra_first {
            record.insert("md5OfBody".into(), extra);
        }
        serde_json::Value::Object(record)
    }

    proptest! {
        /// Records of any body and members, in any order and spacing.
        #[test]
        fn any_sqs_event_reads_as_serde_reads_it(
            records in prop::collection::vec(
                (any::<String>(), any::<String>(), prop::option::of("[0-9]{1,11}"),
                 prop::option::of(any::<String>()), json_value(), any::<bool>()),
                0..4,
            ),
            space in "[ \t\r\n]{0,2}",
        ) {
            let records: Vec<_> = records.into_iter().map(record_value).collect();
            let event = serde_json::json!({ "Records": records });
            let compact = event.to_string();
            agrees(&compact)?;
            let pretty = serde_json::to_string_pretty(&event).unwrap_or_default();
            agrees(&pretty.replace('\n', &format!("\n{space}")))?;
            // serde_json writes a control character as a `\u` escape, which
            // the scanner leaves to it; anything else it reads.
            if !compact.contains("\\u") {
                prop_assert!(sqs_event(&compact).is_some(), "{}", compact);
            }
        }

        /// Long bodies dense with escapes, then more members or none: the
        /// scanner reads them as serde does.
        #[test]
        fn long_bodies_dense_with_escapes_read_as_serde_reads_them(
            body in r#"([a-z ]{0,9}(\\"|\\\\|\\/|\\n|\\t|é|\\u00e9)?){8,40}"#,
            tail in "[a-z ]{0,80}",
        ) {
            let payload = format!(
                r#"{{"Records": [{{"messageId": "m", "body": "{body}", "md5OfBody": "{tail}"}}]}}"#
            );
            agrees(&payload)?;
            if !body.contains("\\u") {
                prop_assert!(sqs_event(&payload).is_some(), "{}", payload);
            }
        }

        /// A sample event with a few characters changed: whatever the
        /// scanner reads, serde reads the same.
        #[test]
        fn a_damaged_sample_reads_as_serde_reads_it_or_is_left_to_it(
            edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..4, any::<char>()), 1..4),
        ) {
            const JSON: &[char] = &['"', '\\', '{', '}', '[', ']', ',', ':', ' ', 'u', '0', '-', 'e', '.', 'n'];
            let sample = include_str!("../../../../events/payment/order-placed.sqs.json");
            let mut payload: Vec<char> = sample.chars().collect();
            for (at, how, c) in edits {
                let i = at.index(payload.len());
                let json = JSON[c as usize % JSON.len()];
                match how {
                    0 => payload[i] = c,
                    1 => payload[i] = json,
                    2 => payload.insert(i, json),
                    _ => {
                        payload.remove(i);
                    }
                }
            }
            let payload: String = payload.into_iter().collect();
            agrees(&payload)?;
        }
    }
}
