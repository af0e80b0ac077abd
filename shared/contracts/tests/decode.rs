//! Reading is tolerant; validation is strict, and names the field.

use orderflow_contracts::{ContractError, Event, EventKind, Message};
use serde_json::{Value, json};

fn order_placed() -> Value {
    json!({
        "version": "0",
        "id": "0d4c5e4e-5a4d-4b8e-9d55-1f5f0b8e2a11",
        "detail-type": "OrderPlaced",
        "source": "orderflow.orders",
        "time": "2026-11-24T09:30:00Z",
        "detail": {
            "event_id": "8b0b7a9e-2f4e-4f43-9d7e-1b2c3d4e5f60",
            "order_id": "ord-1",
            "causation_id": null,
            "occurred_at": "2026-11-24T09:30:00Z",
            "schema_version": 1,
            "producer": "orderflow.orders",
            "data": {
                "items": [
                    {"sku": "SKU-A", "quantity": 2, "unit_price_minor": 500},
                    {"sku": "SKU-B", "quantity": 1, "unit_price_minor": 250}
                ],
                "total_minor": 1250,
                "currency": "EUR",
                "payment_token": "tok_ok",
                "shipping_address": {
                    "name": "A", "line1": "B", "city": "C", "postal_code": "D", "country": "DE"
                }
            }
        }
    })
}

fn decode(value: &Value) -> Result<Message, ContractError> {
    Message::from_bus_json(&value.to_string())
}

