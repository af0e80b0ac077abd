//! A hostile corpus: SQS bodies no orders service would send, each with the
//! error kind every function must dead-letter it with.
//!
//! Malformed JSON and wrong types, numbers above 2^53 and 2^64, deep
//! nesting, bodies near SQS's 256 KiB, unicode in ids, unknown versions,
//! wrong sources and unknown detail types. Most start from a valid
//! OrderPlaced as the bus would deliver it and change one thing, so the
//! error is that thing's.
//!
//! [`refused`] are the bodies SQS itself must refuse at `SendMessage`.

use orderflow::order::{new_event_id, new_order_id};
use serde_json::{Value, json};

/// One hostile body and how it must end.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// What it is, for messages.
    pub name: String,
    /// The SQS body.
    pub body: String,
    /// The `orderflow.error_kind` its dead letter must carry.
    pub kind: &'static str,
    /// SQS must refuse it at `SendMessage` (an emulator may not).
    pub sqs_refuses: bool,
}

/// SQS's largest message: 256 KiB.
pub const SQS_MAX_BYTES: usize = 262_144;

/// A valid OrderPlaced as the bus delivers it, under a fresh order id.
fn order() -> Value {
    let order = new_order_id("hostile").map_or_else(|_| "ord-hostile".into(), |o| o.to_string());
    json!({
        "version": "0",
        "id": new_event_id().to_string(),
        "detail-type": "OrderPlaced",
        "source": "orderflow.orders",
        "account": "000000000000",
        "time": "2026-12-04T09:30:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "event_id": new_event_id().to_string(),
            "order_id": order,
            "causation_id": null,
            "occurred_at": "2026-12-04T09:30:00Z",
            "schema_version": 1,
            "producer": "orderflow.orders",
            "data": {
                "items": [{ "sku": "SKU-HOSTILE", "quantity": 1, "unit_price_minor": 100 }],
                "total_minor": 100,
                "currency": "EUR",
                "payment_token": "tok_visa_4242",
                "shipping_address": {
                    "name": "Ada Lovelace",
                    "line1": "12 St James's Square",
                    "city": "London",
                    "postal_code": "SW1Y 4JH",
                    "country": "GB"
                }
            }
        }
    })
}

/// The value at `path` (keys and array indexes) in `body`; a key that is
/// absent is added as `null`.
fn at<'a>(body: &'a mut Value, path: &[&str]) -> &'a mut Value {
    path.iter()
        .fold(body, |at, key| match key.parse::<usize>() {
            Ok(index) => &mut at[index],
            Err(_) => &mut at[*key],
        })
}

/// A valid OrderPlaced with the value at `path` set to `value`.
fn with(path: &[&str], value: Value) -> String {
    let mut body = order();
    *at(&mut body, path) = value;
    body.to_string()
}

/// A valid OrderPlaced with the field at `path` removed.
fn without(path: &[&str]) -> String {
    let mut body = order();
    let (last, parents) = path.split_last().unwrap_or((&"", &[]));
    if let Some(object) = at(&mut body, parents).as_object_mut() {
        object.remove(*last);
    }
    body.to_string()
}

/// `depth` arrays nested in one another.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// A valid OrderPlaced with the raw JSON text `raw` in place of the value
/// at `path`: for numbers and nesting no `Value` holds as written.
fn with_raw(path: &[&str], raw: &str) -> String {
    const MARK: &str = "\"@@raw@@\"";
    with(path, json!("@@raw@@")).replacen(MARK, raw, 1)
}

/// A valid OrderPlaced of exactly `bytes`, by a longer string at `path`.
fn padded(path: &[&str], bytes: usize) -> String {
    let base = with(path, json!("")).len();
    with(path, json!("x".repeat(bytes.saturating_sub(base))))
}

/// The corpus: at least 50 bodies, each with the error kind it must end in.
pub fn corpus() -> Vec<Hostile> {
    let mut all = Vec::new();
    let mut add = |name: &str, body: String, kind: &'static str| {
        all.push(Hostile {
            name: name.to_owned(),
            body,
            kind,
            sqs_refuses: false,
        });
    };
    malformed(&mut add);
    wrong_types(&mut add);
    numbers(&mut add);
    nesting_and_size(&mut add);
    unicode_ids(&mut add);
    versions_and_sources(&mut add);
    all
}

