//! The envelope around every event, and how both delivery shapes decode.
//!
//! On the bus an event is the `detail` of an EventBridge envelope:
//!
//! ```json
//! { "version": "0", "id": "…", "detail-type": "OrderPlaced",
//!   "source": "orderflow.orders", "time": "…",
//!   "detail": { "event_id": "…", "order_id": "…", "causation_id": null,
//!               "occurred_at": "…", "schema_version": 1,
//!               "producer": "orderflow.orders", "data": { … } } }
//! ```
//!
//! An EventBridge → SQS rule target puts that whole envelope in the record
//! body; a direct EventBridge invocation passes it as the payload. Both are
//! read by [`Message::from_bus_json`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::{DeserializeOwned, DeserializeSeed, Error as _, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

use crate::error::ContractError;
use crate::events::{Event, EventKind, Payload, PayloadVisitor};
use crate::ids::{EventId, OrderId, Producer};
use crate::object::Object;
use crate::time::Timestamp;
use crate::versions::{OrderPlacedV1, upcast};

/// Room for a typical detail as [`Message::detail_json`] writes it.
const DETAIL_CAPACITY: usize = 1024;

/// What every event carries besides its payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct Metadata {
    /// This event's unique id.
    pub event_id: EventId,
    /// The order it is about: the correlation id.
    pub order_id: OrderId,
    /// The event that caused this one, if any.
    pub causation_id: Option<EventId>,
    /// When it happened (UTC, RFC 3339).
    #[serde(
        deserialize_with = "crate::time::deserialize",
        serialize_with = "crate::time::serialize"
    )]
    pub occurred_at: DateTime<Utc>,
    /// The version of the event's schema.
    // The version it was written in, which an older event keeps after
    // `crate::versions` has read it into the current shape. Each schema
    // file bounds it to its own version. (A plain comment: the doc comment
    // is the released schemas' description.)
    pub schema_version: u32,
    /// The service that produced it.
    pub producer: Producer,
}

crate::object::objects_only!(Metadata);

/// An EventBridge `detail`: metadata beside the payload in `data`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Detail<T> {
    /// The metadata, flattened into the detail object.
    #[serde(flatten)]
    pub meta: Metadata,
    /// The payload.
    pub data: T,
}

/// [`Detail`] by reference, without `flatten` (which serializes through a
/// slower path): what [`Message::detail_json`] writes.
#[derive(Serialize)]
struct DetailOut<'a> {
    event_id: &'a EventId,
    order_id: &'a OrderId,
    causation_id: &'a Option<EventId>,
    #[serde(serialize_with = "crate::time::serialize")]
    occurred_at: DateTime<Utc>,
    schema_version: u32,
    producer: &'a Producer,
    data: &'a Event,
}

/// A decoded, validated event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its metadata.
    pub meta: Metadata,
    /// Its payload.
    pub event: Event,
}

/// The parts of an EventBridge envelope that orderflow reads; the rest
/// (`version`, `account`, `region`, `resources`, …) is ignored.
#[derive(Debug, Deserialize)]
pub struct BusEnvelope<'a> {
    /// The envelope's `detail-type`.
    #[serde(rename = "detail-type", borrow)]
    pub detail_type: Option<Cow<'a, str>>,
    /// The envelope's `source`.
    #[serde(borrow)]
    pub source: Option<Cow<'a, str>>,
    /// The `detail`, left unparsed until the kind is known.
    #[serde(borrow)]
    pub detail: Option<&'a RawValue>,
}

/// A detail of the current version, read in one typed pass.
#[derive(Deserialize)]
struct TypedDetail<T> {
    event_id: EventId,
    order_id: OrderId,
    #[serde(default)]
    causation_id: Option<EventId>,
    #[serde(deserialize_with = "crate::time::deserialize")]
    occurred_at: DateTime<Utc>,
    schema_version: u64,
    producer: Producer,
    data: T,
}

