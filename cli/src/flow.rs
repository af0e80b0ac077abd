//! [`Flow`]: a deployed stack and the clients to reach it, with what the
//! operator commands and the whole-flow tests do to it: place orders, seed
//! and read stock, read the functions' state and the provider's ledger, and
//! read dead letters without taking them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};
use orderflow_contracts::{Message, OrderId, Sku};
use orderflow_runtime::dlq::{RetryLater, change_visibility};
use orderflow_runtime::store::{COUNTER_ATTRIBUTE, PK, STATE_ATTRIBUTE, order_key};

use crate::audit::Audit;
use crate::order::OrderSpec;
use crate::outcome::Outcome;
use crate::stack::{ServiceResources, Stack};

/// A deployed stack and the clients to reach it.
#[derive(Clone)]
pub struct Flow {
    /// The stack's resources.
    pub stack: Stack,
    audit: Arc<OnceLock<Audit>>,
    pub(crate) sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    s3: aws_sdk_s3::Client,
    pub(crate) events: aws_sdk_eventbridge::Client,
}

/// A message found in a dead-letter queue.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The SQS message id.
    pub message_id: String,
    /// When it was sent to the DLQ.
    pub sent_at: Option<DateTime<Utc>>,
    /// The body (the original event, unchanged).
    pub body: String,
    /// The message attributes (`orderflow.error_kind`, …) as strings.
    pub attributes: HashMap<String, String>,
}

impl DeadLetter {
    /// `detail.order_id` of the body, when it has one.
    pub fn order_id(&self) -> Option<String> {
        self.body_field(&["detail", "order_id"])
    }

    /// The body's `detail-type`, when it has one.
    pub fn detail_type(&self) -> Option<String> {
        self.body_field(&["detail-type"])
    }

    fn body_field(&self, path: &[&str]) -> Option<String> {
        let body: serde_json::Value = serde_json::from_str(&self.body).ok()?;
        path.iter()
            .try_fold(&body, |v, key| v.get(key))?
            .as_str()
            .map(str::to_owned)
    }

    /// The attribute `name`, or "".
    pub fn attribute(&self, name: &str) -> &str {
        self.attributes.get(name).map(String::as_str).unwrap_or("")
    }

    /// What `orderflow dlq show` prints for it. A message that the
    /// runtime did not dead-letter (SQS moved it after too many receives,
    /// or EventBridge could not deliver it) has no `orderflow.*` reason;
    /// its SQS or EventBridge attributes are shown instead.
    pub fn describe(&self) -> String {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let mut out = format!(
            "message {}\n  sent        {}\n  event       {} for order {}\n",
            self.message_id,
            self.sent_at
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| "-".into()),
            or_dash(self.detail_type()),
            or_dash(self.order_id()),
        );
        if self.attributes.contains_key("orderflow.error_kind") {
            for (label, name) in [
                ("function", "orderflow.function"),
                ("error kind", "orderflow.error_kind"),
                ("error", "orderflow.error_message"),
                ("original id", "orderflow.original_message_id"),
                ("receives", "orderflow.receive_count"),
            ] {
                out.push_str(&format!("  {label:<11} {}\n", self.attribute(name)));
            }
        } else {
            out.push_str("  reason      not dead-lettered by orderflow (SQS redrive or EventBridge delivery failure)\n");
            let mut names: Vec<&String> = self.attributes.keys().collect();
            names.sort();
            for name in names {
                out.push_str(&format!("  {name:<11} {}\n", self.attributes[name]));
            }
        }
        out
    }
}

impl Flow {
    /// Connects to stack `stack_name` with the default AWS configuration
    /// (`AWS_ENDPOINT_URL` points it at the local cloud).
    pub async fn connect(stack_name: &str) -> Result<Self> {
        let config = tools_loader()?.load().await;
        Self::connect_with(&config, stack_name).await
    }

