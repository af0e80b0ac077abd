//! Orders to place: built from lines, or read from a sample in `events/`.

use anyhow::{Context, Result, bail};
use chrono::Utc;
use orderflow_contracts::{
    Address, Currency, CustomerId, Event, EventId, EventKind, LineItem, Message, Metadata,
    MinorUnits, OrderId, OrderPlaced, PaymentToken, Quantity, Sku,
};
use uuid::Uuid;

/// A fresh, random event id.
pub fn new_event_id() -> EventId {
    EventId::from_uuid(Uuid::new_v4())
}

/// A fresh order id, `ord-<label>-<8 hex digits>`.
pub fn new_order_id(label: &str) -> Result<OrderId> {
    OrderId::new(format!("ord-{label}-{}", suffix())).map_err(anyhow::Error::msg)
}

/// A sku unique to this run: `SKU-<LABEL>-<8 HEX DIGITS>`.
pub fn new_sku(label: &str) -> Result<Sku> {
    let sku = format!("SKU-{label}-{}", suffix()).to_ascii_uppercase();
    Sku::new(sku).map_err(anyhow::Error::msg)
}

fn suffix() -> String {
    Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// An OrderPlaced under construction.
#[derive(Debug, Clone)]
pub struct OrderSpec {
    order_id: OrderId,
    token: String,
    lines: Vec<(Sku, u32, u64)>,
    customer_id: Option<String>,
}

impl OrderSpec {
    /// An order with no lines yet, paid with `token`, by a customer of its
    /// own (`cus-<8 hex digits>`): an OrderPlaced of the latest version.
    pub fn new(order_id: OrderId, token: &str) -> Self {
        Self {
            order_id,
            token: token.to_owned(),
            lines: Vec::new(),
            customer_id: Some(format!("cus-{}", suffix())),
        }
    }

    /// The order placed by `customer_id`.
    pub fn customer(mut self, customer_id: &str) -> Self {
        self.customer_id = Some(customer_id.to_owned());
        self
    }

    /// The order without a customer, as an OrderPlaced of `schema_version`
    /// 1, before orders carried one, is written.
    pub fn version_1(mut self) -> Self {
        self.customer_id = None;
        self
    }

    /// Adds `quantity` of `sku` at `unit_price_minor` each.
    pub fn line(mut self, sku: &Sku, quantity: u32, unit_price_minor: u64) -> Self {
        self.lines.push((sku.clone(), quantity, unit_price_minor));
        self
    }

    /// The order's id.
    pub fn order_id(&self) -> &OrderId {
        &self.order_id
    }

    /// The order's total, in minor units.
    pub fn total_minor(&self) -> u64 {
        self.lines.iter().map(|(_, q, p)| u64::from(*q) * p).sum()
    }

    /// The OrderPlaced event, with a fresh event id.
    pub fn message(&self) -> Result<Message> {
        let items = self
            .lines
            .iter()
            .map(|(sku, quantity, price)| {
                Ok(LineItem {
                    sku: sku.clone(),
                    quantity: Quantity::new(*quantity).map_err(anyhow::Error::msg)?,
                    unit_price_minor: MinorUnits(*price),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let order = OrderPlaced {
            items,
            total_minor: MinorUnits(self.total_minor()),
            currency: Currency::new("EUR").map_err(anyhow::Error::msg)?,
            payment_token: PaymentToken::new(self.token.clone()).map_err(anyhow::Error::msg)?,
            shipping_address: Address {
                name: "Ada Lovelace".to_owned(),
                line1: "12 St James's Square".to_owned(),
                line2: None,
                city: "London".to_owned(),
                postal_code: "SW1Y 4JH".to_owned(),
                country: "GB".to_owned(),
            },
            customer_id: match &self.customer_id {
                Some(id) => Some(CustomerId::new(id.clone()).map_err(anyhow::Error::msg)?),
                None => None,
            },
        };
        placed(self.order_id.clone(), Event::OrderPlaced(order))
    }
}

/// Wraps an OrderPlaced payload in fresh metadata, in the version it is
/// written in, and validates it.
fn placed(order_id: OrderId, event: Event) -> Result<Message> {
    let message = Message {
        meta: Metadata {
            event_id: new_event_id(),
            order_id,
            causation_id: None,
            occurred_at: Utc::now(),
            schema_version: event.schema_version(),
            producer: EventKind::OrderPlaced.producer(),
        },
        event,
    };
    message.event.validate("detail.data")?;
    Ok(message)
}

/// The OrderPlaced in a sample file (either shape). With `fresh`, it gets a
/// new event id and an order id with a new suffix, so placing it again
/// places a new order; without, it is the same event again (a duplicate).
pub fn from_sample(json: &str, fresh: bool) -> Result<Message> {
    let body = match serde_json::from_str::<serde_json::Value>(json) {
        // An SQS event: the envelope is the first record's body.
        Ok(value) if value.get("Records").is_some() => value["Records"][0]["body"]
            .as_str()
            .context("the sample's first record has no body")?
            .to_owned(),
        Ok(_) => json.to_owned(),
        Err(e) => bail!("the sample is not JSON: {e}"),
    };
    let message = Message::from_bus_json(&body).context("the sample is not a valid event")?;
    if message.kind() != EventKind::OrderPlaced {
        bail!("the sample is a {}, not an OrderPlaced", message.kind());
    }
    if !fresh {
        return Ok(message);
    }
    let order_id = OrderId::new(format!("{}-{}", message.meta.order_id, suffix()))
        .map_err(anyhow::Error::msg)?;
    placed(order_id, message.event)
}