/// Reads a detail of kind `kind` in one typed pass, from any point of a
/// document. Any error, a `schema_version` this build does not read or
/// whose upcast fails included, sends the event to the checked path, which
/// says what is wrong.
fn typed<'de, D: Deserializer<'de>>(kind: EventKind, de: D) -> Result<Message, D::Error> {
    fn read<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        de: D,
        wrap: fn(T) -> Event,
    ) -> Result<Message, D::Error> {
        let Object(d) = Object::<TypedDetail<T>>::deserialize(de)?;
        let event = wrap(d.data);
        let version = d.schema_version;
        if !event.kind().reads(version) {
            return Err(D::Error::custom(
                "a schema version this build does not read",
            ));
        }
        let event = upcast(version, event, "detail.data").map_err(D::Error::custom)?;
        Ok(Message {
            meta: Metadata {
                event_id: d.event_id,
                order_id: d.order_id,
                causation_id: d.causation_id,
                occurred_at: d.occurred_at,
                schema_version: version as u32,
                producer: d.producer,
            },
            event,
        })
    }
    /// [`read`] on the kind's payload type.
    struct Typed<'de, D>(D, PhantomData<&'de ()>);
    impl<'de, D: Deserializer<'de>> PayloadVisitor for Typed<'de, D> {
        type Output = Result<Message, D::Error>;
        fn visit<P: Payload>(self) -> Self::Output {
            read(self.0, P::into_event)
        }
    }
    kind.payload(Typed(de, PhantomData))
}

/// The fast path of [`Message::from_bus_json`]: one pass over an envelope
/// whose `detail-type` comes before its `detail`, as EventBridge writes
/// it, reading the detail typed as it goes by. `None` sends the envelope
/// to the two-step path, which reads a detail that comes first, and says
/// what is wrong with anything else.
fn one_pass(json: &str) -> Option<Message> {
    let mut de = serde_json::Deserializer::from_str(json);
    let message = de.deserialize_map(OnePass).ok()?;
    de.end().ok()?;
    Some(message)
}

/// The envelope's visitor for [`one_pass`].
struct OnePass;

impl<'de> Visitor<'de> for OnePass {
    type Value = Message;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an EventBridge envelope")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Message, A::Error> {
        let mut kind = None;
        let mut source: Option<&'de str> = None;
        let mut message = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            match key {
                "detail-type" if kind.is_none() => {
                    let name: &'de str = map.next_value()?;
                    let found = EventKind::from_detail_type(name).map_err(A::Error::custom)?;
                    kind = Some(found);
                }
                "source" if source.is_none() => source = Some(map.next_value()?),
                "detail" if message.is_none() => {
                    let kind = kind.ok_or_else(|| A::Error::custom("detail before detail-type"))?;
                    message = Some(map.next_value_seed(DetailOf(kind))?);
                }
                "detail-type" | "source" | "detail" => {
                    return Err(A::Error::custom("a member twice"));
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        match (kind, source, message) {
            (Some(kind), Some(source), Some(message)) if source == kind.source() => Ok(message),
            _ => Err(A::Error::custom(
                "not a complete envelope of a known source",
            )),
        }
    }
}

/// The `detail` of an event of the kind it holds, read by [`typed`].
struct DetailOf(EventKind);

impl<'de> DeserializeSeed<'de> for DetailOf {
    type Value = Message;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Message, D::Error> {
        typed(self.0, de)
    }
}

/// The detail with its metadata still raw, so that `schema_version` is
/// checked before anything else is interpreted.
#[derive(Deserialize)]
struct RawDetail<'a> {
    schema_version: Option<u64>,
    #[serde(borrow)]
    event_id: Option<&'a RawValue>,
    #[serde(borrow)]
    order_id: Option<&'a RawValue>,
    #[serde(borrow)]
    causation_id: Option<&'a RawValue>,
    #[serde(borrow)]
    occurred_at: Option<&'a RawValue>,
    #[serde(borrow)]
    producer: Option<&'a RawValue>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

impl Message {
    /// Reads an EventBridge envelope: an SQS record body, or the payload of
    /// a direct EventBridge invocation.
    pub fn from_bus_json(json: &str) -> Result<Self, ContractError> {
        // Fast path: the whole envelope in one pass. Anything it does not
        // accept is read in two steps, the envelope and then its detail,
        // which name what is wrong.
        let message = match one_pass(json) {
            Some(message) => message,
            None => return Self::from_envelope(json),
        };
        message.event.validate("detail.data")?;
        Ok(message)
    }

    /// Reads an envelope in two steps: its members, then the detail they
    /// name the kind of.
    fn from_envelope(json: &str) -> Result<Self, ContractError> {
        let (kind, detail) = Self::envelope(json)?;
        Self::from_detail(kind, detail)
    }

