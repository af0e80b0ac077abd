//! The JSON Schema of each event's `detail`, generated from the Rust types.
//!
//! `cargo xtask schemas` writes one per version of each kind
//! ([`crate::versions`]) to `events/schemas/<DetailType>.v<N>.json`; they
//! are the released contract. A test fails when the code makes a schema
//! that breaks them ([`compat`] names each change), and when the committed
//! files are merely stale. A breaking change is made as a new version, in a
//! file of its own, beside the old one, which the code still generates.

pub mod compat;

pub use compat::{BreakingChange, Change, breaking_changes};

use schemars::{JsonSchema, Schema, generate::SchemaSettings};
use serde_json::Value;

use crate::envelope::Detail;
use crate::events::{EventKind, Payload, PayloadVisitor};
use crate::versions::OrderPlacedV1;

/// Every version of a kind that has a schema: all that this build reads.
pub fn versions(kind: EventKind) -> std::ops::RangeInclusive<u32> {
    1..=kind.schema_version()
}

/// The schema file of `version` of `kind`, under `events/schemas/`.
pub fn file_name(kind: EventKind, version: u32) -> String {
    format!("{}.v{version}.json", kind.detail_type())
}

/// The schema of the `detail` of `version` of an event of kind `kind`.
pub fn detail_schema(kind: EventKind, version: u32) -> Schema {
    let mut schema = match (kind, version) {
        (EventKind::OrderPlaced, 1) => schema_of::<OrderPlacedV1>(kind),
        _ => latest(kind),
    };
    // The version is the one thing two versions' details always differ in.
    if let Some(property) = schema
        .get_mut("properties")
        .and_then(|p| p.get_mut("schema_version"))
        .and_then(Value::as_object_mut)
    {
        property.insert("minimum".into(), version.into());
        property.insert("maximum".into(), version.into());
    }
    schema
}

/// The schema of the latest version of `kind`.
fn latest(kind: EventKind) -> Schema {
    struct Latest(EventKind);
    impl PayloadVisitor for Latest {
        type Output = Schema;
        fn visit<P: Payload>(self) -> Schema {
            schema_of::<P>(self.0)
        }
    }
    kind.payload(Latest(kind))
}

/// The schema file's text: pretty JSON with sorted keys and a trailing
/// newline.
///
/// Keys are sorted explicitly: whether `serde_json` keeps insertion order
/// depends on which crates a build unifies features with, and the file must
/// not depend on that.
pub fn detail_schema_text(kind: EventKind, version: u32) -> String {
    let value = sorted(detail_schema(kind, version).to_value());
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
