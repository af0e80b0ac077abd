//! What the Lambda runtime hands a function: an SQS batch, a direct
//! EventBridge event, or anything else. Reading it never panics; the fast
//! path (the one-pass scanner) answers what the serde path answers; and a
//! batch keeps every record it was given, each body the string serde_json
//! reads there.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_runtime::lambda::{Invocation, read_invocation, read_invocation_slowly};
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
    let read = read_invocation(payload);
    let slow = read_invocation_slowly(payload);
    assert_eq!(
        read.as_ref().map_err(ToString::to_string),
        slow.as_ref().map_err(ToString::to_string),
        "the fast path reads otherwise than the serde path"
    );
    if let Ok(Invocation::Sqs { records, .. }) = read {
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
