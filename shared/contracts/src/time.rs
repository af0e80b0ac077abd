//! Timestamps as the contract writes them: RFC 3339, read strictly.
//!
//! chrono's own `Deserialize` reads a relaxed form (a space for `T`,
//! `09: 0` for `09:00`), which the schemas' `date-time` refuses; the
//! fuzzer found the decoders accepting such events. Every timestamp field
//! reads through [`deserialize`] instead.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserializer;
use serde::de::{Error, Visitor};

/// Reads an RFC 3339 date-time (`2026-11-24T09:30:00Z`,
/// `2026-11-24T09:30:00.5+01:00`) as UTC: `T` and `Z` in either case, two
/// digits to each field, and a real date and time.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_str(Rfc3339)
}

/// Parses `text` as [`deserialize`] reads it.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    if !well_formed(text.as_bytes()) {
        return None;
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether `t` has RFC 3339's shape: `date-time = full-date "T"
/// partial-time time-offset`, every field its exact number of digits.
fn well_formed(t: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        t.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: &[u8]| t.get(i).is_some_and(|b| c.contains(b));
    let base = digits(0..4)
        && at(4, b"-")
        && digits(5..7)
        && at(7, b"-")
        && digits(8..10)
        && at(10, b"Tt")
        && digits(11..13)
        && at(13, b":")
        && digits(14..16)
        && at(16, b":")
        && digits(17..19);
    if !base {
        return false;
    }
    let mut i = 19;
    if at(i, b".") {
        let frac = t[i + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
    }
    match t.get(i..) {
        Some(b"Z" | b"z") => true,
        Some(offset) => {
            offset.len() == 6
                && (offset[0] == b'+' || offset[0] == b'-')
                && offset[1..3].iter().all(u8::is_ascii_digit)
                && offset[3] == b':'
                && offset[4..6].iter().all(u8::is_ascii_digit)
        }
        None => false,
    }
}

struct Rfc3339;

impl Visitor<'_> for Rfc3339 {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 date-time such as 2026-11-24T09:30:00Z")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Self::Value, E> {
        parse(text).ok_or_else(|| E::invalid_value(serde::de::Unexpected::Str(text), &self))
    }
}

/// A timestamp read on its own (a raw field of the checked path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timestamp(pub(crate) DateTime<Utc>);

impl<'de> serde::Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize(deserializer).map(Timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_is_read_and_nothing_looser() {
        for good in [
            "2026-11-24T09:30:00Z",
            "2026-11-24t09:30:00z",
            "2026-11-24T09:30:00.123456Z",
            "2026-11-24T10:30:00+01:00",
        ] {
            assert!(parse(good).is_some(), "{good}");
        }
        assert_eq!(
            parse("2026-11-24T10:30:00+01:00"),
            parse("2026-11-24T09:30:00Z")
        );
        for bad in [
            "2026-10-25T09: 0:00Z",
            "2026-10-25 09:00:00Z",
            "2026-10-25T09:00Z",
            "2026-10-25T09:00:00",
            "2026-10-25T09:00:00.Z",
            "2026-10-25T09:00:00+0100",
            "2026-02-30T09:00:00Z",
            "2026-10-25T25:00:00Z",
            "+2026-10-25T09:00:00Z",
            "2026-10-25T09:00:00Z ",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
