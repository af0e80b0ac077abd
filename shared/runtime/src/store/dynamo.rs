//! The [`StateStore`] on DynamoDB.
//!
//! An event takes two requests: a `BatchGetItem` of its idempotency record,
//! its order's record and the counters the decision needs, then one
//! `TransactWriteItems`: the order's state conditioned on its version, each
//! counter change conditioned on the counter staying non-negative, and the
//! event's record conditioned on not being completed yet. DynamoDB applies
//! all or none of them, so an effect and the record that it happened can
//! never disagree.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{BuildError, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem, Update};
use orderflow_contracts::EventId;

use super::{
    Applied, Commit, CommitError, Completed, CounterChange, Fingerprint, FirstSeen, Opening,
    OrderRecord, OutboxEntry, STATUS_COMPLETED, Snapshot, StateStore, event_key, order_key,
};
use crate::error::Transient;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The TTL attribute of idempotency records (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The attribute that holds a counter's value.
pub const COUNTER_ATTRIBUTE: &str = "value";
/// The attribute that holds a function's state for one order (JSON).
pub const STATE_ATTRIBUTE: &str = "state";
/// The attribute of an order's record that holds what each applied event
/// left (JSON: event id to fingerprint and outbox).
pub const APPLIED_ATTRIBUTE: &str = "applied";
/// The attribute of an order's record naming the event that opened it.
const OPENED_BY_ATTRIBUTE: &str = "opened_by";

type Item = HashMap<String, AttributeValue>;

/// A [`StateStore`] on one DynamoDB table with a string partition key `pk`.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// What an event's idempotency record says it left; `None` unless it is
/// completed (earlier builds wrote records in progress, which mean nothing
/// now).
fn completed_event(item: &Item) -> Result<Option<Completed>, Transient> {
    if get_s(item, "status") != Some(STATUS_COMPLETED) {
        return Ok(None);
    }
    let outbox = get_s(item, "outbox").unwrap_or("[]");
    let outbox: Vec<OutboxEntry> = serde_json::from_str(outbox)
        .map_err(|e| Transient::caused_by("stored outbox is unreadable", e))?;
    let first = match (
        get_s(item, "fingerprint"),
        get_s(item, "order_id"),
        get_s(item, "detail_type"),
    ) {
        (Some(fingerprint), Some(order_id), Some(detail_type)) => Some(FirstSeen {
            fingerprint: Fingerprint::from_stored(fingerprint),
            order_id: order_id.to_owned(),
            detail_type: detail_type.to_owned(),
        }),
        _ => None,
    };
    Ok(Some(Completed { first, outbox }))
}

/// Reads an order's record from its item.
fn order_record(item: &Item) -> Result<OrderRecord, Transient> {
    let state = get_s(item, STATE_ATTRIBUTE)
        .ok_or_else(|| Transient::new("order item has no state attribute"))?;
    let version = get_n(item, "version")
        .ok_or_else(|| Transient::new("order item has no version attribute"))?;
    let applied: BTreeMap<EventId, Applied> = match get_s(item, APPLIED_ATTRIBUTE) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| Transient::caused_by("order item's applied events are unreadable", e))?,
        None => BTreeMap::new(),
    };
    let opened_by: Option<Opening> = match get_s(item, OPENED_BY_ATTRIBUTE) {
        Some(json) => Some(
            serde_json::from_str(json)
                .map_err(|e| Transient::caused_by("order item's opening is unreadable", e))?,
        ),
        None => None,
    };
    Ok(OrderRecord {
        state: state.to_owned(),
        version: version as u64,
        applied,
        opened_by,
    })
}