    /// [`Flow::connect`] with a given SDK configuration.
    pub async fn connect_with(config: &SdkConfig, stack_name: &str) -> Result<Self> {
        let cfn = aws_sdk_cloudformation::Client::new(config);
        let stack = Stack::describe(&cfn, stack_name).await?;
        Ok(Self {
            stack,
            audit: Arc::default(),
            sqs: aws_sdk_sqs::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            s3: aws_sdk_s3::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
        })
    }

    /// The SQS client, for what this type does not wrap (the tests'
    /// harness sends into a function's queue with it).
    pub fn sqs(&self) -> &aws_sdk_sqs::Client {
        &self.sqs
    }

    /// The DynamoDB client, for what this type does not wrap (the tests'
    /// harness writes idempotency records with it).
    pub fn dynamodb(&self) -> &aws_sdk_dynamodb::Client {
        &self.dynamodb
    }

    /// Every orderflow event, as the audit queue delivers it. The first call
    /// starts draining the audit queue on the current runtime.
    pub fn audit(&self) -> &Audit {
        self.audit
            .get_or_init(|| Audit::start(self.sqs.clone(), self.stack.audit_queue_url.clone()))
    }

    /// Puts `message` on the bus, as the orders service would.
    pub async fn place(&self, message: &Message) -> Result<()> {
        self.place_all(std::slice::from_ref(message)).await
    }

