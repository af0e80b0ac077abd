//! The [`StateStore`] on DynamoDB.
//!
//! A commit is one `TransactWriteItems`: the order's state conditioned on
//! its version, each counter change conditioned on the counter staying
//! non-negative, and the event record conditioned on still being in
//! progress. DynamoDB applies all or none of them, so an effect and the
//! record that it happened can never disagree.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use orderflow_contracts::{EventId, OrderId};

use super::{
    Claim, Commit, CommitError, OutboxEntry, STATUS_COMPLETED, STATUS_IN_PROGRESS, Snapshot,
    StateStore, event_key, order_key,
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

    async fn read_event(&self, event: EventId) -> Result<Option<Item>, Transient> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, s(event_key(event)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Transient::caused_by("DynamoDB GetItem failed", e))?;
        Ok(out.item)
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

/// What an existing event record means for a new claim.
fn existing_claim(item: &Item) -> Result<Claim, Transient> {
    if get_s(item, "status") != Some(STATUS_COMPLETED) {
        return Ok(Claim::Busy);
    }
    let outbox = get_s(item, "outbox").unwrap_or("[]");
    let entries: Vec<OutboxEntry> = serde_json::from_str(outbox)
        .map_err(|e| Transient::caused_by("stored outbox is unreadable", e))?;
    Ok(Claim::Completed(entries))
}

impl StateStore for DynamoStore {
    async fn claim(
        &self,
        event: EventId,
        lease_until: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<Claim, Transient> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(PK, s(event_key(event)))
            .item("status", s(STATUS_IN_PROGRESS))
            .item("lease_until", n(lease_until))
            .item(TTL_ATTRIBUTE, n(expires_at))
            // A new event, or one whose holder ran out of time without
            // completing (its Lambda timed out or crashed).
            .condition_expression(
                "attribute_not_exists(pk) OR (#status = :in_progress AND lease_until < :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Acquired),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                PutItemError::ConditionalCheckFailedException(failed) => {
                    let item = match failed.item {
                        Some(item) => Some(item),
                        // Not every implementation returns the old item.
                        None => self.read_event(event).await?,
                    };
                    match item {
                        Some(item) => existing_claim(&item),
                        None => Err(Transient::new(
                            "event record vanished between claim and read",
                        )),
                    }
                }
                other => Err(Transient::caused_by(
                    "DynamoDB PutItem (claim) failed",
                    other,
                )),
            },
            Err(other) => Err(Transient::caused_by(
                "DynamoDB PutItem (claim) failed",
                other,
            )),
        }
    }

    async fn release(&self, event: EventId) -> Result<(), Transient> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(PK, s(event_key(event)))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(Transient::caused_by(
                "DynamoDB DeleteItem (release) failed",
                e,
            )),
        }
    }

    async fn load(&self, order: &OrderId, counters: &[String]) -> Result<Snapshot, Transient> {
        let order_pk = order_key(order);
        let keys = std::iter::once(&order_pk)
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
        let state = match by_key.get(order_pk.as_str()) {
            Some(item) => {
                let json = get_s(item, STATE_ATTRIBUTE)
                    .ok_or_else(|| Transient::new("order item has no state attribute"))?;
                let version = get_n(item, "version")
                    .ok_or_else(|| Transient::new("order item has no version attribute"))?;
                Some((json.to_owned(), version as u64))
            }
            None => None,
        };
        let counters = counters
            .iter()
            .map(|k| {
                by_key
                    .get(k.as_str())
                    .and_then(|i| get_n(i, COUNTER_ATTRIBUTE))
            })
            .collect();
        Ok(Snapshot { state, counters })
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| {
            CommitError::Transient(Transient::caused_by("building TransactWriteItems", e))
        };
        let mut items = Vec::with_capacity(commit.counters.len() + 2);

        let mut order = Put::builder()
            .table_name(&self.table)
            .item(PK, s(order_key(&commit.order_id)))
            .item(STATE_ATTRIBUTE, s(commit.state.clone()))
            .item("version", n(commit.expected_version + 1));
        order = if commit.expected_version == 0 {
            order.condition_expression("attribute_not_exists(pk)")
        } else {
            order
                .condition_expression("version = :v")
                .expression_attribute_values(":v", n(commit.expected_version))
        };
        items.push(
            TransactWriteItem::builder()
                .put(order.build().map_err(build)?)
                .build(),
        );

        for change in &commit.counters {
            let mut update = Update::builder()
                .table_name(&self.table)
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
            items.push(
                TransactWriteItem::builder()
                    .update(update.build().map_err(build)?)
                    .build(),
            );
        }

        let outbox = serde_json::to_string(&commit.outbox).unwrap_or_else(|_| "[]".to_owned());
        let done = Put::builder()
            .table_name(&self.table)
            .item(PK, s(event_key(commit.event_id)))
            .item("status", s(STATUS_COMPLETED))
            .item("outbox", s(outbox))
            .item(TTL_ATTRIBUTE, n(commit.expires_at))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(STATUS_IN_PROGRESS))
            .build()
            .map_err(build)?;
        items.push(TransactWriteItem::builder().put(done).build());

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
            0 => format!("order {}", commit.order_id),
            i if i == last => format!("event record {}", commit.event_id),
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
