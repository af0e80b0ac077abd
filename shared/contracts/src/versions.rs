//! Versions of the events, and the upcaster that reads an old one.
//!
//! Every event carries the `schema_version` it was written in. A kind's
//! versions are `1..=`[`EventKind::schema_version`], and this build reads
//! them all: an old event waits in a queue, a DLQ or the bus archive, and
//! is read again by code deployed since. `upcast` brings what was read to
//! the current shape, and [`Metadata::schema_version`] keeps the version it
//! was written in, so its fingerprint is the one it always had.
//!
//! A new version is made when a change would break the released schema
//! (`events/schemas/<Kind>.v<N>.json`, see [`crate::schema`]); the old
//! version's shape stays here, frozen, so that its schema is still
//! generated and checked.
//!
//! The versions so far:
//! - `OrderPlaced` 2 adds the required `customer_id`. Version 1 orders
//!   read with `customer_id: None`: they were placed before orders carried
//!   their customer.
//!
//! [`Metadata::schema_version`]: crate::Metadata::schema_version

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::events::{Address, Event, EventKind, LineItem, OrderPlaced};
use crate::ids::PaymentToken;
use crate::money::{Currency, MinorUnits};

#[cfg(doc)]
use crate::events::MAX_LINES;

impl EventKind {
    /// The latest `schema_version` of this kind: the one it is written in.
    pub const fn schema_version(self) -> u32 {
        match self {
            Self::OrderPlaced => 2,
            _ => 1,
        }
    }

    /// Whether this build reads `version` of this kind.
    pub const fn reads(self, version: u64) -> bool {
        version >= 1 && version <= self.schema_version() as u64
    }
}

impl Event {
    /// The `schema_version` this payload is written in: its kind's latest,
    /// but for an `OrderPlaced` without a customer, which only version 1
    /// can carry.
    pub fn schema_version(&self) -> u32 {
        match self {
            Self::OrderPlaced(order) if order.customer_id.is_none() => 1,
            other => other.kind().schema_version(),
        }
    }
}

/// Brings `event`, read from a detail of `version`, to the current shape,
/// or says what the version requires that it lacks. `field` is the path of
/// the payload. The version is one [`EventKind::reads`].
pub(crate) fn upcast(version: u64, event: Event, field: &str) -> Result<Event, ContractError> {
    match event {
        Event::OrderPlaced(mut order) => match version {
            // Version 1 had no customer: whatever a member of that name
            // holds is no part of it.
            1 => {
                order.customer_id = None;
                Ok(Event::OrderPlaced(order))
            }
            _ if order.customer_id.is_none() => Err(ContractError::Missing {
                field: format!("{field}.customer_id"),
            }),
            _ => Ok(Event::OrderPlaced(order)),
        },
        other => Ok(other),
    }
}

/// `OrderPlaced` as version 1 wrote it, before orders carried their
/// customer. The step-by-step reader reads a version 1 order as this, so
/// that a `customer_id` member of any value is ignored as any unknown
/// member was; its schema is released and must not change (its name and
/// descriptions included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
#[schemars(rename = "OrderPlaced", description = "A customer placed an order.")]
pub struct OrderPlacedV1 {
    /// The lines: at least one, at most [`MAX_LINES`], each sku once.
    pub items: Vec<LineItem>,
    /// The sum of `quantity * unit_price_minor` over the lines.
    pub total_minor: MinorUnits,
    /// The currency of every amount in the order.
    pub currency: Currency,
    /// The payment provider's token for the customer's payment method.
    pub payment_token: PaymentToken,
    /// Where to ship.
    pub shipping_address: Address,
}

crate::object::objects_only!(OrderPlacedV1);

impl From<OrderPlacedV1> for OrderPlaced {
    fn from(v1: OrderPlacedV1) -> Self {
        Self {
            items: v1.items,
            total_minor: v1.total_minor,
            currency: v1.currency,
            payment_token: v1.payment_token,
            shipping_address: v1.shipping_address,
            customer_id: None,
        }
    }
}