    /// Puts `messages` on the bus, ten to a PutEvents call.
    pub async fn place_all(&self, messages: &[Message]) -> Result<()> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .map(|m| {
                    let kind = m.kind();
                    self.entry(kind.source(), kind.detail_type(), &m.detail_json())
                })
                .collect();
            self.put_entries(entries).await?;
        }
        Ok(())
    }

    /// Puts any detail on the bus, valid or not.
    pub async fn put_raw(&self, source: &str, detail_type: &str, detail: &str) -> Result<()> {
        self.put_entries(vec![self.entry(source, detail_type, detail)])
            .await
    }

    fn entry(&self, source: &str, detail_type: &str, detail: &str) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.stack.bus)
            .source(source)
            .detail_type(detail_type)
            .detail(detail)
            .build()
    }

    async fn put_entries(&self, entries: Vec<PutEventsRequestEntry>) -> Result<()> {
        let out = self
            .events
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .context("PutEvents failed")?;
        if out.failed_entry_count() > 0 {
            let failed = out.entries().iter().find(|e| e.error_code().is_some());
            bail!(
                "PutEvents refused {} event(s): {} {}",
                out.failed_entry_count(),
                failed.and_then(|e| e.error_code()).unwrap_or("?"),
                failed.and_then(|e| e.error_message()).unwrap_or("")
            );
        }
        Ok(())
    }

    /// Sets the stock of `sku` to `quantity` (what `orderflow seed` does).
    pub async fn set_stock(&self, sku: &Sku, quantity: u64) -> Result<()> {
        self.dynamodb
            .put_item()
            .table_name(&self.stack.inventory.table)
            .item(PK, AttributeValue::S(inventory::stock_key(sku)))
            .item(COUNTER_ATTRIBUTE, AttributeValue::N(quantity.to_string()))
            .send()
            .await
            .with_context(|| format!("could not seed stock of {sku}"))?;
        Ok(())
    }

    /// The stock of `sku`, if it was ever seeded.
    pub async fn stock(&self, sku: &Sku) -> Result<Option<i64>> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.stack.inventory.table)
            .key(PK, AttributeValue::S(inventory::stock_key(sku)))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("could not read stock of {sku}"))?;
        match item.item().and_then(|i| i.get(COUNTER_ATTRIBUTE)) {
            Some(AttributeValue::N(n)) => Ok(Some(n.parse()?)),
            Some(other) => bail!("stock of {sku} is not a number: {other:?}"),
            None => Ok(None),
        }
    }

    /// One function's state for `order` (its JSON), if it has any.
    pub async fn state(
        &self,
        service: &ServiceResources,
        order: &OrderId,
    ) -> Result<Option<serde_json::Value>> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&service.table)
            .key(PK, AttributeValue::S(order_key(order.as_str())))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("could not read {}'s state of {order}", service.name))?;
        match item.item().and_then(|i| i.get(STATE_ATTRIBUTE)) {
            Some(AttributeValue::S(json)) => Ok(Some(serde_json::from_str(json)?)),
            Some(other) => bail!(
                "{}'s state of {order} is not a string: {other:?}",
                service.name
            ),
            None => Ok(None),
        }
    }

    /// What the payment provider's ledger holds for `order`'s
    /// authorization, if one was ever asked for.
    pub async fn hold(&self, order: &OrderId) -> Result<Option<payment::Hold>> {
        let id = payment::ledger::authorization_id(&payment::gateway::authorize_key(order))?;
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.stack.provider_ledger)
            .key("pk", AttributeValue::S(id.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await
            .with_context(|| format!("could not read the provider's ledger for {order}"))?;
        item.item()
            .map(payment::ledger::hold_from_item)
            .transpose()
            .map_err(|e| anyhow!("the ledger's item for {order}: {e}"))
    }

    /// Checks the provider's ledger against how `order` (whose total is
    /// `total_minor`) ended: shipped means its whole total captured once;
    /// declined means a decline or nothing asked; out of stock means
    /// voided or nothing asked. Never an open hold.
    pub async fn check_ledger(
        &self,
        order: &OrderId,
        outcome: Outcome,
        total_minor: u64,
    ) -> Result<Option<payment::Hold>> {
        use payment::HoldStatus;
        let hold = self.hold(order).await?;
        let status = hold.as_ref().map(|h| h.status);
        let fits = match outcome {
            Outcome::Shipped => {
                status == Some(HoldStatus::Captured)
                    && hold.as_ref().map(|h| h.amount_minor.0) == Some(total_minor)
            }
            Outcome::Declined => {
                matches!(
                    status,
                    None | Some(HoldStatus::Declined(_) | HoldStatus::Voided)
                )
            }
            Outcome::OutOfStock => matches!(status, None | Some(HoldStatus::Voided)),
            Outcome::Pending => false,
        };
        ensure!(
            fits,
            "order {order} ended {outcome} but the provider's ledger holds {hold:?}"
        );
        Ok(hold)
    }

    /// The label at `key` in the label bucket, if it exists.
    pub async fn label(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let got = self
            .s3
            .get_object()
            .bucket(&self.stack.label_bucket)
            .key(key)
            .send()
            .await;
        match got {
            Ok(object) => Ok(Some(object.body.collect().await?.into_bytes().to_vec())),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(e).context("GetObject (label) failed"),
        }
    }

    /// Fails if any of `orders` is in any function's DLQ.
    pub async fn none_dead_lettered(&self, orders: &[OrderSpec]) -> Result<()> {
        let ours: HashSet<&str> = orders.iter().map(|o| o.order_id().as_str()).collect();
        for service in self.stack.services() {
            let letters = self.dead_letters(service).await?;
            let stray = letters
                .iter()
                .filter(|l| l.order_id().is_some_and(|o| ours.contains(o.as_str())))
                .count();
            ensure!(
                stray == 0,
                "{stray} of these orders in the {} DLQ",
                service.name
            );
        }
        Ok(())
    }

    /// Every message now in `service`'s dead-letter queue, left in place.
    pub async fn dead_letters(&self, service: &ServiceResources) -> Result<Vec<DeadLetter>> {
        peek(&self.sqs, &service.dlq_url)
            .await
            .with_context(|| format!("could not read the {} DLQ", service.name))
    }

    /// Waits until `service`'s DLQ holds a message about `order`.
    pub async fn wait_dead_letter(
        &self,
        service: &ServiceResources,
        order: &str,
        timeout: Duration,
    ) -> Result<DeadLetter> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let letters = self.dead_letters(service).await?;
            if let Some(letter) = letters
                .into_iter()
                .find(|l| l.order_id().as_deref() == Some(order))
            {
                return Ok(letter);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "no dead letter about {order} in the {} DLQ within {timeout:?}",
                    service.name
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// How `order` has ended so far, from its events: every end is an
    /// event on the bus.
    pub async fn outcome(&self, order: &OrderId) -> Result<Outcome> {
        Ok(Outcome::of(&self.audit().of(order)))
    }

    /// Waits until `order` settles, or fails after `timeout`.
    pub async fn settle(&self, order: &OrderId, timeout: Duration) -> Result<Outcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let count = self.audit().len();
            let outcome = self.outcome(order).await?;
            if outcome != Outcome::Pending {
                return Ok(outcome);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                let kinds: Vec<String> = self
                    .audit()
                    .of(order)
                    .into_iter()
                    .map(|s| s.detail_type)
                    .collect();
                bail!("order {order} did not settle within {timeout:?}; its events: {kinds:?}");
            }
            self.audit()
                .changed(count, (deadline - now).min(Duration::from_secs(1)))
                .await;
        }
    }
}

