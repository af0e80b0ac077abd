//! What operators see: one JSON outcome line per record, one EMF line per
//! invocation, and never a payment token or an address.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{TimeZone, Utc};
use orderflow_contracts::{EventId, EventKind, Message, Metadata, OrderId};
use orderflow_runtime::lambda::Response;
use orderflow_runtime::telemetry::json_subscriber;
use orderflow_runtime::testing::{MemoryHandler, fixtures, memory_handler};
use orderflow_runtime::{Decision, Input, RecordError, Service, Transient};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing_subscriber::filter::Targets;
use uuid::Uuid;

/// The order's sensitive values, as the fixtures write them.
const TOKEN: &str = "tok_visa_4242";
const CARD: &str = "4242424242424242";
const SECRETS: [&str; 6] = [
    TOKEN,
    CARD,
    "Ada Lovelace",
    "12 St James's Square",
    "London",
    "SW1Y 4JH",
];

/// Consumes `OrderPlaced` and emits a `StockReserved` carrying the address;
/// fails transiently for `ord-flaky`.
struct Orders;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Nothing {}

impl Service for Orders {
    type State = Nothing;
    type Contract = Message;
    const FUNCTION: &'static str = "payment";

    fn consumes(&self, kind: EventKind) -> bool {
        kind == EventKind::OrderPlaced
    }

    async fn handle(&self, input: Input<'_, Nothing>) -> Result<Decision<Nothing>, RecordError> {
        if input.message.meta.order_id.as_str() == "ord-flaky" {
            return Err(Transient::new("gateway timed out").into());
        }
        Ok(Decision::emit(
            Nothing {},
            vec![fixtures::stock_reserved(&[("SKU-1", 1)])],
        ))
    }
}

fn event_id(n: u128) -> EventId {
    EventId::from_uuid(Uuid::from_u128(n))
}

/// The bus envelope of an `OrderPlaced` paid with [`TOKEN`], with `poison`
/// applied to its `detail.data`.
fn envelope(order: &str, id: u128, cause: Option<u128>, poison: fn(&mut Value)) -> Value {
    let message = Message {
        meta: Metadata {
            event_id: event_id(id),
            order_id: OrderId::new(order).unwrap_or_else(|e| panic!("{e}")),
            causation_id: cause.map(event_id),
            occurred_at: Utc
                .timestamp_opt(1_795_512_600, 0)
                .single()
                .unwrap_or_else(|| panic!("timestamp")),
            schema_version: 1,
            producer: EventKind::OrderPlaced.producer(),
        },
        event: fixtures::order_placed(&[("SKU-1", 2, 1250)], TOKEN),
    };
    let mut detail: Value =
        serde_json::from_str(&message.detail_json()).unwrap_or_else(|e| panic!("{e}"));
    poison(&mut detail["data"]);
    json!({
        "version": "0",
        "id": "dcf5bfa0-4987-5437-9003-5237b6d66cee",
        "detail-type": "OrderPlaced",
        "source": EventKind::OrderPlaced.source(),
        "detail": detail,
    })
}

fn sqs(records: &[(&str, String)]) -> String {
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id,
                "body": body,
                "attributes": { "ApproximateReceiveCount": "1" },
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orderflow-payment",
            })
        })
        .collect();
    json!({ "Records": records }).to_string()
}

/// A writer into a shared buffer, for the subscriber.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Runs `invocations` through a fresh handler with the real JSON subscriber
/// (at `trace`, so every line anything logs is checked) writing into a
/// buffer. Returns the log text and the handler.
async fn logged(invocations: &[String]) -> (String, MemoryHandler<Orders>) {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = json_subscriber(
        Targets::new().with_default(tracing::Level::TRACE),
        move || writer.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let handler = memory_handler(Orders);
    for payload in invocations {
        if let Err(e) = handler.invoke(payload).await {
            panic!("{e}");
        }
    }
    (buffer.text(), handler)
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {e}: {l}"))
        })
        .collect()
}

/// The outcome line of `message_id`: there must be exactly one.
fn outcome_of<'a>(lines: &'a [Value], message_id: &str) -> &'a Value {
    let found: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message_id"] == message_id)
        .collect();
    assert_eq!(found.len(), 1, "{message_id}: {found:#?}");
    found[0]
}

fn assert_no_secrets(text: &str) {
    for secret in SECRETS {
        assert!(!text.contains(secret), "{secret:?} leaked:\n{text}");
    }
}

