//! A bus envelope, as an SQS body or a direct EventBridge invocation
//! carries it: the fast path answers what the two-step path answers, and
//! what it reads writes back as itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_contracts::Message;

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
        let again = Message::from_detail(message.kind(), &message.detail_json());
        assert_eq!(again.as_ref(), Ok(&message), "a message does not read back");
    }
});
