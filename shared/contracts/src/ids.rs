//! Typed ids and small validated values.
//!
//! Each string newtype checks its rule when it is read, so a value that made
//! it into a [`crate::Message`] is known to be well formed.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The unique id of one event. Retries and re-publishes of the same event
/// carry the same id, which is what makes idempotency possible.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(Uuid);

/// Fixed namespace for deriving outgoing event ids (UUID v5).
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_7700_0000_0000_0001);

impl EventId {
    /// Wraps a UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// The id of the `index`th event that `cause` produces, of kind `name`:
    /// a UUID v5 of the cause's id, then `{name}#{index}`.
    ///
    /// Deterministic, so a re-published outcome carries the same ids as the
    /// first publish and consumers recognise it as the same event.
    pub fn derive(cause: EventId, name: &str, index: usize) -> Self {
        // `{name}#{index}` written out directly: `format!` cost more than
        // the hash.
        let mut digits = itoa::Buffer::new();
        let index = digits.format(index).as_bytes();
        let mut seed = Vec::with_capacity(16 + name.len() + 1 + index.len());
        seed.extend_from_slice(cause.0.as_bytes());
        seed.extend_from_slice(name.as_bytes());
        seed.push(b'#');
        seed.extend_from_slice(index);
        Self(Uuid::new_v5(&EVENT_ID_NAMESPACE, &seed))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.0.hyphenated())
    }
}

impl JsonSchema for EventId {
    fn schema_name() -> Cow<'static, str> {
        "EventId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "uuid" })
    }
}

/// Declares a validated string newtype that serializes as a plain string.
macro_rules! string_id {
    (
        $(#[$doc:meta])*
        $name:ident, pattern = $pattern:literal, check = $check:expr
    ) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        // By hand: `serde(into)` would clone the string on every write.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl $name {
            /// Checks `value` against the rule and wraps it.
            pub fn new(value: impl Into<String>) -> Result<Self, String> {
                let value = value.into();
                let check: fn(&str) -> Result<(), String> = $check;
                check(&value)?;
                Ok(Self(value))
            }

            /// The value as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, String> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({ "type": "string", "pattern": $pattern })
            }
        }
    };
}

fn charset(value: &str, max: usize, allowed: fn(u8) -> bool, what: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    // Characters before length: every allowed character is one ASCII byte,
    // so once they all are, the length in bytes is the length in
    // characters. The first bad byte starts the bad character (allowed
    // bytes are ASCII, so it is never inside one): name that character,
    // not the byte, which would name one the input never had.
    if let Some(at) = value.bytes().position(|b| !allowed(b)) {
        let bad = value[at..]
            .chars()
            .next()
            .unwrap_or(char::REPLACEMENT_CHARACTER);
        return Err(format!(
            "{what} contains {bad:?} (U+{:04X})",
            u32::from(bad)
        ));
    }
    if value.len() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    Ok(())
}

fn id_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

string_id! {
    /// The id of an order: the correlation id of every event about it.
    #[derive(Debug)]
    OrderId, pattern = "^[A-Za-z0-9_-]{1,64}$",
    check = |v| charset(v, 64, id_char, "order id")
}

string_id! {
    /// The customer who placed an order (from `OrderPlaced` version 2).
    #[derive(Debug)]
    CustomerId, pattern = "^[A-Za-z0-9_-]{1,64}$",
    check = |v| charset(v, 64, id_char, "customer id")
}

string_id! {
    /// A stock-keeping unit.
    #[derive(Debug)]
    Sku, pattern = "^[A-Z0-9_-]{1,32}$",
    check = |v| charset(v, 32, |b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_', "sku")
}

string_id! {
    /// The service that produced an event, e.g. `orderflow.payment`.
    #[derive(Debug)]
    Producer, pattern = "^[a-z0-9.-]{1,64}$",
    check = |v| charset(v, 64, |b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-', "producer")
}

string_id! {
    /// The payment provider's id for an authorization.
    #[derive(Debug)]
    AuthorizationId, pattern = "^[A-Za-z0-9_-]{1,64}$",
    check = |v| charset(v, 64, id_char, "authorization id")
}

string_id! {
    /// A carrier tracking number.
    #[derive(Debug)]
    TrackingNumber, pattern = "^[A-Z0-9]{8,32}$",
    check = |v| {
        charset(v, 32, |b| b.is_ascii_uppercase() || b.is_ascii_digit(), "tracking number")?;
        if v.len() < 8 { return Err("tracking number is shorter than 8 characters".into()); }
        Ok(())
    }
}

string_id! {
    /// A payment provider's token for a payment method.
    ///
    /// Never a card number: a value holding a run of 12 or more digits is
    /// refused, so a primary account number cannot slip through. `Debug`
    /// redacts it, so it never reaches a log.
    PaymentToken, pattern = "^tok_[A-Za-z0-9_]{1,60}$",
    check = |v| {
        let Some(rest) = v.strip_prefix("tok_") else {
            return Err("payment token must start with `tok_`".into());
        };
        charset(rest, 60, |b| b.is_ascii_alphanumeric() || b == b'_', "payment token")?;
        let mut run = 0;
        for b in rest.bytes() {
            run = if b.is_ascii_digit() { run + 1 } else { 0 };
            if run >= 12 {
                return Err("payment token looks like a card number; send a provider token".into());
            }
        }
        Ok(())
    }
}

impl TrackingNumber {
    /// `OF` and 18 base-36 characters derived from `seed` (the order id):
    /// the same seed always gets the same tracking number, so a retried
    /// shipment keeps its number.
    ///
    /// 18 characters carry 93 bits of a UUID v5 of the seed: two of a
    /// million orders share a number with a chance of about 10^-16 (ten
    /// digits, as before, gave 39% at 100,000 orders). 20 characters stay
    /// under the label's 28-character barcode.
    pub fn derive(seed: &str) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x6f72_6465_7266_6c6f_7700_0000_0000_0002);
        const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut bits = Uuid::new_v5(&NAMESPACE, seed.as_bytes()).as_u128() >> 35;
        let mut number = *b"OF000000000000000000";
        for slot in number[2..].iter_mut().rev() {
            *slot = DIGITS[(bits % 36) as usize];
            bits /= 36;
        }
        // Only ASCII digits and capitals were written.
        Self(String::from_utf8_lossy(&number).into_owned())
    }
}

