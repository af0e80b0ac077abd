//! Fingerprints: a digest of the decoded event, so the same event always
//! gets the same one however its JSON was written, and any change to it
//! gives another.

use std::collections::BTreeMap;

use orderflow_contracts::{Event, EventKind, Message, MinorUnits};
use orderflow_runtime::lambda::{Invocation, read_invocation};
use orderflow_runtime::store::Fingerprint;
use orderflow_runtime::testing::{read_sample, samples_of};

/// Every event the SQS samples hold that decodes, by sample name.
fn sample_messages() -> Vec<(String, Message)> {
    let mut messages = Vec::new();
    for function in ["payment", "inventory", "shipping"] {
        let names = samples_of(function).unwrap_or_else(|e| panic!("{function}: {e}"));
        for name in names.into_iter().filter(|n| n.ends_with(".sqs.json")) {
            let payload = read_sample(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let Ok(Invocation::Sqs { records, .. }) = read_invocation(&payload) else {
                panic!("{name} is not an SQS payload");
            };
            for record in records {
                // Poison samples do not decode; they never get this far.
                if let Ok(message) = Message::from_bus_json(&record.body) {
                    messages.push((name.clone(), message));
                }
            }
        }
    }
    messages
}

fn of(message: &Message) -> Fingerprint {
    Fingerprint::of_message(message).unwrap_or_else(|e| panic!("{message:?}: {e}"))
}

#[test]
fn every_kind_of_event_in_the_samples_fingerprints() {
    let messages = sample_messages();
    let mut kinds: Vec<EventKind> = messages.iter().map(|(_, m)| m.kind()).collect();
    kinds.sort_by_key(|k| k.detail_type());
    kinds.dedup();
    assert!(kinds.len() >= 5, "expected most kinds, found {kinds:?}");
    for (name, message) in &messages {
        let digest = of(message);
        assert_eq!(digest.as_str().len(), 16, "{name}");
        Fingerprint::of_data(&message.event).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn one_event_id_one_fingerprint_and_different_events_differ() {
    let mut by_event: BTreeMap<String, (String, Fingerprint)> = BTreeMap::new();
    for (name, message) in sample_messages() {
        let digest = of(&message);
        match by_event.get(&message.meta.event_id.to_string()) {
            // The same event in two samples: the same contents, the same digest.
            Some((first, seen)) if *seen != digest => {
                let same = read_sample(first).ok() == read_sample(&name).ok();
                assert!(same, "{first} and {name} share an event id, not a digest");
            }
            _ => {
                by_event.insert(message.meta.event_id.to_string(), (name, digest));
            }
        }
    }
    let mut digests: Vec<&Fingerprint> = by_event.values().map(|(_, d)| d).collect();
    let events = digests.len();
    digests.sort_by_key(|d| d.as_str().to_owned());
    digests.dedup();
    assert_eq!(digests.len(), events, "two different events share a digest");
}

#[test]
fn the_layout_of_the_json_does_not_matter_and_its_contents_do() {
    let payload = read_sample("payment/order-placed.sqs.json").unwrap();
    let Ok(Invocation::Sqs { records, .. }) = read_invocation(&payload) else {
        panic!("not an SQS payload");
    };
    let body = &records[0].body;
    let message = Message::from_bus_json(body).unwrap();

    // The same envelope written with its keys sorted and pretty-printed.
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    let relaid = serde_json::to_string_pretty(&value).unwrap();
    assert_ne!(&relaid, body);
    let again = Message::from_bus_json(&relaid).unwrap();
    assert_eq!(of(&again), of(&message));

    // One minor unit more on the first line's price and the total.
    let mut changed = message.clone();
    let Event::OrderPlaced(order) = &mut changed.event else {
        panic!("the sample is an OrderPlaced");
    };
    order.total_minor = MinorUnits(order.total_minor.0 + 1);
    order.items[0].unit_price_minor = MinorUnits(order.items[0].unit_price_minor.0 + 1);
    assert_ne!(of(&changed), of(&message));
    assert_ne!(
        Fingerprint::of_data(&changed.event).ok(),
        Fingerprint::of_data(&message.event).ok()
    );

    // Metadata counts for the event, not for the order's data.
    let mut later = message.clone();
    later.meta.occurred_at += chrono::Duration::nanoseconds(1);
    assert_ne!(of(&later), of(&message));
    assert_eq!(
        Fingerprint::of_data(&later.event).ok(),
        Fingerprint::of_data(&message.event).ok()
    );
}