    /// The kind an envelope names, checked against its source, and its
    /// detail, unread.
    fn envelope(json: &str) -> Result<(EventKind, &str), ContractError> {
        let Object(envelope): Object<BusEnvelope<'_>> = parse("", json)?;
        let detail_type = envelope.detail_type.ok_or_else(|| missing("detail-type"))?;
        let kind = EventKind::from_detail_type(&detail_type)?;
        let source = envelope.source.ok_or_else(|| missing("source"))?;
        if source != kind.source() {
            return Err(ContractError::WrongSource {
                detail_type: kind.detail_type(),
                expected: kind.source(),
                found: source.into_owned(),
            });
        }
        let detail = envelope.detail.ok_or_else(|| missing("detail"))?;
        Ok((kind, detail.get()))
    }

    /// [`Message::from_bus_json`] without its fast paths: what the fuzz
    /// targets hold the fast paths to.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn from_bus_json_slowly(json: &str) -> Result<Self, ContractError> {
        let (kind, detail) = Self::envelope(json)?;
        Self::from_detail_slowly(kind, detail)
    }

    /// [`Message::from_detail`] without its fast path.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn from_detail_slowly(kind: EventKind, detail: &str) -> Result<Self, ContractError> {
        let message = Self::checked(kind, detail)?;
        message.event.validate("detail.data")?;
        Ok(message)
    }

    /// Reads the `detail` of an event of kind `kind`.
    pub fn from_detail(kind: EventKind, detail: &str) -> Result<Self, ContractError> {
        // Fast path: one typed pass over the detail. Anything it does not
        // accept goes through `checked`, which reads the version first and
        // names the failing field.
        let mut de = serde_json::Deserializer::from_str(detail);
        let fast = typed(kind, &mut de)
            .and_then(|message| de.end().map(|()| message))
            .ok();
        let message = match fast {
            Some(message) => message,
            None => Self::checked(kind, detail)?,
        };
        message.event.validate("detail.data")?;
        Ok(message)
    }

    /// Reads a detail step by step: the version before anything else, then
    /// each field, so that an error says exactly what is wrong.
    fn checked(kind: EventKind, detail: &str) -> Result<Self, ContractError> {
        let Object(raw): Object<RawDetail<'_>> = parse("detail", detail)?;
        let version = raw
            .schema_version
            .ok_or_else(|| missing("detail.schema_version"))?;
        if !kind.reads(version) {
            return Err(ContractError::UnknownVersion {
                found: version,
                supported: kind.schema_version(),
            });
        }
        let meta = Metadata {
            event_id: required("detail.event_id", raw.event_id)?,
            order_id: required("detail.order_id", raw.order_id)?,
            causation_id: match raw.causation_id {
                Some(value) => parse("detail.causation_id", value.get())?,
                None => None,
            },
            occurred_at: required::<Timestamp>("detail.occurred_at", raw.occurred_at)?.0,
            // `reads` bounds it by a `u32`.
            schema_version: version as u32,
            producer: required("detail.producer", raw.producer)?,
        };
        let data = raw.data.ok_or_else(|| missing("detail.data"))?.get();
        const DATA: &str = "detail.data";
        let event = match kind {
            EventKind::OrderPlaced if version == 1 => {
                Event::OrderPlaced(parse::<OrderPlacedV1>(DATA, data)?.into())
            }
            _ => kind.payload(Parse(data))?,
        };
        let event = upcast(version, event, DATA)?;
        Ok(Self { meta, event })
    }

    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        self.event.kind()
    }

    /// The `detail` JSON to put on the bus.
    pub fn detail_json(&self) -> String {
        let meta = &self.meta;
        let detail = DetailOut {
            event_id: &meta.event_id,
            order_id: &meta.order_id,
            causation_id: &meta.causation_id,
            occurred_at: meta.occurred_at,
            schema_version: meta.schema_version,
            producer: &meta.producer,
            data: &self.event,
        };
        // Written into room for a typical detail, rather than a buffer
        // that grows (and copies) several times on the way.
        let mut out = Vec::with_capacity(DETAIL_CAPACITY);
        // Serializing these types cannot fail: every map key is a string,
        // and serde_json writes UTF-8.
        match serde_json::to_writer(&mut out, &detail) {
            Ok(()) => String::from_utf8(out).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// The checked read of a detail's `data` as its kind's payload type.
struct Parse<'a>(&'a str);

impl PayloadVisitor for Parse<'_> {
    type Output = Result<Event, ContractError>;

    fn visit<P: Payload>(self) -> Self::Output {
        parse::<P>("detail.data", self.0).map(P::into_event)
    }
}