type Add<'a> = dyn FnMut(&str, String, &'static str) + 'a;

fn malformed(add: &mut Add<'_>) {
    let order = order().to_string();
    add("a space", " ".into(), "malformed");
    add("an open brace", "{".into(), "malformed");
    add("prose", "place my order please".into(), "malformed");
    add("cut short", order[..order.len() / 2].into(), "malformed");
    add("trailing text", format!("{order} and more"), "malformed");
    add("two documents", format!("{order}{order}"), "malformed");
    add("a byte order mark", format!("\u{feff}{order}"), "malformed");
    add("null", "null".into(), "malformed");
    add("an array", "[1,2,3]".into(), "malformed");
    add("a string", "\"OrderPlaced\"".into(), "malformed");
    add(
        "a bad escape",
        order.replacen("Ada", "\\x41da", 1),
        "malformed",
    );
    add(
        "a lone surrogate",
        order.replacen("Ada", "\\ud800da", 1),
        "malformed",
    );
    add("single quotes", order.replace('"', "'"), "malformed");
    add(
        "a duplicate key",
        order.replacen("{", "{\"detail-type\":\"PaymentDeclined\",", 1),
        "malformed",
    );
}

fn wrong_types(add: &mut Add<'_>) {
    let d = |rest: &[&'static str]| [&["detail"][..], rest].concat();
    add(
        "detail a string",
        with(&["detail"], json!("{}")),
        "malformed",
    );
    add("detail an array", with(&["detail"], json!([])), "malformed");
    add(
        "detail null",
        with(&["detail"], Value::Null),
        "missing_field",
    );
    add(
        "data null",
        with(&d(&["data"]), Value::Null),
        "missing_field",
    );
    add(
        "items a string",
        with(&d(&["data", "items"]), json!("two mugs")),
        "malformed",
    );
    add(
        "items empty",
        with(&d(&["data", "items"]), json!([])),
        "invalid_field",
    );
    add(
        "quantity a string",
        with(&d(&["data", "items", "0", "quantity"]), json!("1")),
        "malformed",
    );
    add(
        "quantity 1.5",
        with(&d(&["data", "items", "0", "quantity"]), json!(1.5)),
        "malformed",
    );
    add(
        "quantity -1",
        with(&d(&["data", "items", "0", "quantity"]), json!(-1)),
        "malformed",
    );
    add(
        "quantity 0",
        with(&d(&["data", "items", "0", "quantity"]), json!(0)),
        "malformed",
    );
    add(
        "price a float",
        with(&d(&["data", "items", "0", "unit_price_minor"]), json!(12.5)),
        "malformed",
    );
    add(
        "total wrong",
        with(&d(&["data", "total_minor"]), json!(101)),
        "invalid_field",
    );
    add(
        "currency lower case",
        with(&d(&["data", "currency"]), json!("eur")),
        "malformed",
    );
    add(
        "event_id not a uuid",
        with(&d(&["event_id"]), json!("not-a-uuid")),
        "malformed",
    );
    add(
        "occurred_at not a time",
        with(&d(&["occurred_at"]), json!("yesterday")),
        "malformed",
    );
    add(
        "order_id a number",
        with(&d(&["order_id"]), json!(1001)),
        "malformed",
    );
    add(
        "schema_version a string",
        with(&d(&["schema_version"]), json!("1")),
        "malformed",
    );
    add(
        "no order_id",
        without(&["detail", "order_id"]),
        "missing_field",
    );
    add("no data", without(&["detail", "data"]), "missing_field");
    add("no detail-type", without(&["detail-type"]), "missing_field");
}

fn numbers(add: &mut Add<'_>) {
    let qty = ["detail", "data", "items", "0", "quantity"];
    let price = ["detail", "data", "items", "0", "unit_price_minor"];
    add(
        "quantity 2^53 + 1",
        with_raw(&qty, "9007199254740993"),
        "malformed",
    );
    add(
        "quantity 2^64",
        with_raw(&qty, "18446744073709551616"),
        "malformed",
    );
    add("quantity 1e400", with_raw(&qty, "1e400"), "malformed");
    add(
        "price 2^53 + 1",
        with_raw(&price, "9007199254740993"),
        "invalid_field",
    );
    add(
        "price 2^64",
        with_raw(&price, "18446744073709551616"),
        "malformed",
    );
    add("price -0", with_raw(&price, "-0"), "malformed");
    add(
        "total 2^64 + 1",
        with_raw(&["detail", "data", "total_minor"], "18446744073709551617"),
        "malformed",
    );
    add(
        "schema_version 2^64",
        with_raw(&["detail", "schema_version"], "18446744073709551616"),
        "malformed",
    );
}

fn nesting_and_size(add: &mut Add<'_>) {
    add("10,000 nested arrays", nested(10_000), "malformed");
    add(
        "nested arrays as detail",
        with_raw(&["detail"], &nested(5_000)),
        "malformed",
    );
    add(
        "nested arrays as items",
        with_raw(&["detail", "data", "items"], &nested(200)),
        "malformed",
    );
    add(
        "nested objects as the address",
        with_raw(
            &["detail", "data", "shipping_address"],
            &format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300)),
        ),
        "missing_field",
    );
    add(
        "an address line near 256 KiB",
        padded(
            &["detail", "data", "shipping_address", "line1"],
            SQS_MAX_BYTES - 64,
        ),
        "invalid_field",
    );
    add(
        "a token near 256 KiB",
        padded(&["detail", "data", "payment_token"], SQS_MAX_BYTES - 64),
        "malformed",
    );
    let item = json!({ "sku": "SKU-HOSTILE", "quantity": 1, "unit_price_minor": 1 });
    add(
        "3,500 items",
        with(
            &["detail", "data", "items"],
            Value::Array(vec![item; 3_500]),
        ),
        "invalid_field",
    );
}

