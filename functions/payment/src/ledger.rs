//! The simulated provider's ledger: every authorization it ever answered,
//! and what became of its hold.
//!
//! A provider's word is its ledger, not our events: "never charged twice"
//! and "no hold left open" are checked here. The ledger is shared by every
//! execution environment of the function (a DynamoDB table of its own on
//! the cloud, [`DynamoLedger`]), so an idempotency key answers the same
//! wherever the call lands. [`MemoryLedger`] serves tests and `cargo lambda
//! watch`.
//!
//! One item per authorization, keyed by its id (`pk`), which derives from
//! the idempotency key: `status` is `open` (a hold), `captured`, `voided`
//! or `declined` (never a hold). The simulator's failures are counted in
//! items of their own, keyed `failures#<idempotency key>`, so that "fail n
//! times" means n times in all, however many environments the retries
//! land in.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use orderflow_contracts::{AuthorizationId, Currency, DeclineReason, MinorUnits, OrderId};
use orderflow_runtime::Transient;

/// The authorization id the simulator gives an idempotency key: the same
/// key, the same id, in every environment.
pub fn authorization_id(key: &str) -> Result<AuthorizationId, Transient> {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    AuthorizationId::new(format!("auth_{hash:016x}")).map_err(Transient::new)
}

/// Where an authorization stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStatus {
    /// Authorized: the amount is held on the card.
    Open,
    /// Charged.
    Captured,
    /// Released without a charge.
    Voided,
    /// Refused; nothing was ever held.
    Declined(DeclineReason),
}

impl HoldStatus {
    /// The name the ledger stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Declined(_) => "declined",
        }
    }
}

impl fmt::Display for HoldStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One authorization in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// Its id, derived from the idempotency key.
    pub authorization_id: AuthorizationId,
    /// The key it was asked for under.
    pub idempotency_key: String,
    /// The order.
    pub order_id: OrderId,
    /// The amount.
    pub amount_minor: MinorUnits,
    /// Its currency.
    pub currency: Currency,
    /// Where it stands.
    pub status: HoldStatus,
}

/// How closing a hold went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The hold is now (or was already) in the status asked for.
    Done,
    /// The hold is in another final status: a voided hold cannot be
    /// captured, nor a captured one voided.
    Refused(HoldStatus),
    /// No such authorization.
    Missing,
}

/// The ledger's port.
pub trait Ledger: Send + Sync {
    /// Records `hold` unless its authorization id is recorded already, and
    /// returns what is recorded: the first answer to a key is the answer.
    fn record(&self, hold: &Hold) -> impl Future<Output = Result<Hold, Transient>> + Send;

    /// Moves an open hold to `to` ([`HoldStatus::Captured`] or
    /// [`HoldStatus::Voided`]); doing it again is a no-op.
    fn close(
        &self,
        id: &AuthorizationId,
        to: HoldStatus,
    ) -> impl Future<Output = Result<Closed, Transient>> + Send;

    /// Counts one more simulated failure under `key` unless `n` have been
    /// counted already, in every environment together: `Some(count)` is
    /// the failure to simulate now, `None` means all `n` are spent.
    fn next_failure(
        &self,
        key: &str,
        n: u32,
    ) -> impl Future<Output = Result<Option<u32>, Transient>> + Send;
}

/// A shared ledger is a ledger: execution environments share one.
impl<L: Ledger + ?Sized> Ledger for std::sync::Arc<L> {
    fn record(&self, hold: &Hold) -> impl Future<Output = Result<Hold, Transient>> + Send {
        (**self).record(hold)
    }

    fn close(
        &self,
        id: &AuthorizationId,
        to: HoldStatus,
    ) -> impl Future<Output = Result<Closed, Transient>> + Send {
        (**self).close(id, to)
    }

    fn next_failure(
        &self,
        key: &str,
        n: u32,
    ) -> impl Future<Output = Result<Option<u32>, Transient>> + Send {
        (**self).next_failure(key, n)
    }
}

/// A ledger in process memory.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    holds: Mutex<HashMap<AuthorizationId, Hold>>,
    failures: Mutex<HashMap<String, u32>>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every authorization, in no particular order.
    pub fn holds(&self) -> Vec<Hold> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AuthorizationId, Hold>> {
        self.holds.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Ledger for MemoryLedger {
    async fn record(&self, hold: &Hold) -> Result<Hold, Transient> {
        Ok(self
            .lock()
            .entry(hold.authorization_id.clone())
            .or_insert_with(|| hold.clone())
            .clone())
    }

    async fn close(&self, id: &AuthorizationId, to: HoldStatus) -> Result<Closed, Transient> {
        let mut holds = self.lock();
        let Some(hold) = holds.get_mut(id) else {
            return Ok(Closed::Missing);
        };
        Ok(match hold.status {
            HoldStatus::Open => {
                hold.status = to;
                Closed::Done
            }
            now if now == to => Closed::Done,
            now => Closed::Refused(now),
        })
    }

    async fn next_failure(&self, key: &str, n: u32) -> Result<Option<u32>, Transient> {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let seen = failures.entry(key.to_owned()).or_insert(0);
        Ok((*seen < n).then(|| {
            *seen += 1;
            *seen
        }))
    }
}

/// The ledger in a DynamoDB table with a string partition key `pk`.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn hold_item(hold: &Hold) -> Item {
    let mut item = HashMap::from([
        ("pk".to_owned(), s(hold.authorization_id.as_str())),
        ("idempotency_key".to_owned(), s(&hold.idempotency_key)),
        ("order_id".to_owned(), s(hold.order_id.as_str())),
        (
            "amount_minor".to_owned(),
            AttributeValue::N(hold.amount_minor.0.to_string()),
        ),
        ("currency".to_owned(), s(hold.currency.as_str())),
        ("status".to_owned(), s(hold.status.as_str())),
    ]);
    if let HoldStatus::Declined(reason) = hold.status {
        item.insert("decline_reason".to_owned(), s(decline_reason(reason)));
    }
    item
}

