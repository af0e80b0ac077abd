//! The JSON Schema of each event's `detail`, generated from the Rust types.
//!
//! `cargo xtask schemas` writes them to `events/schemas/<DetailType>.json`;
//! a test fails when the committed files differ from what the code makes.

use schemars::{JsonSchema, Schema, generate::SchemaSettings};

use crate::envelope::Detail;
use crate::events::{
    EventKind, OrderPlaced, PaymentAuthorized, PaymentDeclined, PaymentVoided, ShipmentScheduled,
    StockReleased, StockReserved, StockUnavailable,
};

/// The schema of the `detail` of an event of kind `kind`.
pub fn detail_schema(kind: EventKind) -> Schema {
    match kind {
        EventKind::OrderPlaced => schema_of::<OrderPlaced>(kind),
        EventKind::PaymentAuthorized => schema_of::<PaymentAuthorized>(kind),
        EventKind::PaymentDeclined => schema_of::<PaymentDeclined>(kind),
        EventKind::PaymentVoided => schema_of::<PaymentVoided>(kind),
        EventKind::StockReserved => schema_of::<StockReserved>(kind),
        EventKind::StockUnavailable => schema_of::<StockUnavailable>(kind),
        EventKind::StockReleased => schema_of::<StockReleased>(kind),
        EventKind::ShipmentScheduled => schema_of::<ShipmentScheduled>(kind),
    }
}

/// The schema file's text: pretty JSON with a trailing newline.
pub fn detail_schema_text(kind: EventKind) -> String {
    let mut text = serde_json::to_string_pretty(&detail_schema(kind)).unwrap_or_default();
    text.push('\n');
    text
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
