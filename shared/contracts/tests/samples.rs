//! The committed samples and schemas agree with the code.
//!
//! - The code breaks no schema in `events/schemas/` (the released contract),
//!   and every one of them is exactly what the code generates.
//! - Every sample in `events/` decodes to the typed event and validates
//!   against its schema; every `poison-*` sample fails with the expected
//!   error kind.

use std::fs;
use std::path::{Path, PathBuf};

use orderflow_contracts::schema::{
    breaking_changes, detail_schema, detail_schema_text, file_name as schema_file, versions,
};
use orderflow_contracts::{EventKind, Message};
use serde_json::Value;

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn samples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for function in ["payment", "inventory", "shipping"] {
        let dir = events_dir().join(function);
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the sample set, found {}",
        files.len()
    );
    files
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bus envelopes inside a sample: the SQS bodies, or the sample itself.
fn envelopes(path: &Path) -> Vec<String> {
    let text = read(path);
    let name = file_name(path);
    if name.ends_with(".sqs.json") {
        let event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let records = event["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no Records"));
        assert!(!records.is_empty(), "{name}: empty Records");
        records
            .iter()
            .map(|r| {
                r["body"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: body"))
                    .to_owned()
            })
            .collect()
    } else {
        assert!(name.ends_with(".eventbridge.json"), "{name}: unknown shape");
        vec![text]
    }
}

fn expected_poison_kind(name: &str) -> Option<&'static str> {
    let case = name.split('.').next().unwrap_or_default();
    match case {
        "poison-malformed-json" => Some("malformed"),
        "poison-unknown-version" => Some("unknown_version"),
        "poison-negative-quantity" => Some("malformed"),
        // A well-formed event of a kind the function does not consume: the
        // runtime, not the contract, refuses it (see the handler tests).
        "poison-wrong-detail-type" => None,
        other if other.starts_with("poison-") => {
            panic!("{name}: no expectation for this poison sample")
        }
        _ => None,
    }
}

#[test]
fn committed_schemas_match_the_code() {
    let dir = events_dir().join("schemas");
    let mut schemas = 0;
    for kind in EventKind::ALL {
        for version in versions(kind) {
            let name = schema_file(kind, version);
            let path = dir.join(&name);
            let committed = fs::read_to_string(&path).unwrap_or_default();
            let released: Value = serde_json::from_str(&committed)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let breaking = breaking_changes(&released, &detail_schema(kind, version).to_value());
            assert!(
                breaking.is_empty(),
                "{kind} version {version} changes in ways that break the released schema \
                 events/schemas/{name}:\n  {}\nA breaking change needs a new schema_version.",
                breaking
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n  ")
            );
            assert!(
                committed == detail_schema_text(kind, version),
                "{} is stale: run `cargo xtask schemas` and commit the result",
                path.display()
            );
            schemas += 1;
        }
    }
    let files = fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        files, schemas,
        "events/schemas holds a schema of no event kind or version"
    );
}

#[test]
fn every_sample_decodes_and_validates_against_its_schema() {
    let mut checked = 0;
    for path in samples() {
        let name = file_name(&path);
        if name.starts_with("poison-") && name != "poison-wrong-detail-type.sqs.json" {
            continue;
        }
        for body in envelopes(&path) {
            let message = Message::from_bus_json(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let envelope: Value =
                serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
            let schema_path = events_dir()
                .join("schemas")
                .join(schema_file(message.kind(), message.meta.schema_version));
            let schema: Value = serde_json::from_str(&read(&schema_path)).unwrap();
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("{}: {e}", schema_path.display()));
            let errors: Vec<String> = validator
                .iter_errors(&envelope["detail"])
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{name} does not match its schema: {errors:?}"
            );
            // Re-encoding gives a detail that decodes to the same message.
            let again = Message::from_detail(message.kind(), &message.detail_json())
                .unwrap_or_else(|e| panic!("{name}: re-encoded detail: {e}"));
            assert_eq!(again, message, "{name}: round trip");
            checked += 1;
        }
    }
    assert!(checked >= 28, "checked only {checked} samples");
}

#[test]
fn poison_samples_fail_with_the_expected_kind() {
    let mut checked = 0;
    for path in samples() {
        let name = file_name(&path);
        let Some(kind) = expected_poison_kind(&name) else {
            continue;
        };
        for body in envelopes(&path) {
            match Message::from_bus_json(&body) {
                Ok(_) => panic!("{name} decoded, but it is poison"),
                Err(err) => assert_eq!(err.kind(), kind, "{name}: {err}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 9, "three poison decode cases per function");
}

#[test]
fn schemas_refuse_what_validation_refuses() {
    let schema: Value =
        serde_json::from_str(&detail_schema_text(EventKind::OrderPlaced, 1)).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let body = envelopes(&events_dir().join("payment/order-placed.eventbridge.json")).remove(0);
    let envelope: Value = serde_json::from_str(&body).unwrap();
    let mut detail = envelope["detail"].clone();
    assert!(validator.is_valid(&detail));
    detail["data"]["items"][0]["quantity"] = Value::from(-1);
    assert!(
        !validator.is_valid(&detail),
        "a negative quantity must not validate"
    );
    detail["data"]["items"][0]["quantity"] = Value::from(1);
    detail["schema_version"] = Value::from(2);
    assert!(
        !validator.is_valid(&detail),
        "another schema_version must not validate"
    );
}

#[test]
fn order_placed_2_requires_its_customer() {
    let schema: Value =
        serde_json::from_str(&detail_schema_text(EventKind::OrderPlaced, 2)).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let body = envelopes(&events_dir().join("payment/order-placed-v2.eventbridge.json")).remove(0);
    let envelope: Value = serde_json::from_str(&body).unwrap();
    let mut detail = envelope["detail"].clone();
    assert!(validator.is_valid(&detail));
    detail["data"]
        .as_object_mut()
        .unwrap()
        .remove("customer_id");
    assert!(
        !validator.is_valid(&detail),
        "version 2 without its customer must not validate"
    );
    assert!(
        matches!(
            Message::from_bus_json(&body.replace("\"customer_id\"", "\"customer\"")),
            Err(orderflow_contracts::ContractError::Missing { ref field }) if field == "detail.data.customer_id"
        ),
        "nor decode"
    );
}