fn decline_reason(reason: DeclineReason) -> &'static str {
    match reason {
        DeclineReason::CardDeclined => "card_declined",
        DeclineReason::OverLimit => "over_limit",
        DeclineReason::StockUnavailable => "stock_unavailable",
    }
}

/// Reads a ledger item.
pub fn hold_from_item(item: &Item) -> Result<Hold, Transient> {
    let field = |name: &str| {
        get_s(item, name).ok_or_else(|| Transient::new(format!("ledger item has no {name}")))
    };
    let bad = |name: &str, e: String| Transient::new(format!("ledger item's {name}: {e}"));
    let status = match field("status")? {
        "open" => HoldStatus::Open,
        "captured" => HoldStatus::Captured,
        "voided" => HoldStatus::Voided,
        "declined" => HoldStatus::Declined(
            match get_s(item, "decline_reason").unwrap_or("card_declined") {
                "over_limit" => DeclineReason::OverLimit,
                "stock_unavailable" => DeclineReason::StockUnavailable,
                _ => DeclineReason::CardDeclined,
            },
        ),
        other => return Err(Transient::new(format!("ledger status {other} is unknown"))),
    };
    let amount = item
        .get("amount_minor")
        .and_then(|v| v.as_n().ok())
        .and_then(|n| u64::from_str(n).ok())
        .ok_or_else(|| Transient::new("ledger item has no amount_minor"))?;
    Ok(Hold {
        authorization_id: AuthorizationId::new(field("pk")?).map_err(|e| bad("pk", e))?,
        idempotency_key: field("idempotency_key")?.to_owned(),
        order_id: OrderId::new(field("order_id")?).map_err(|e| bad("order_id", e))?,
        amount_minor: MinorUnits(amount),
        currency: Currency::new(field("currency")?).map_err(|e| bad("currency", e))?,
        status,
    })
}

impl DynamoLedger {
    /// A ledger in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    async fn read(&self, id: &AuthorizationId) -> Result<Option<Item>, Transient> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Transient::caused_by("DynamoDB GetItem (ledger) failed", e))?;
        Ok(out.item)
    }

    /// The item a failed condition returned, or, where an implementation
    /// returns none, the item read again.
    async fn old_item(
        &self,
        returned: Option<Item>,
        id: &AuthorizationId,
    ) -> Result<Option<Item>, Transient> {
        match returned {
            Some(item) => Ok(Some(item)),
            None => self.read(id).await,
        }
    }
}

impl Ledger for DynamoLedger {
    async fn record(&self, hold: &Hold) -> Result<Hold, Transient> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(hold_item(hold)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(hold.clone()),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                    failed,
                ) => match self.old_item(failed.item, &hold.authorization_id).await? {
                    Some(item) => hold_from_item(&item),
                    None => Err(Transient::new("ledger item vanished between write and read")),
                },
                other => Err(Transient::caused_by("DynamoDB PutItem (ledger) failed", other)),
            },
        }
    }

    async fn close(&self, id: &AuthorizationId, to: HoldStatus) -> Result<Closed, Transient> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(id.as_str()))
            .update_expression("SET #status = :to")
            .condition_expression("#status = :open OR #status = :to")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s(HoldStatus::Open.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Closed::Done),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                    failed,
                ) => match self.old_item(failed.item, id).await? {
                    Some(item) => Ok(Closed::Refused(hold_from_item(&item)?.status)),
                    None => Ok(Closed::Missing),
                },
                other => Err(Transient::caused_by("DynamoDB UpdateItem (ledger) failed", other)),
            },
        }
    }

    async fn next_failure(&self, key: &str, n: u32) -> Result<Option<u32>, Transient> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("failures#{key}")))
            .update_expression("ADD failures :one")
            .condition_expression("attribute_not_exists(failures) OR failures < :n")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":n", AttributeValue::N(n.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes()
                .and_then(|item| item.get("failures"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
                .map(Some)
                .ok_or_else(|| Transient::new("ledger UpdateItem returned no failure count")),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(_) => Ok(None),
                other => Err(Transient::caused_by("DynamoDB UpdateItem (ledger failures) failed", other)),
            },
        }
    }
}

/// The ledger a function runs with: DynamoDB on a cloud, memory otherwise.
#[derive(Debug)]
pub enum AnyLedger {
    /// On a cloud.
    Dynamo(DynamoLedger),
    /// In memory.
    Memory(MemoryLedger),
}

impl Ledger for AnyLedger {
    async fn record(&self, hold: &Hold) -> Result<Hold, Transient> {
        match self {
            Self::Dynamo(l) => l.record(hold).await,
            Self::Memory(l) => l.record(hold).await,
        }
    }

    async fn close(&self, id: &AuthorizationId, to: HoldStatus) -> Result<Closed, Transient> {
        match self {
            Self::Dynamo(l) => l.close(id, to).await,
            Self::Memory(l) => l.close(id, to).await,
        }
    }

    async fn next_failure(&self, key: &str, n: u32) -> Result<Option<u32>, Transient> {
        match self {
            Self::Dynamo(l) => l.next_failure(key, n).await,
            Self::Memory(l) => l.next_failure(key, n).await,
        }
    }
}