fn missing(field: &str) -> ContractError {
    ContractError::Missing {
        field: field.to_owned(),
    }
}

fn required<T: DeserializeOwned>(field: &str, raw: Option<&RawValue>) -> Result<T, ContractError> {
    parse(field, raw.ok_or_else(|| missing(field))?.get())
}

/// Parses `json` as `T`, naming the failing field by its path under `at`.
///
/// The fast path is plain `serde_json`; only a failure is parsed again with
/// path tracking, to name the field. Valid events, the common case, pay
/// nothing for the error reporting.
fn parse<'a, T: Deserialize<'a>>(at: &str, json: &'a str) -> Result<T, ContractError> {
    serde_json::from_str(json).map_err(|err| explain::<T>(at, json, err))
}

/// Re-parses a failed document with path tracking, to say where it failed.
fn explain<'a, T: Deserialize<'a>>(
    at: &str,
    json: &'a str,
    first: serde_json::Error,
) -> ContractError {
    let whole = || {
        if at.is_empty() {
            "$".to_owned()
        } else {
            at.to_owned()
        }
    };
    let mut de = serde_json::Deserializer::from_str(json);
    let err = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(err) => err,
        // Only trailing characters can fail after a successful value.
        Ok(_) => {
            return ContractError::Malformed {
                field: whole(),
                reason: first.to_string(),
            };
        }
    };
    let path = err.path().to_string();
    let field = match (at, path.as_str()) {
        (_, ".") => whole(),
        ("", path) => path.to_owned(),
        (at, path) => format!("{at}.{path}"),
    };
    let reason = err.into_inner().to_string();
    // serde reports a missing field as `missing field `x``; name it by path.
    if let Some(name) = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
    {
        let field = if field == "$" {
            name.to_owned()
        } else {
            format!("{field}.{name}")
        };
        return ContractError::Missing { field };
    }
    ContractError::Malformed { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DETAIL: &str = r#"{"event_id":"8b0b7a9e-2f4e-4f43-9d7e-1b2c3d4e5f60","order_id":"ord-1",
        "occurred_at":"2026-11-24T09:30:00Z","schema_version":1,"producer":"orderflow.payment",
        "extra":true,"data":{"authorization_id":"auth_1","amount_minor":5,"currency":"EUR"}}"#;

    fn fast(kind: EventKind, detail: &str) -> Option<Message> {
        let mut de = serde_json::Deserializer::from_str(detail);
        typed(kind, &mut de).ok()
    }

    /// A bus envelope around [`DETAIL`], with its members in `order`.
    fn envelope(order: &[&str]) -> String {
        let members: Vec<String> = order
            .iter()
            .map(|m| match *m {
                "detail-type" => r#""detail-type":"PaymentAuthorized""#.to_owned(),
                "source" => r#""source":"orderflow.payment""#.to_owned(),
                "detail" => format!(r#""detail":{DETAIL}"#),
                other => format!(r#""{other}":["ignored",{{"a":1}}]"#),
            })
            .collect();
        format!("{{{}}}", members.join(","))
    }

    /// serde reads a derived struct from an array too, field by field in
    /// order; the schemas say object, and so do the decoders.
    #[test]
    fn an_object_written_as_an_array_is_refused_where_it_is() {
        let data = r#"{"authorization_id":"auth_1","amount_minor":5,"currency":"EUR"}"#;
        let detail = |data: &str| {
            DETAIL.replace(
                r#"{"authorization_id":"auth_1","amount_minor":5,"currency":"EUR"}"#,
                data,
            )
        };
        let as_array = detail(r#"["auth_1",5,"EUR"]"#);
        assert!(Message::from_detail(EventKind::PaymentAuthorized, &detail(data)).is_ok());
        for (text, field) in [
            (as_array.clone(), "detail.data"),
            (
                r#"["8b0b7a9e-2f4e-4f43-9d7e-1b2c3d4e5f60","ord-1",null,"2026-11-24T09:30:00Z",1,"orderflow.payment",{}]"#.to_owned(),
                "detail",
            ),
        ] {
            match Message::from_detail(EventKind::PaymentAuthorized, &text) {
                Err(ContractError::Malformed { field: f, reason }) => {
                    assert_eq!(f, field, "{reason}");
                    assert!(reason.contains("expected"), "{reason}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
        let envelope = format!(r#"["PaymentAuthorized","orderflow.payment",{DETAIL}]"#);
        assert!(Message::from_bus_json(&envelope).is_err());
        let nested = format!(
            r#"{{"detail-type":"PaymentAuthorized","source":"orderflow.payment","detail":{as_array}}}"#
        );
        assert!(matches!(
            Message::from_bus_json(&nested),
            Err(ContractError::Malformed { field, .. }) if field == "detail.data"
        ));
    }

    /// chrono alone reads `09: 0` as `09:00`; the fuzzer found it.
    #[test]
    fn a_timestamp_that_is_not_rfc_3339_is_refused() {
        let loose = DETAIL.replace("2026-11-24T09:30:00Z", "2026-11-24T09: 0:00Z");
        assert!(matches!(
            Message::from_detail(EventKind::PaymentAuthorized, &loose),
            Err(ContractError::Malformed { field, .. }) if field == "detail.occurred_at"
        ));
    }

    #[test]
    fn the_fast_and_the_checked_path_read_the_same_message() {
        let fast = fast(EventKind::PaymentAuthorized, DETAIL);
        let checked = Message::checked(EventKind::PaymentAuthorized, DETAIL).ok();
        assert!(fast.is_some());
        assert_eq!(fast, checked);
    }

    #[test]
    fn the_fast_path_leaves_other_versions_to_the_checked_path() {
        let v2 = DETAIL.replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(fast(EventKind::PaymentAuthorized, &v2), None);
        assert!(matches!(
            Message::from_detail(EventKind::PaymentAuthorized, &v2),
            Err(ContractError::UnknownVersion { found: 2, .. })
        ));
        let envelope = envelope(&["detail-type", "source", "detail"])
            .replace("\"schema_version\":1", "\"schema_version\":2");
        assert_eq!(one_pass(&envelope), None);
        assert!(matches!(
            Message::from_bus_json(&envelope),
            Err(ContractError::UnknownVersion { found: 2, .. })
        ));
    }

    #[test]
    fn one_pass_reads_what_the_two_steps_read_in_any_member_order() {
        let expected = Message::from_envelope(&envelope(&["detail-type", "source", "detail"]));
        assert!(expected.is_ok());
        for order in [
            ["version", "detail-type", "source", "detail"],
            ["detail-type", "version", "detail", "source"],
            ["source", "detail-type", "detail", "resources"],
        ] {
            let json = envelope(&order);
            assert_eq!(
                one_pass(&json).ok_or("one pass"),
                expected.clone().map_err(|_| "two")
            );
            assert_eq!(Message::from_bus_json(&json), expected, "{order:?}");
        }
        // A detail before its detail-type is read in two steps.
        let late = envelope(&["detail", "source", "detail-type"]);
        assert_eq!(one_pass(&late), None);
        assert_eq!(Message::from_bus_json(&late), expected);
    }

    #[test]
    fn what_one_pass_refuses_the_two_steps_explain() {
        let twice = envelope(&["detail-type", "source", "detail", "detail-type"]);
        assert_eq!(one_pass(&twice), None);
        assert!(matches!(
            Message::from_bus_json(&twice),
            Err(ContractError::Malformed { .. })
        ));
        let wrong = envelope(&["detail-type", "source", "detail"]).replace(
            "orderflow.payment\",\"detail\"",
            "orderflow.orders\",\"detail\"",
        );
        assert_eq!(one_pass(&wrong), None);
        assert!(matches!(
            Message::from_bus_json(&wrong),
            Err(ContractError::WrongSource { .. })
        ));
        let no_source = envelope(&["detail-type", "detail"]);
        assert_eq!(one_pass(&no_source), None);
        assert!(matches!(
            Message::from_bus_json(&no_source),
            Err(ContractError::Missing { .. })
        ));
        let trailing = format!("{} x", envelope(&["detail-type", "source", "detail"]));
        assert_eq!(one_pass(&trailing), None);
        assert!(Message::from_bus_json(&trailing).is_err());
    }
}