fn unicode_ids(add: &mut Add<'_>) {
    let id = ["detail", "order_id"];
    add(
        "an emoji order id",
        with(&id, json!("ord-☕-1")),
        "malformed",
    );
    add(
        "a right-to-left override",
        with(&id, json!("ord-\u{202e}1001")),
        "malformed",
    );
    add(
        "a zero-width joiner",
        with(&id, json!("ord-\u{200d}1001")),
        "malformed",
    );
    add(
        "a NUL escape",
        with(&id, json!("ord-\u{0}1001")),
        "malformed",
    );
    add(
        "full-width digits",
        with(&id, json!("ord-１００１")),
        "malformed",
    );
    add(
        "a combining accent",
        with(&id, json!("ord-e\u{301}")),
        "malformed",
    );
    add("an empty order id", with(&id, json!("")), "malformed");
    add(
        "a sku in Cyrillic",
        with(&["detail", "data", "items", "0", "sku"], json!("SKU-МУГ")),
        "malformed",
    );
}

fn versions_and_sources(add: &mut Add<'_>) {
    let version = ["detail", "schema_version"];
    add(
        "schema_version 0",
        with(&version, json!(0)),
        "unknown_version",
    );
    add(
        "schema_version 3",
        with(&version, json!(3)),
        "unknown_version",
    );
    // Version 2 of OrderPlaced requires the customer that version 1 lacks.
    add(
        "OrderPlaced version 2 without its customer",
        with(&version, json!(2)),
        "missing_field",
    );
    let mut v2 = order();
    *at(&mut v2, &version) = json!(2);
    *at(&mut v2, &["detail", "data", "customer_id"]) = json!("cus-\u{1F600}");
    add(
        "OrderPlaced version 2 by a customer id with an emoji",
        v2.to_string(),
        "malformed",
    );
    add(
        "schema_version 99",
        with(&version, json!(99)),
        "unknown_version",
    );
    add("schema_version -1", with(&version, json!(-1)), "malformed");
    add(
        "source orderflow.payment",
        with(&["source"], json!("orderflow.payment")),
        "wrong_source",
    );
    add(
        "source evil",
        with(&["source"], json!("evil.example")),
        "wrong_source",
    );
    add(
        "source upper case",
        with(&["source"], json!("ORDERFLOW.ORDERS")),
        "wrong_source",
    );
    add("source empty", with(&["source"], json!("")), "wrong_source");
    add(
        "detail-type OrderCancelled",
        with(&["detail-type"], json!("OrderCancelled")),
        "unknown_detail_type",
    );
    add(
        "detail-type lower case",
        with(&["detail-type"], json!("orderplaced")),
        "unknown_detail_type",
    );
    add(
        "detail-type empty",
        with(&["detail-type"], json!("")),
        "unknown_detail_type",
    );
}