/// An order's record as an item.
fn order_item(order: &str, record: &OrderRecord) -> Item {
    let mut item = HashMap::from([
        (PK.to_owned(), s(order_key(order))),
        (STATE_ATTRIBUTE.to_owned(), s(record.state.clone())),
        ("version".to_owned(), n(record.version)),
        (
            APPLIED_ATTRIBUTE.to_owned(),
            // Serializing these types cannot fail: every map key is a string.
            s(serde_json::to_string(&record.applied).unwrap_or_default()),
        ),
    ]);
    if let Some(opening) = &record.opened_by {
        item.insert(
            OPENED_BY_ATTRIBUTE.to_owned(),
            s(serde_json::to_string(opening).unwrap_or_default()),
        );
    }
    item
}

/// The condition that an order's item is still at `expected` (0: absent).
fn version_condition(expected: u64) -> (&'static str, Option<AttributeValue>) {
    if expected == 0 {
        ("attribute_not_exists(pk)", None)
    } else {
        ("version = :v", Some(n(expected)))
    }
}

impl StateStore for DynamoStore {
    async fn load(
        &self,
        event: EventId,
        order: &str,
        counters: &[String],
    ) -> Result<Snapshot, Transient> {
        let event_pk = event_key(event);
        let order_pk = order_key(order);
        let keys = [&event_pk, &order_pk]
            .into_iter()
            .chain(counters)
            .map(|k| HashMap::from([(PK.to_owned(), s(k.clone()))]))
            .collect::<Vec<_>>();
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(|e| Transient::caused_by("building BatchGetItem", e))?;
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| Transient::caused_by("DynamoDB BatchGetItem failed", e))?;
        // BatchGetItem may leave keys unprocessed under load; retrying the
        // record is simpler and safer than reading half a snapshot.
        if out.unprocessed_keys.as_ref().is_some_and(|u| !u.is_empty()) {
            return Err(Transient::new(
                "DynamoDB BatchGetItem left keys unprocessed",
            ));
        }
        let items = out
            .responses
            .and_then(|mut r| r.remove(&self.table))
            .unwrap_or_default();
        let by_key: HashMap<&str, &Item> = items
            .iter()
            .filter_map(|item| get_s(item, PK).map(|k| (k, item)))
            .collect();
        let event = match by_key.get(event_pk.as_str()) {
            Some(item) => completed_event(item)?,
            None => None,
        };
        let order = by_key
            .get(order_pk.as_str())
            .map(|item| order_record(item))
            .transpose()?;
        let counters = counters
            .iter()
            .map(|k| {
                by_key
                    .get(k.as_str())
                    .and_then(|i| get_n(i, COUNTER_ATTRIBUTE))
            })
            .collect();
        Ok(Snapshot {
            event,
            order,
            counters,
        })
    }

    async fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> Result<(), CommitError> {
        let (condition, value) = version_condition(expected_version);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(order_item(order, record)))
            .condition_expression(condition)
            .set_expression_attribute_values(value.map(|v| HashMap::from([(":v".to_owned(), v)])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Err(CommitError::Conflict(format!(
                    "order {order} moved past version {expected_version}"
                )))
            }
            Err(e) => Err(CommitError::Transient(Transient::caused_by(
                "DynamoDB PutItem (write-ahead) failed",
                e,
            ))),
        }
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        let items = transact_items(&self.table, commit).map_err(|e| {
            CommitError::Transient(Transient::caused_by("building TransactWriteItems", e))
        })?;
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => Err(
                    explain_cancellation(commit, cancelled.cancellation_reasons()),
                ),
                TransactWriteItemsError::TransactionInProgressException(e) => Err(
                    CommitError::Conflict(format!("transaction in progress: {e}")),
                ),
                other => Err(CommitError::Transient(Transient::caused_by(
                    "DynamoDB TransactWriteItems failed",
                    other,
                ))),
            },
            Err(other) => Err(CommitError::Transient(Transient::caused_by(
                "DynamoDB TransactWriteItems failed",
                other,
            ))),
        }
    }
}