impl Producer {
    /// Wraps one of the crate's own source constants, which a test checks
    /// against the rule.
    pub(crate) fn from_trusted(source: &'static str) -> Self {
        Self(source.to_owned())
    }
}

impl fmt::Debug for PaymentToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PaymentToken(<redacted>)")
    }
}

/// How many units of a sku: at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    /// The largest quantity one order line may ask for.
    pub const MAX: u32 = 10_000;

    /// Checks and wraps a quantity.
    pub fn new(value: u32) -> Result<Self, String> {
        match value {
            0 => Err("quantity must be at least 1".into()),
            v if v > Self::MAX => Err(format!("quantity must be at most {}", Self::MAX)),
            v => Ok(Self(v)),
        }
    }

    /// The number of units.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for Quantity {
    type Error = String;
    fn try_from(value: u32) -> Result<Self, String> {
        Self::new(value)
    }
}

impl From<Quantity> for u32 {
    fn from(value: Quantity) -> u32 {
        value.0
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "integer", "minimum": 1, "maximum": Quantity::MAX })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_numbers_are_stable_valid_and_do_not_collide_over_half_a_million_orders() {
        let first = TrackingNumber::derive("ord-1");
        assert_eq!(first, TrackingNumber::derive("ord-1"));
        assert_eq!(first.as_str().len(), 20);
        assert!(TrackingNumber::new(first.as_str()).is_ok(), "{first:?}");
        let mut seen = std::collections::HashSet::new();
        for n in 0..500_000 {
            let number = TrackingNumber::derive(&format!("ord-{n}"));
            assert!(seen.insert(number.0), "ord-{n} collides");
        }
    }

    #[test]
    fn derived_event_ids_are_deterministic_and_distinct_per_name() {
        let cause = EventId::from_uuid(Uuid::from_u128(42));
        assert_eq!(
            EventId::derive(cause, "A", 0),
            EventId::derive(cause, "A", 0)
        );
        assert_ne!(
            EventId::derive(cause, "A", 0),
            EventId::derive(cause, "B", 0)
        );
        assert_ne!(
            EventId::derive(cause, "A", 0),
            EventId::derive(cause, "A", 1)
        );
    }

    #[test]
    fn derived_event_ids_are_the_v5_uuids_of_the_cause_and_name() {
        // The seed as `format!` used to write it: the same seeds, so the
        // ids published before stay the ids derived now.
        let cause = EventId::from_uuid(Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0));
        for (name, index) in [
            ("PaymentAuthorized", 0),
            ("StockReleased", 12),
            ("x".repeat(80).as_str(), 7),
        ]
        .map(|(n, i)| (n.to_owned(), i))
        {
            let mut seed = cause.as_uuid().as_bytes().to_vec();
            seed.extend_from_slice(format!("{name}#{index}").as_bytes());
            assert_eq!(
                EventId::derive(cause, &name, index),
                EventId::from_uuid(Uuid::new_v5(&EVENT_ID_NAMESPACE, &seed)),
                "{name}#{index}"
            );
        }
        assert_eq!(
            EventId::derive(cause, "A", usize::MAX),
            EventId::from_uuid(Uuid::new_v5(
                &EVENT_ID_NAMESPACE,
                &[
                    cause.as_uuid().as_bytes().as_slice(),
                    format!("A#{}", usize::MAX).as_bytes()
                ]
                .concat()
            ))
        );
    }

    #[test]
    fn payment_token_refuses_card_numbers_and_is_redacted() {
        assert!(PaymentToken::new("tok_4111111111111111").is_err());
        assert!(PaymentToken::new("4111111111111111").is_err());
        let token = PaymentToken::new("tok_visa_ok").unwrap();
        assert_eq!(format!("{token:?}"), "PaymentToken(<redacted>)");
    }

    #[test]
    fn a_character_outside_the_set_is_named_as_it_is() {
        for (id, named) in [
            ("ord-\u{2615}", "'\u{2615}' (U+2615)"),
            // Invisible ones are escaped, and named by code point.
            ("ord-\u{202e}1", "'\\u{202e}' (U+202E)"),
            ("ord-e\u{301}", "(U+0301)"),
            ("ord 1", "' ' (U+0020)"),
        ] {
            let err = OrderId::new(id).unwrap_err();
            assert!(err.contains(named), "{id:?}: {err}");
        }
        // Forty emoji are 160 bytes but 40 characters: the character is
        // what is wrong, not the length.
        let err = OrderId::new("\u{2615}".repeat(40)).unwrap_err();
        assert!(err.contains("U+2615"), "{err}");
    }

    #[test]
    fn ids_reject_bad_characters_and_lengths() {
        assert!(OrderId::new("").is_err());
        assert!(OrderId::new("a b").is_err());
        assert!(OrderId::new("x".repeat(65)).is_err());
        assert!(Sku::new("lower").is_err());
        assert!(TrackingNumber::new("SHORT").is_err());
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(Quantity::MAX + 1).is_err());
    }
}
