//! A harness that runs a [`Service`] through the real handler with
//! in-memory ports: for each function's handler tests, benches and examples.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use orderflow_contracts::Message;

use crate::dlq::{DeadLetter, MemoryDeadLetters};
use crate::error::RecordError;
use crate::lambda::{Handler, Response};
use crate::metrics::MetricsOut;
use crate::processor::{Processor, Service};
use crate::publish::MemoryPublisher;
use crate::store::{MemoryStore, OutboxEntry};

/// The project's `events/` folder.
pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// Reads `events/<relative>`.
pub fn read_sample(relative: &str) -> Result<String, std::io::Error> {
    std::fs::read_to_string(events_dir().join(relative))
}

/// The SQS invocation `payload`'s first record `n` times over, as a queue
/// under load hands a function its records. Each copy is the record's own
/// text, its members in their order (the order Lambda writes them, which
/// the one-pass reader of [`crate::lambda::read_invocation`] takes), with a
/// message id of its own; the first keeps the sample's.
///
/// # Errors
///
/// When `payload` is not an SQS invocation with a record and its id.
pub fn batch_of(payload: &str, n: usize) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Invocation<'a> {
        #[serde(borrow, rename = "Records")]
        records: Vec<&'a serde_json::value::RawValue>,
    }
    #[derive(serde::Deserialize)]
    struct Record<'a> {
        #[serde(rename = "messageId")]
        message_id: &'a str,
    }
    let invocation: Invocation<'_> = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let first = invocation
        .records
        .first()
        .ok_or("the payload has no record")?
        .get();
    let id = serde_json::from_str::<Record<'_>>(first)
        .map_err(|e| format!("its first record: {e}"))?
        .message_id;
    let quoted = format!("\"{id}\"");
    let copies: Vec<String> = (0..n)
        .map(|i| match i {
            0 => first.to_owned(),
            i => first.replacen(&quoted, &format!("\"00000000-0000-4000-8000-{i:012}\""), 1),
        })
        .collect();
    Ok(format!("{{\"Records\": [{}]}}", copies.join(", ")))
}

/// The sample files of one function (`events/<function>/*.json`), sorted.
pub fn samples_of(function: &str) -> Result<Vec<String>, std::io::Error> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir().join(function))?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .map(|n| format!("{function}/{n}"))
        .collect();
    names.sort();
    Ok(names)
}

/// A handler with in-memory store, publisher and dead-letter sink.
pub type MemoryHandler<S> = Handler<S, MemoryStore, MemoryPublisher, MemoryDeadLetters>;

/// Builds a [`MemoryHandler`] around `service`, whose store starts as
/// memory mode's does: with the service's
/// [memory counters](Service::memory_counters), if any. Its EMF lines are
/// kept in memory ([`MemoryHandler::metric_lines`]) rather than printed.
pub fn memory_handler<S: Service>(service: S) -> MemoryHandler<S> {
    let store = crate::lambda::memory_store(&service);
    let processor = Processor::new(service, store, MemoryPublisher::new(), 3600);
    Handler::new(processor, MemoryDeadLetters::new(), 4).with_metrics(MetricsOut::memory())
}

impl<S: Service> MemoryHandler<S> {
    /// Invokes the handler with a payload, as Lambda would.
    pub async fn invoke(&self, payload: &str) -> Result<Response, RecordError> {
        let deadline = SystemTime::now() + Duration::from_secs(30);
        self.handle(payload, Some(deadline), "test-request").await
    }

    /// Invokes the handler on each sample file in turn, failing on an
    /// invocation error or a failed record.
    pub async fn feed(&self, files: &[&str]) -> Result<(), String> {
        for file in files {
            let payload = read_sample(file).map_err(|e| format!("{file}: {e}"))?;
            match self.invoke(&payload).await {
                Ok(Response::Batch(b)) if !b.batch_item_failures.is_empty() => {
                    return Err(format!("{file}: records failed: {b:?}"));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("{file}: {e}")),
            }
        }
        Ok(())
    }

    /// The detail-types published so far, in order.
    pub fn published_kinds(&self) -> Vec<String> {
        self.published()
            .into_iter()
            .map(|e| e.detail_type)
            .collect()
    }

