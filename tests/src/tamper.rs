//! What only the tests do to a stack: events no orders service would send,
//! deliveries the bus would not make, and idempotency records changed behind
//! a function's back. [`Tamper`] adds them to [`Flow`], which the operator
//! tools share and which has no business doing any of this.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use orderflow::order::new_event_id;
use orderflow::{Flow, ServiceResources};
use orderflow_contracts::{EventId, Message};
use orderflow_runtime::store::{PK, STATUS_IN_PROGRESS, event_key};

/// The detail of an OrderPlaced that decodes as JSON but not as the event
/// (`items` is a string): each consumer dead-letters it as `malformed`.
pub fn malformed_detail(order: &str) -> String {
    serde_json::json!({
        "event_id": new_event_id().to_string(),
        "order_id": order,
        "causation_id": null,
        "occurred_at": "2026-11-24T09:30:00Z",
        "schema_version": 1,
        "producer": "orderflow.payment",
        "data": { "items": "not an authorization" },
    })
    .to_string()
}

/// Test-only changes to a deployed stack.
// Only the test binaries call these, each body on the harness's runtime
// with `block_on`: no caller needs the futures to be `Send`.
#[allow(async_fn_in_trait)]
pub trait Tamper {
    /// Puts an OrderPlaced for `order` that decodes as JSON but not as the
    /// event ([`malformed_detail`]): each consumer dead-letters it.
    async fn put_malformed_order(&self, order: &str) -> Result<()>;

    /// Sends `message` straight into one function's queue, in the shape the
    /// bus would deliver it, to choose which function sees an event first.
    async fn send_to_queue(&self, service: &ServiceResources, message: &Message) -> Result<()>;

    /// Sends `body` as it is into one function's queue; returns the SQS
    /// message id, which its dead letter names as
    /// `orderflow.original_message_id`. SQS's own refusal is the error.
    async fn send_raw(&self, service: &ServiceResources, body: &str) -> Result<String>;

    /// Deletes `event`'s idempotency record from `service`'s table, as
    /// DynamoDB's TTL does once the record expires.
    async fn expire_event_record(&self, service: &ServiceResources, event: EventId) -> Result<()>;

    /// Writes an idempotency record of `event` in progress into `service`'s
    /// table, with a lease that runs `lease` from now, as earlier builds
    /// claimed an event before deciding it: a table they used may still
    /// hold some.
    async fn leave_in_progress(
        &self,
        service: &ServiceResources,
        event: EventId,
        lease: Duration,
    ) -> Result<()>;
}

impl Tamper for Flow {
    async fn put_malformed_order(&self, order: &str) -> Result<()> {
        self.put_raw("orderflow.orders", "OrderPlaced", &malformed_detail(order))
            .await
    }

    async fn send_to_queue(&self, service: &ServiceResources, message: &Message) -> Result<()> {
        let kind = message.kind();
        let envelope = serde_json::json!({
            "version": "0",
            "id": new_event_id().to_string(),
            "detail-type": kind.detail_type(),
            "source": kind.source(),
            "account": "000000000000",
            "time": message.meta.occurred_at.to_rfc3339(),
            "region": "us-east-1",
            "resources": [],
            "detail": serde_json::from_str::<serde_json::Value>(&message.detail_json())?,
        });
        self.sqs()
            .send_message()
            .queue_url(&service.queue_url)
            .message_body(envelope.to_string())
            .send()
            .await
            .with_context(|| format!("SendMessage to the {} queue failed", service.name))?;
        Ok(())
    }

    async fn send_raw(&self, service: &ServiceResources, body: &str) -> Result<String> {
        let sent = self
            .sqs()
            .send_message()
            .queue_url(&service.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "{}",
                    aws_smithy_types::error::display::DisplayErrorContext(e)
                )
            })
            .with_context(|| format!("SendMessage to the {} queue failed", service.name))?;
        sent.message_id()
            .map(str::to_owned)
            .context("SendMessage answered without a message id")
    }

    async fn expire_event_record(&self, service: &ServiceResources, event: EventId) -> Result<()> {
        self.dynamodb()
            .delete_item()
            .table_name(&service.table)
            .key(PK, AttributeValue::S(event_key(event)))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .with_context(|| format!("could not delete {}'s record of {event}", service.name))?;
        Ok(())
    }

    async fn leave_in_progress(
        &self,
        service: &ServiceResources,
        event: EventId,
        lease: Duration,
    ) -> Result<()> {
        let until = Utc::now().timestamp() + i64::try_from(lease.as_secs())?;
        self.dynamodb()
            .put_item()
            .table_name(&service.table)
            .item(PK, AttributeValue::S(event_key(event)))
            .item("status", AttributeValue::S(STATUS_IN_PROGRESS.to_owned()))
            .item("lease_until", AttributeValue::N(until.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .with_context(|| {
                format!(
                    "could not leave {event} in progress in {}'s table",
                    service.name
                )
            })?;
        Ok(())
    }
}
