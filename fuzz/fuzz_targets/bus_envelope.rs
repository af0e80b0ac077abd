//! A bus envelope, as an SQS body or a direct EventBridge invocation
//! carries it: the fast path answers what the two-step path answers, and
//! what it reads writes back as itself, and its detail satisfies the
//! published schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_contracts::Message;
use orderflow_fuzz::assert_schema_accepts;

fuzz_target!(|data: &[u8]| {
    let Ok(json) = std::str::from_utf8(data) else {
        return;
    };
    let fast = Message::from_bus_json(json);
    let slow = Message::from_bus_json_slowly(json);
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => assert_eq!(f, s, "the paths read different messages"),
        (Err(_), Err(_)) => {}
        _ => panic!("the fast path answers {fast:?}, the two-step path {slow:?}"),
    }
    if let Ok(message) = fast {
        // Not every accepted text reads as a `Value`: it refuses numbers
        // beyond f64 in members the decoders skip.
        if let Ok(envelope) = serde_json::from_str::<serde_json::Value>(json) {
            assert_schema_accepts(&message, &envelope["detail"]);
        }
        let again = Message::from_detail(message.kind(), &message.detail_json());
        assert_eq!(again.as_ref(), Ok(&message), "a message does not read back");
    }
});
