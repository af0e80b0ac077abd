//! The EventBridge pattern matcher that `cargo xtask graph` and `asyncapi`
//! read the template's rules with (`orderflow-patterns`).
//!
//! The input, as a rule's `EventPattern` string: it reads or is refused
//! with an error, never a panic or a stack overflow, and a pattern that
//! reads matches each kind as its list of kinds says. Split at its first
//! newline, the input is also a `wildcard` glob and a text, matched as a
//! plain backtracking matcher matches them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use orderflow_contracts::EventKind;
use orderflow_patterns::{Pattern, wildcard};
use serde_norway::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(pattern) = Pattern::read(&Value::String(text.to_owned()), "fuzz") {
        let _ = pattern.describe();
        if let Ok(kinds) = pattern.kinds() {
            for kind in EventKind::ALL {
                assert_eq!(
                    pattern.matches(kind).ok(),
                    Some(kinds.contains(&kind)),
                    "{kind:?} against its kinds {kinds:?}"
                );
            }
        }
    }
    if let Some((glob, actual)) = text.split_once('\n') {
        assert_eq!(
            wildcard(glob, actual),
            reference(glob.as_bytes(), actual.as_bytes()),
            "wildcard {glob:?} on {actual:?}"
        );
    }
});

/// `*` matches any run of bytes, anything else itself: the textbook
/// dynamic programme, slow and plainly right (a `*` byte is never part of
/// a longer UTF-8 character, so bytes and characters agree).
fn reference(glob: &[u8], actual: &[u8]) -> bool {
    // `matched[j]`: the glob so far matches `actual[..j]`.
    let mut matched = vec![false; actual.len() + 1];
    matched[0] = true;
    for &g in glob {
        if g == b'*' {
            for j in 1..=actual.len() {
                matched[j] |= matched[j - 1];
            }
        } else {
            for j in (1..=actual.len()).rev() {
                matched[j] = matched[j - 1] && actual[j - 1] == g;
            }
            matched[0] = false;
        }
    }
    matched[actual.len()]
}