/// The items of a commit's transaction, in the order
/// [`explain_cancellation`] reads its reasons: the order's record, each
/// counter change, then the event's record.
fn transact_items(table: &str, commit: &Commit) -> Result<Vec<TransactWriteItem>, BuildError> {
    let mut items = Vec::with_capacity(commit.counters.len() + 2);
    items.push(order_put(table, commit)?);
    for change in &commit.counters {
        items.push(counter_update(table, change)?);
    }
    items.push(completion_put(table, commit)?);
    Ok(items)
}

/// The put of the order's new record, conditioned on its version.
fn order_put(table: &str, commit: &Commit) -> Result<TransactWriteItem, BuildError> {
    let (condition, value) = version_condition(commit.expected_version);
    let order = Put::builder()
        .table_name(table)
        .set_item(Some(order_item(&commit.ticket.order_id, &commit.order)))
        .condition_expression(condition)
        .set_expression_attribute_values(value.map(|v| HashMap::from([(":v".to_owned(), v)])));
    Ok(TransactWriteItem::builder().put(order.build()?).build())
}

/// The update adding one counter change; a decrease is conditioned on the
/// counter staying at or above zero.
fn counter_update(table: &str, change: &CounterChange) -> Result<TransactWriteItem, BuildError> {
    let mut update = Update::builder()
        .table_name(table)
        .key(PK, s(change.key.clone()))
        .update_expression("ADD #v :delta")
        .expression_attribute_names("#v", COUNTER_ATTRIBUTE)
        .expression_attribute_values(":delta", n(change.delta));
    if change.delta < 0 {
        // A counter never goes negative: stock can't be oversold.
        update = update
            .condition_expression("#v >= :need")
            .expression_attribute_values(":need", n(-change.delta));
    }
    Ok(TransactWriteItem::builder().update(update.build()?).build())
}

/// The put completing the event's record with its outbox, conditioned on
/// no delivery having completed it yet.
fn completion_put(table: &str, commit: &Commit) -> Result<TransactWriteItem, BuildError> {
    let ticket = &commit.ticket;
    let outbox = serde_json::to_string(&commit.outbox).unwrap_or_else(|_| "[]".to_owned());
    let done = Put::builder()
        .table_name(table)
        .item(PK, s(event_key(ticket.event_id)))
        .item("status", s(STATUS_COMPLETED))
        .item("outbox", s(outbox))
        .item("fingerprint", s(ticket.fingerprint.as_str()))
        .item("order_id", s(ticket.order_id.as_str()))
        .item("detail_type", s(ticket.detail_type))
        .item(TTL_ATTRIBUTE, n(ticket.expires_at))
        // Another delivery of the event may have completed it since the
        // load; a record in progress is an earlier build's claim, and is
        // taken over.
        .condition_expression("attribute_not_exists(pk) OR #status <> :completed")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":completed", s(STATUS_COMPLETED))
        .build()?;
    Ok(TransactWriteItem::builder().put(done).build())
}

/// Turns `CancellationReasons` (one per item, in request order) into the
/// item that stopped the transaction.
fn explain_cancellation(
    commit: &Commit,
    reasons: &[aws_sdk_dynamodb::types::CancellationReason],
) -> CommitError {
    let last = commit.counters.len() + 1;
    for (index, reason) in reasons.iter().enumerate() {
        let code = reason.code().unwrap_or("None");
        if code == "None" {
            continue;
        }
        let item = match index {
            0 => format!("order {}", commit.ticket.order_id),
            i if i == last => format!("event record {}", commit.ticket.event_id),
            i => commit
                .counters
                .get(i - 1)
                .map_or_else(|| format!("item {i}"), |c| format!("counter {}", c.key)),
        };
        return match code {
            "ConditionalCheckFailed" | "TransactionConflict" => {
                CommitError::Conflict(format!("{item}: {code}"))
            }
            _ => CommitError::Transient(Transient::new(format!(
                "transaction cancelled at {item}: {code}"
            ))),
        };
    }
    CommitError::Transient(Transient::new("transaction cancelled without a reason"))
}