fn invalid_field(value: &Value) -> String {
    match decode(value) {
        Err(ContractError::Invalid { field, .. }) => field,
        Err(ContractError::Missing { field }) => field,
        Err(ContractError::Malformed { field, .. }) => field,
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn a_valid_order_decodes_to_the_typed_event() {
    let message = decode(&order_placed()).unwrap();
    assert_eq!(message.kind(), EventKind::OrderPlaced);
    assert_eq!(message.meta.order_id.as_str(), "ord-1");
    let Event::OrderPlaced(order) = message.event else {
        panic!("wrong variant")
    };
    assert_eq!(order.total_minor.0, 1250);
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let mut value = order_placed();
    value["extra"] = json!(1);
    value["detail"]["trace"] = json!({"a": 1});
    value["detail"]["data"]["gift_wrap"] = json!(true);
    value["detail"]["data"]["items"][0]["colour"] = json!("red");
    assert!(decode(&value).is_ok());
}

#[test]
fn negative_quantity_names_the_field() {
    let mut value = order_placed();
    value["detail"]["data"]["items"][1]["quantity"] = json!(-3);
    assert_eq!(invalid_field(&value), "detail.data.items[1].quantity");
}

#[test]
fn zero_quantity_names_the_field() {
    let mut value = order_placed();
    value["detail"]["data"]["items"][0]["quantity"] = json!(0);
    assert_eq!(invalid_field(&value), "detail.data.items[0].quantity");
}

#[test]
fn empty_items_is_invalid() {
    let mut value = order_placed();
    value["detail"]["data"]["items"] = json!([]);
    value["detail"]["data"]["total_minor"] = json!(0);
    assert_eq!(invalid_field(&value), "detail.data.items");
}

#[test]
fn total_must_equal_the_sum_of_lines() {
    let mut value = order_placed();
    value["detail"]["data"]["total_minor"] = json!(1249);
    assert_eq!(invalid_field(&value), "detail.data.total_minor");
}

#[test]
fn a_sku_may_appear_on_one_line_only() {
    let mut value = order_placed();
    value["detail"]["data"]["items"][1]["sku"] = json!("SKU-A");
    value["detail"]["data"]["total_minor"] = json!(1250);
    assert_eq!(invalid_field(&value), "detail.data.items[1].sku");
}

#[test]
fn missing_fields_are_named_by_path() {
    let mut value = order_placed();
    value["detail"]["data"]
        .as_object_mut()
        .map(|o| o.remove("currency"));
    assert_eq!(invalid_field(&value), "detail.data.currency");
    let mut value = order_placed();
    value["detail"]
        .as_object_mut()
        .map(|o| o.remove("order_id"));
    assert_eq!(invalid_field(&value), "detail.order_id");
}

#[test]
fn a_card_number_is_refused_as_a_token() {
    let mut value = order_placed();
    value["detail"]["data"]["payment_token"] = json!("tok_4111111111111111");
    assert_eq!(invalid_field(&value), "detail.data.payment_token");
}

#[test]
fn unknown_version_is_its_own_error_checked_first() {
    let mut value = order_placed();
    value["detail"]["schema_version"] = json!(3);
    // Even with a v3-shaped payload the version is what is reported.
    value["detail"]["data"] = json!({"lines": "v3 shape"});
    let err = decode(&value).unwrap_err();
    assert_eq!(
        err,
        ContractError::UnknownVersion {
            found: 3,
            supported: 2
        }
    );
    assert_eq!(
        err.to_string(),
        "unknown schema_version 3 (this build reads 1 to 2)"
    );
}

/// [`order_placed`] as version 2 writes it, by customer `customer`.
fn order_placed_v2(customer: Value) -> Value {
    let mut value = order_placed();
    value["detail"]["schema_version"] = json!(2);
    value["detail"]["data"]["customer_id"] = customer;
    value
}

fn customer_of(message: &Message) -> Option<&str> {
    match &message.event {
        Event::OrderPlaced(order) => order.customer_id.as_ref().map(|c| c.as_str()),
        other => panic!("not an order: {other:?}"),
    }
}

#[test]
fn version_1_reads_without_a_customer_and_is_written_as_it_was() {
    let message = decode(&order_placed()).unwrap();
    assert_eq!(message.meta.schema_version, 1);
    assert_eq!(customer_of(&message), None);
    assert_eq!(message.event.schema_version(), 1);
    // Written again, it is version 1 still, with no customer member.
    let detail = message.detail_json();
    assert!(detail.contains("\"schema_version\":1"), "{detail}");
    assert!(!detail.contains("customer_id"), "{detail}");
    assert_eq!(
        Message::from_detail(EventKind::OrderPlaced, &detail).unwrap(),
        message
    );
}

#[test]
fn a_customer_in_a_version_1_order_is_no_part_of_it() {
    // Whatever it holds: version 1 readers ignored it as an unknown member.
    for customer in [json!("cus-1"), json!("cus 1"), json!(5), json!({"a": [1]})] {
        let mut value = order_placed();
        value["detail"]["data"]["customer_id"] = customer.clone();
        let message = decode(&value).unwrap_or_else(|e| panic!("{customer}: {e}"));
        assert_eq!(customer_of(&message), None);
        assert_eq!(message, decode(&order_placed()).unwrap());
    }
}

#[test]
fn version_2_reads_its_customer_and_requires_it() {
    let message = decode(&order_placed_v2(json!("cus-1"))).unwrap();
    assert_eq!(message.meta.schema_version, 2);
    assert_eq!(customer_of(&message), Some("cus-1"));
    let detail = message.detail_json();
    assert!(detail.contains("\"schema_version\":2"), "{detail}");
    assert_eq!(
        Message::from_detail(EventKind::OrderPlaced, &detail).unwrap(),
        message
    );

    let mut missing = order_placed_v2(json!(null));
    missing["detail"]["data"]
        .as_object_mut()
        .unwrap()
        .remove("customer_id");
    assert_eq!(
        decode(&missing),
        Err(ContractError::Missing {
            field: "detail.data.customer_id".into()
        })
    );
    assert_eq!(
        decode(&order_placed_v2(json!(null))),
        Err(ContractError::Missing {
            field: "detail.data.customer_id".into()
        })
    );
    assert_eq!(
        invalid_field(&order_placed_v2(json!("cus 1"))),
        "detail.data.customer_id"
    );
}

#[test]
fn unknown_detail_type_and_wrong_source_are_refused() {
    let mut value = order_placed();
    value["detail-type"] = json!("OrderCancelled");
    assert_eq!(
        decode(&value).map_err(|e| e.kind()),
        Err("unknown_detail_type")
    );
    let mut value = order_placed();
    value["source"] = json!("orderflow.payment");
    assert_eq!(decode(&value).map_err(|e| e.kind()), Err("wrong_source"));
}

#[test]
fn malformed_json_is_malformed() {
    assert_eq!(
        Message::from_bus_json("{\"detail-type\": ").map_err(|e| e.kind()),
        Err("malformed")
    );
    assert_eq!(
        Message::from_bus_json("[]").map_err(|e| e.kind()),
        Err("malformed")
    );
}

#[test]
fn sources_are_valid_producers() {
    for kind in EventKind::ALL {
        assert!(
            orderflow_contracts::Producer::new(kind.source()).is_ok(),
            "{kind}"
        );
        assert_eq!(EventKind::from_detail_type(kind.detail_type()), Ok(kind));
    }
}
