//! Timestamps as the contract writes them: RFC 3339, read strictly.
//!
//! chrono's own `Deserialize` reads a relaxed form (a space for `T`,
//! `09: 0` for `09:00`), which the schemas' `date-time` refuses; the
//! fuzzer found the decoders accepting such events. Every timestamp field
//! reads through [`deserialize`] instead, and writes through [`serialize`].

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::de::{Error, Visitor};
use serde::{Deserializer, Serialize, Serializer};

/// Writes `t` exactly as chrono's `Serialize` does (`2026-11-24T09:30:00Z`,
/// a fraction of 3, 6 or 9 digits when there is one), without chrono's
/// path through `fmt`: that cost an outgoing event more than its ids.
/// Years outside 0–9999 and leap seconds, which no event of this contract
/// reads, are left to chrono.
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0; RFC3339_MAX];
    match write_rfc3339(t, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => t.serialize(serializer),
    }
}

/// The longest text [`write_rfc3339`] writes: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const RFC3339_MAX: usize = 30;

/// `t` as [`serialize`] writes it, in `buf`; `None` for what it leaves to
/// chrono.
fn write_rfc3339<'b>(t: &DateTime<Utc>, buf: &'b mut [u8; RFC3339_MAX]) -> Option<&'b str> {
    let year = u32::try_from(t.year()).ok().filter(|&y| y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos.is_multiple_of(1_000_000) {
        (nanos / 1_000_000, 3)
    } else if nanos.is_multiple_of(1_000) {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    *buf = *b"0000-00-00T00:00:00.000000000Z";
    let mut put = |end: usize, mut value: u32, width: usize| {
        for slot in buf[end - width..end].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(4, year, 4);
    put(7, t.month(), 2);
    put(10, t.day(), 2);
    put(13, t.hour(), 2);
    put(16, t.minute(), 2);
    put(19, t.second(), 2);
    let len = if digits == 0 {
        buf[19] = b'Z';
        20
    } else {
        put(20 + digits, fraction, digits);
        buf[20 + digits] = b'Z';
        21 + digits
    };
    std::str::from_utf8(&buf[..len]).ok()
}

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

    /// A timestamp written through [`serialize`].
    #[derive(Serialize)]
    struct Ours(#[serde(serialize_with = "serialize")] DateTime<Utc>);

    #[test]
    fn timestamps_are_written_exactly_as_chrono_writes_them() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Fractions of each width chrono picks, and none.
        let nanos = |n: u64| match n % 5 {
            0 => 0,
            1 => (n % 1000) as u32 * 1_000_000,
            2 => (n % 1_000_000) as u32 * 1_000,
            3 => (n % 1_000_000_000) as u32,
            _ => 999_999_999,
        };
        // Years 0 to 9999, and either side of them, which chrono writes.
        let first = DateTime::parse_from_rfc3339("0000-01-01T00:00:00Z").map(|t| t.timestamp());
        let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59Z").map(|t| t.timestamp());
        let (Ok(first), Ok(last)) = (first, last) else {
            panic!("the bounds parse");
        };
        let span = (last - first + 1) as u64;
        let mut times: Vec<DateTime<Utc>> = (0..20_000)
            .filter_map(|_| {
                let n = next();
                DateTime::from_timestamp(first + (n % span) as i64, nanos(n >> 7))
            })
            .collect();
        times.extend(
            [first, last, 0, first - 1, last + 1]
                .into_iter()
                .filter_map(|s| DateTime::from_timestamp(s, 0)),
        );
        times.extend(parse("2026-11-24T09:30:00.5Z"));
        assert!(times.len() > 19_000);
        for t in times {
            assert_eq!(
                serde_json::to_string(&Ours(t)).ok(),
                serde_json::to_string(&t).ok(),
                "{t:?}"
            );
        }
    }

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
