//! The JSON Schema of each event's `detail`, generated from the Rust types.
//!
//! `cargo xtask schemas` writes them to `events/schemas/<DetailType>.json`;
//! they are the released contract. A test fails when the code makes a
//! schema that breaks them ([`compat`] names each change), and when the
//! committed files are merely stale.

pub mod compat;

pub use compat::{BreakingChange, Change, breaking_changes};

use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde_json::Value;

use crate::envelope::Detail;
use crate::events::{
    EventKind, OrderPlaced, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided,
    ShipmentScheduled, StockNotReserved, StockReleased, StockReserved, StockUnavailable,
};

/// The schema of the `detail` of an event of kind `kind`.
pub fn detail_schema(kind: EventKind) -> Schema {
    match kind {
        EventKind::OrderPlaced => schema_of::<OrderPlaced>(kind),
        EventKind::PaymentAuthorized => schema_of::<PaymentAuthorized>(kind),
        EventKind::PaymentDeclined => schema_of::<PaymentDeclined>(kind),
        EventKind::PaymentVoided => schema_of::<PaymentVoided>(kind),
        EventKind::PaymentCaptured => schema_of::<PaymentCaptured>(kind),
        EventKind::StockReserved => schema_of::<StockReserved>(kind),
        EventKind::StockUnavailable => schema_of::<StockUnavailable>(kind),
        EventKind::StockReleased => schema_of::<StockReleased>(kind),
        EventKind::StockNotReserved => schema_of::<StockNotReserved>(kind),
        EventKind::ShipmentScheduled => schema_of::<ShipmentScheduled>(kind),
    }
}

/// The schema file's text: pretty JSON with sorted keys and a trailing
/// newline.
///
/// Keys are sorted explicitly: whether `serde_json` keeps insertion order
/// depends on which crates a build unifies features with, and the file must
/// not depend on that.
pub fn detail_schema_text(kind: EventKind) -> String {
    let value = sorted(detail_schema(kind).to_value());
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

fn schema_of<T: JsonSchema>(kind: EventKind) -> Schema {
    let mut schema = SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<Detail<T>>();
    schema.insert("title".into(), kind.detail_type().into());
    schema.insert(
        "description".into(),
        format!(
            "The EventBridge `detail` of a `{}` event from source `{}`.",
            kind.detail_type(),
            kind.source()
        )
        .into(),
    );
    schema
}
