//! What the fuzz targets share: the published schema of each event's
//! `detail`, which everything the decoders accept must satisfy.

use std::sync::OnceLock;

use jsonschema::Validator;
use orderflow_contracts::EventKind;
use orderflow_contracts::schema::detail_schema;
use serde_json::Value;

/// Panics unless `detail`, which the decoders accepted as an event of
/// `kind`, is valid under that kind's published schema (formats checked).
pub fn assert_schema_accepts(kind: EventKind, detail: &Value) {
    static VALIDATORS: OnceLock<Vec<Validator>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        EventKind::ALL
            .iter()
            .map(|kind| {
                jsonschema::options()
                    .should_validate_formats(true)
                    .build(&detail_schema(*kind).to_value())
                    .expect("the published schema compiles")
            })
            .collect()
    });
    let index = EventKind::ALL
        .iter()
        .position(|k| *k == kind)
        .expect("every kind is in EventKind::ALL");
    let errors: Vec<String> = validators[index]
        .iter_errors(detail)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the decoders accepted a {kind:?} its schema refuses: {errors:?}\n{detail}"
    );
}