/// Bodies SQS must refuse at `SendMessage`: one byte over 256 KiB, and
/// characters SQS does not allow in a message (`#x9 | #xA | #xD | #x20`
/// to `#xD7FF | #xE000` to `#xFFFD | #x10000` to `#x10FFFF`). Should an
/// emulator let one through, each is still no event: `malformed`.
pub fn refused() -> Vec<Hostile> {
    let token = ["detail", "data", "payment_token"];
    [
        ("one byte over 256 KiB", padded(&token, SQS_MAX_BYTES + 1)),
        ("a raw NUL", with_raw(&token, "\"tok_\u{0}\"")),
        ("a raw U+FFFF", with_raw(&token, "\"tok_\u{ffff}\"")),
    ]
    .into_iter()
    .map(|(name, body)| Hostile {
        name: name.into(),
        body,
        kind: "malformed",
        sqs_refuses: true,
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_least_fifty_of_every_kind_named_once() {
        let corpus = corpus();
        assert!(corpus.len() >= 50, "{}", corpus.len());
        let mut names: Vec<&str> = corpus.iter().map(|h| h.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), corpus.len(), "names repeat");
        for kind in [
            "malformed",
            "missing_field",
            "invalid_field",
            "unknown_version",
            "wrong_source",
            "unknown_detail_type",
        ] {
            assert!(corpus.iter().any(|h| h.kind == kind), "no {kind}");
        }
    }

    #[test]
    fn every_body_fits_sqs_and_the_refused_do_not() {
        for hostile in corpus() {
            assert!(hostile.body.len() <= SQS_MAX_BYTES, "{}", hostile.name);
            assert!(!hostile.body.is_empty(), "{}", hostile.name);
        }
        let refused = refused();
        assert!(refused[0].body.len() > SQS_MAX_BYTES);
        assert!(refused[1].body.contains('\u{0}'));
        assert!(refused[2].body.contains('\u{ffff}'));
    }

    #[test]
    fn the_near_limit_bodies_are_near_the_limit() {
        for hostile in corpus().iter().filter(|h| h.name.contains("256 KiB")) {
            let len = hostile.body.len();
            assert!(
                len > SQS_MAX_BYTES - 100 && len <= SQS_MAX_BYTES,
                "{}: {len}",
                hostile.name
            );
        }
    }

    /// An SQS batch of one record holding `body`.
    fn batch(body: &str) -> String {
        json!({ "Records": [{
            "messageId": "hostile-1",
            "receiptHandle": "",
            "body": body,
            "attributes": { "ApproximateReceiveCount": "1" },
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:payment",
        }]})
        .to_string()
    }

    /// The real payment handler, over memory, dead-letters each body with
    /// its kind: what the deployed functions must do, checked without a
    /// cloud.
    #[tokio::test]
    async fn the_payment_handler_dead_letters_each_with_its_kind() {
        use orderflow_runtime::lambda::Response;
        use payment::{MemoryLedger, Payment, Simulator};
        let mut wrong = Vec::new();
        for hostile in corpus().into_iter().chain(refused()) {
            let handler = orderflow_runtime::testing::memory_handler(Payment::new(Simulator::new(
                Simulator::<MemoryLedger>::DEFAULT_LIMIT_MINOR,
                MemoryLedger::new(),
            )));
            let answer = handler.invoke(&batch(&hostile.body)).await;
            let letters = handler.letters();
            let acked =
                matches!(&answer, Ok(Response::Batch(b)) if b.batch_item_failures.is_empty());
            match letters.as_slice() {
                [letter] if acked && letter.error_kind == hostile.kind => {}
                _ => wrong.push(format!(
                    "{}: want {}, got {:?} and {answer:?}",
                    hostile.name,
                    hostile.kind,
                    letters
                        .iter()
                        .map(|l| format!("{}: {}", l.error_kind, l.error_message))
                        .collect::<Vec<_>>()
                )),
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn the_raw_numbers_are_written_as_given() {
        let body = with_raw(&["detail", "schema_version"], "18446744073709551616");
        assert!(
            body.contains("\"schema_version\":18446744073709551616"),
            "{body}"
        );
    }
}
