//! What the fuzz targets share: the published schema of each event's
//! `detail`, which everything the decoders accept must satisfy.

use std::sync::OnceLock;

use jsonschema::Validator;
use orderflow_contracts::schema::{detail_schema, versions};
use orderflow_contracts::{EventKind, Message};
use serde_json::Value;

/// Panics unless `detail`, which the decoders accepted as `message`, is
/// valid under the published schema of its kind and version (formats
/// checked).
pub fn assert_schema_accepts(message: &Message, detail: &Value) {
    static VALIDATORS: OnceLock<Vec<(EventKind, u32, Validator)>> = OnceLock::new();
    let validators = VALIDATORS.get_or_init(|| {
        EventKind::ALL
            .into_iter()
            .flat_map(|kind| versions(kind).map(move |version| (kind, version)))
            .map(|(kind, version)| {
                let validator = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&detail_schema(kind, version).to_value())
                    .expect("the published schema compiles");
                (kind, version, validator)
            })
            .collect()
    });
    let (kind, version) = (message.kind(), message.meta.schema_version);
    let (_, _, validator) = validators
        .iter()
        .find(|(k, v, _)| *k == kind && *v == version)
        .expect("every version this build reads has a schema");
    let errors: Vec<String> = validator
        .iter_errors(detail)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "the decoders accepted a {kind:?} version {version} its schema refuses: {errors:?}\n{detail}"
    );
}
