//! What the Lambda runtime hands a function: an SQS batch, a direct
//! EventBridge event, or anything else. Reading it never panics, a batch
//! keeps every record it was given, and each body reads as serde_json
//! reads it (the runtime unescapes bodies itself).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_runtime::lambda::{Invocation, read_invocation};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The records of a payload, counted without reading them. Not a
/// `serde_json::Value`: that refuses numbers beyond `f64` (`1e999`),
/// which a reader that skips unknown members rightly never looks at.
#[derive(Deserialize)]
struct Count {
    #[serde(rename = "Records")]
    records: Vec<IgnoredAny>,
}

/// The bodies of a payload, as serde_json reads them.
#[derive(Deserialize)]
struct Bodies {
    #[serde(rename = "Records")]
    records: Vec<Body>,
}

#[derive(Deserialize)]
struct Body {
    body: String,
}

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Invocation::Sqs { records, .. }) = read_invocation(payload) {
        assert!(
            payload.trim_start().starts_with('{'),
            "an SQS batch read from something other than an object"
        );
        let given = serde_json::from_str::<Count>(payload).map(|c| c.records.len());
        assert_eq!(
            Ok(records.len()),
            given.map_err(|e| e.to_string()),
            "records lost or made up"
        );
        let bodies = serde_json::from_str::<Bodies>(payload)
            .map(|b| b.records.into_iter().map(|r| r.body).collect::<Vec<_>>());
        let read: Vec<String> = records.into_iter().map(|r| r.body).collect();
        assert_eq!(
            Ok(read),
            bodies.map_err(|e| e.to_string()),
            "a body read otherwise than serde_json reads it"
        );
    }
});