    /// Everything published so far.
    pub fn published(&self) -> Vec<OutboxEntry> {
        self.processor().publisher().published()
    }

    /// The published events, decoded.
    pub fn published_messages(&self) -> Vec<Message> {
        self.published()
            .iter()
            .filter_map(|e| {
                orderflow_contracts::EventKind::from_detail_type(&e.detail_type)
                    .ok()
                    .and_then(|k| Message::from_detail(k, &e.detail).ok())
            })
            .collect()
    }

    /// Everything dead-lettered so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        self.dead_letters().letters()
    }

    /// The EMF lines emitted so far: one per invocation.
    pub fn metric_lines(&self) -> Vec<String> {
        self.metrics().lines()
    }

    /// The in-memory store.
    pub fn store(&self) -> &MemoryStore {
        self.processor().store()
    }
}

/// What a sample must do to a fresh function.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Processed, publishing events of these detail-types in this order.
    Emits(&'static [&'static str]),
    /// Sent to the DLQ with this error kind, its body unchanged.
    DeadLetter(&'static str),
}

/// What the poison samples every function has must do: go to the DLQ with
/// these kinds.
pub const POISON: [(&str, Expect); 4] = [
    ("poison-malformed-json", Expect::DeadLetter("malformed")),
    ("poison-negative-quantity", Expect::DeadLetter("malformed")),
    (
        "poison-unknown-version",
        Expect::DeadLetter("unknown_version"),
    ),
    (
        "poison-wrong-detail-type",
        Expect::DeadLetter("unexpected_event"),
    ),
];

/// Feeds every sample of `function` to a fresh handler from `make` and
/// checks it against `expected` and [`POISON`], keyed by case (the file
/// name before the shape). A sample with no expectation fails the check.
pub async fn check_samples<S: Service>(
    function: &str,
    make: impl Fn() -> MemoryHandler<S>,
    expected: &[(&str, Expect)],
) -> Result<usize, String> {
    let files = samples_of(function).map_err(|e| format!("events/{function}: {e}"))?;
    for file in &files {
        let case = file
            .trim_start_matches(&format!("{function}/"))
            .split('.')
            .next()
            .unwrap_or_default();
        let expect = expected
            .iter()
            .chain(POISON.iter())
            .find(|(name, _)| *name == case)
            .map(|(_, e)| *e)
            .ok_or_else(|| format!("{file}: no expected outcome for case `{case}`"))?;
        let handler = make();
        let payload = read_sample(file).map_err(|e| format!("{file}: {e}"))?;
        match handler.invoke(&payload).await {
            Ok(Response::Batch(batch)) if batch.batch_item_failures.is_empty() => {}
            Ok(Response::Direct { .. }) => {}
            other => return Err(format!("{file}: {other:?}")),
        }
        let published: Vec<String> = handler
            .published()
            .into_iter()
            .map(|e| e.detail_type)
            .collect();
        let letters = handler.letters();
        match expect {
            Expect::Emits(kinds) => {
                if published != kinds || !letters.is_empty() {
                    return Err(format!(
                        "{file}: expected {kinds:?}, published {published:?}, dead-lettered {letters:?}"
                    ));
                }
            }
            Expect::DeadLetter(kind) => {
                let body = body_of(&payload);
                let ok = letters.len() == 1
                    && letters[0].error_kind == kind
                    && letters[0].function == S::FUNCTION
                    && letters[0].body == body
                    && published.is_empty();
                if !ok {
                    return Err(format!(
                        "{file}: expected one dead letter of kind {kind}, got {letters:?}, published {published:?}"
                    ));
                }
            }
        }
    }
    Ok(files.len())
}

/// The SQS body of a sample, or the sample itself for a direct invocation.
fn body_of(payload: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    value["Records"][0]["body"]
        .as_str()
        .map_or_else(|| payload.to_owned(), str::to_owned)
}

