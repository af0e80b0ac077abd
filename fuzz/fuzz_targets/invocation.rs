//! What the Lambda runtime hands a function: an SQS batch, a direct
//! EventBridge event, or anything else. Reading it never panics, and a
//! batch keeps every record it was given, each body the string serde_json
//! reads there (a guard for any faster reading of the body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_runtime::lambda::{Invocation, read_invocation};
use serde::Deserialize;

/// The bodies of a payload's records, as serde_json reads them. Not a
/// `serde_json::Value`: that refuses numbers beyond `f64` (`1e999`),
/// which a reader that skips unknown members rightly never looks at.
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
        let given = serde_json::from_str::<Bodies>(payload)
            .map(|b| b.records.into_iter().map(|r| r.body).collect::<Vec<_>>());
        let read: Vec<String> = records.into_iter().map(|r| r.body).collect();
        assert_eq!(
            Ok(read),
            given.map_err(|e| e.to_string()),
            "records lost, made up, or their bodies read otherwise than serde_json reads them"
        );
    }
});