/// The SDK configuration for the local cloud at `endpoint`, with its test
/// credentials.
pub async fn local_config(endpoint: &str) -> Result<SdkConfig> {
    let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "local");
    Ok(tools_loader()?
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(credentials)
        .load()
        .await)
}

/// The SDK configuration loader of the project's tools: the functions'
/// HTTPS client (rustls on ring), trusting the system's roots as the SDK's
/// default client would.
pub fn tools_loader() -> Result<aws_config::ConfigLoader> {
    Ok(orderflow_runtime::aws::loader(
        orderflow_runtime::aws::Trust::Native,
    )?)
}

/// The most messages a peek reads.
const PEEK_LIMIT: usize = 1000;

/// Every message now in the queue at `url` (up to [`PEEK_LIMIT`]), left in
/// place.
///
/// A receive with a zero visibility timeout leaves a message visible, so
/// the next receive returns the same first ten again: a queue of more than
/// ten could never be read to the end. So each message read is hidden for
/// a while, the queue is read until a long poll finds nothing, and then
/// every message read is made visible again at once. Meanwhile another
/// reader of the queue (a redrive, a second peek) does not see them.
pub(crate) async fn peek(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<DeadLetter>> {
    let mut found: Vec<DeadLetter> = Vec::new();
    let mut handles: Vec<String> = Vec::new();
    let read = read_all(sqs, url, &mut found, &mut handles).await;
    let released = release(sqs, url, &handles).await;
    read?;
    released?;
    found.sort_by_key(|l| l.sent_at);
    Ok(found)
}

async fn read_all(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    found: &mut Vec<DeadLetter>,
    handles: &mut Vec<String>,
) -> Result<()> {
    while found.len() < PEEK_LIMIT {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .with_context(|| format!("ReceiveMessage on {url} failed"))?;
        let before = found.len();
        for m in out.messages() {
            if let Some(handle) = m.receipt_handle() {
                handles.push(handle.to_owned());
            }
            let id = m.message_id().unwrap_or_default();
            if found.iter().any(|f| f.message_id == id) {
                continue;
            }
            let attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.string_value()?.to_owned())))
                        .collect()
                })
                .unwrap_or_default();
            let sent_at = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                .and_then(|ms| ms.parse().ok())
                .and_then(DateTime::from_timestamp_millis);
            found.push(DeadLetter {
                message_id: id.to_owned(),
                sent_at,
                body: m.body().unwrap_or_default().to_owned(),
                attributes,
            });
        }
        // Nothing, or only messages seen already (hidden for 10 s, a long
        // read may meet its first messages again): the end.
        if found.len() == before {
            return Ok(());
        }
    }
    Ok(())
}

/// Makes the messages behind `handles` visible again.
pub(crate) async fn release(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    handles: &[String],
) -> Result<()> {
    let now: Vec<RetryLater> = handles
        .iter()
        .map(|handle| RetryLater {
            receipt_handle: handle.clone(),
            delay: Duration::ZERO,
        })
        .collect();
    change_visibility(sqs, url, &now).await.with_context(|| {
        format!("could not make the messages of {url} visible again; they reappear within 10 s")
    })
}