/// Small event builders for unit tests of `decide`.
pub mod fixtures {
    use chrono::{DateTime, TimeZone, Utc};
    use orderflow_contracts::{
        Address, Currency, Event, EventId, LineItem, Message, Metadata, MinorUnits, OrderId,
        OrderPlaced, PaymentToken, Quantity, ReservedLine, Sku, StockReserved,
    };
    use uuid::Uuid;

    fn ok<T>(r: Result<T, String>) -> T {
        r.unwrap_or_else(|e| panic!("fixture: {e}"))
    }

    /// `ord-1`.
    pub fn order_id() -> OrderId {
        ok(OrderId::new("ord-1"))
    }

    /// 2026-11-24 22:15:00 UTC, when [`message`]'s events happen.
    pub fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 22, 15, 0)
            .single()
            .unwrap_or_else(|| panic!("fixture: a valid time"))
    }

    /// `event` as a message about order [`order_id`], happening [`at`], with
    /// an id derived from its kind.
    pub fn message(event: Event) -> Message {
        let kind = event.kind();
        Message {
            meta: Metadata {
                event_id: EventId::derive(EventId::from_uuid(Uuid::nil()), kind.detail_type(), 0),
                order_id: order_id(),
                causation_id: None,
                occurred_at: at(),
                schema_version: event.schema_version(),
                producer: kind.producer(),
            },
            event,
        }
    }

    /// A sku.
    pub fn sku(s: &str) -> Sku {
        ok(Sku::new(s))
    }

    /// A quantity.
    pub fn qty(n: u32) -> Quantity {
        ok(Quantity::new(n))
    }

    /// A valid address.
    pub fn address() -> Address {
        Address {
            name: "Ada Lovelace".into(),
            line1: "12 St James's Square".into(),
            line2: None,
            city: "London".into(),
            postal_code: "SW1Y 4JH".into(),
            country: "GB".into(),
        }
    }

    /// An order of `(sku, quantity, unit price)` lines paid with `token`.
    pub fn order_placed(lines: &[(&str, u32, u64)], token: &str) -> Event {
        let items: Vec<LineItem> = lines
            .iter()
            .map(|(s, q, p)| LineItem {
                sku: sku(s),
                quantity: qty(*q),
                unit_price_minor: MinorUnits(*p),
            })
            .collect();
        let total = lines.iter().map(|(_, q, p)| u64::from(*q) * p).sum();
        Event::OrderPlaced(OrderPlaced {
            items,
            total_minor: MinorUnits(total),
            currency: ok(Currency::new("EUR")),
            payment_token: ok(PaymentToken::new(token)),
            shipping_address: address(),
            // A version 1 order: the fingerprints pinned in the tests are
            // of these.
            customer_id: None,
        })
    }

    /// A reservation of `(sku, quantity)` lines.
    pub fn stock_reserved(lines: &[(&str, u32)]) -> Event {
        Event::StockReserved(StockReserved {
            lines: lines
                .iter()
                .map(|(s, q)| ReservedLine {
                    sku: sku(s),
                    quantity: qty(*q),
                })
                .collect(),
            ship_to: address(),
        })
    }
}

/// The CPU work of one SQS invocation, without I/O: read the payload,
/// decode and validate each body, fingerprint it as the event's and the
/// order's records do, decide with `decide`, and encode what a commit writes
/// (the state JSON and the outbox). For the benches.
pub fn cpu_path<S: serde::Serialize>(
    payload: &str,
    decide: impl Fn(&Message) -> crate::processor::Decision<S>,
) -> Result<Vec<OutboxEntry>, RecordError> {
    let crate::lambda::Invocation::Sqs { records, .. } = crate::lambda::read_invocation(payload)?
    else {
        return Err(RecordError::rejected("rejected", "not an SQS payload"));
    };
    let mut outbox = Vec::new();
    for record in &records {
        let message = Message::from_bus_json(&record.body)?;
        std::hint::black_box(crate::processor::fingerprints(&message)?);
        let decision = decide(&message);
        let state = serde_json::to_string(&decision.state)
            .map_err(|e| RecordError::rejected("rejected", e.to_string()))?;
        std::hint::black_box(state);
        outbox.extend(crate::contract::Contract::outbox(&message, decision.emit));
    }
    Ok(outbox)
}