#[tokio::test]
async fn each_record_logs_one_outcome_line_and_no_token_or_address() {
    let ok = envelope("ord-ok", 1, Some(100), |_| {}).to_string();
    let records = [
        ("m-ok", ok.clone()),
        (
            "m-flaky",
            envelope("ord-flaky", 2, None, |_| {}).to_string(),
        ),
        (
            "m-token-as-currency",
            envelope("ord-3", 3, None, |d| d["currency"] = json!(TOKEN)).to_string(),
        ),
        (
            "m-address-as-text",
            envelope("ord-4", 4, None, |d| {
                d["shipping_address"] =
                    json!("Ada Lovelace, 12 St James's Square, London SW1Y 4JH");
            })
            .to_string(),
        ),
        (
            "m-card-number",
            envelope("ord-5", 5, None, |d| {
                d["payment_token"] = json!(4_242_424_242_424_242_u64);
            })
            .to_string(),
        ),
        ("m-garbage", format!("{{\"detail-type\": {TOKEN}")),
    ];
    let again = sqs(&[("m-again", ok)]);
    let (text, handler) = logged(&[sqs(&records), again]).await;
    assert_no_secrets(&text);
    let lines = lines(&text);

    let line = outcome_of(&lines, "m-ok");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["outcome"], "processed");
    assert_eq!(line["function"], "payment");
    assert_eq!(line["order_id"], "ord-ok");
    assert_eq!(line["event_id"], event_id(1).to_string());
    assert_eq!(line["causation_id"], event_id(100).to_string());
    assert_eq!(line["detail_type"], "OrderPlaced");
    assert_eq!(line["published"], 1);
    assert!(line["duration_ms"].is_f64(), "{line}");
    assert!(line.get("error_kind").is_none() && line.get("error").is_none());
    assert!(line["message"].is_string());

    let line = outcome_of(&lines, "m-flaky");
    assert_eq!(line["outcome"], "retry");
    assert_eq!(line["order_id"], "ord-flaky");
    assert_eq!(line["error_kind"], "transient");
    assert!(
        line["error"]
            .as_str()
            .is_some_and(|e| e.contains("gateway timed out"))
    );
    assert!(line.get("causation_id").is_none(), "{line}");

    for (id, field) in [
        ("m-token-as-currency", "detail.data.currency"),
        ("m-address-as-text", "detail.data.shipping_address"),
        ("m-card-number", "detail.data.payment_token"),
        ("m-garbage", "detail-type"),
    ] {
        let line = outcome_of(&lines, id);
        assert_eq!(line["outcome"], "dead_lettered", "{line}");
        assert_eq!(line["error_kind"], "malformed", "{line}");
        assert_eq!(line["message"], "record sent to the DLQ");
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.contains(&format!("`{field}`")), "{line}");
        assert!(line.get("order_id").is_none(), "{line}");
        assert!(line["duration_ms"].is_f64(), "{line}");
    }

    let line = outcome_of(&lines, "m-again");
    assert_eq!(line["outcome"], "duplicate");
    assert_eq!(line["order_id"], "ord-ok");
    assert_eq!(line["published"], 1);

    // Nothing else says which record it is about.
    assert_eq!(
        lines.iter().filter(|l| l.get("outcome").is_some()).count(),
        7
    );

    // The DLQ keeps each body unchanged, for a redrive, but not in its reason.
    let letters = handler.letters();
    assert_eq!(letters.len(), 4);
    for letter in &letters {
        assert_no_secrets(&letter.error_message);
        assert!(records.iter().any(|(_, body)| *body == letter.body));
    }

    // One EMF line per invocation, counting what the lines say.
    let emf: Vec<Value> = handler
        .metric_lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(emf.len(), 2);
    let counts = |e: &Value| {
        ["processed", "failed", "dead_lettered", "duplicate"].map(|m| e[m].as_u64().unwrap_or(99))
    };
    assert_eq!(counts(&emf[0]), [1, 1, 4, 0]);
    assert_eq!(counts(&emf[1]), [0, 0, 0, 1]);
    assert_eq!(emf[0]["record_duration"].as_array().map(Vec::len), Some(6));
    assert_eq!(emf[0]["function"], "payment");
    assert_eq!(
        emf[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        "orderflow"
    );
}

#[tokio::test]
async fn a_direct_invocation_logs_its_outcome_and_answers_duplicate_the_second_time() {
    let payload = envelope("ord-direct", 7, None, |_| {}).to_string();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let _guard = tracing::subscriber::set_default(json_subscriber(
        Targets::new().with_default(tracing::Level::INFO),
        move || writer.clone(),
    ));
    let handler = memory_handler(Orders);
    let mut answers = Vec::new();
    for _ in 0..2 {
        match handler.invoke(&payload).await {
            Ok(Response::Direct { outcome }) => answers.push(outcome),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(answers, ["processed", "duplicate"]);
    let text = buffer.text();
    assert_no_secrets(&text);
    let lines = lines(&text);
    let outcomes: Vec<&Value> = lines.iter().map(|l| &l["outcome"]).collect();
    assert_eq!(
        outcomes,
        [&json!("processed"), &json!("duplicate")],
        "{text}"
    );
    assert!(lines.iter().all(|l| l["message_id"] == "test-request"));
    assert_eq!(handler.metric_lines().len(), 2);
}

#[tokio::test]
async fn a_batch_with_records_that_do_not_parse_fails_the_invocation() {
    let handler = memory_handler(Orders);
    // `Records` whose entries lack every SQS field: not a batch we can answer
    // record by record, and not one bus event either.
    let payload = json!({ "Records": [{ "body": 1 }, { "nonsense": true }] }).to_string();
    match handler.invoke(&payload).await {
        Err(err) => assert_eq!(err.kind(), "malformed", "{err}"),
        Ok(answer) => panic!("acknowledged a batch it could not read: {answer:?}"),
    }
    assert!(
        handler.letters().is_empty(),
        "the records are SQS's to deliver again, not one dead letter"
    );
}
