//! An event's `detail` of the kind the first byte picks: the typed fast
//! path answers what the field-by-field path answers, and what it reads
//! writes back as itself, and satisfies the published schema.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_contracts::{EventKind, Message};
use orderflow_fuzz::assert_schema_accepts;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(detail) = std::str::from_utf8(rest) else {
        return;
    };
    let kind = EventKind::ALL[usize::from(pick) % EventKind::ALL.len()];
    let fast = Message::from_detail(kind, detail);
    let slow = Message::from_detail_slowly(kind, detail);
    match (&fast, &slow) {
        (Ok(f), Ok(s)) => assert_eq!(f, s, "the paths read different messages"),
        (Err(_), Err(_)) => {}
        _ => panic!("the fast path answers {fast:?}, the slow path {slow:?}"),
    }
    if let Ok(message) = fast {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(detail) {
            assert_schema_accepts(&message, &value);
        }
        let again = Message::from_detail(kind, &message.detail_json());
        assert_eq!(again.as_ref(), Ok(&message), "a message does not read back");
    }
});
