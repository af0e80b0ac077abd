//! The event payloads, and the `kinds!` table: every kind that orderflow
//! uses, declared once as `Kind from producer;` (its payload type, its
//! `detail-type` and its `source`), from which [`EventKind`] and [`Event`]
//! are written.

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::ids::{
    AuthorizationId, CustomerId, PaymentToken, Producer, Quantity, Sku, TrackingNumber,
};
use crate::money::{Currency, MinorUnits};

/// The most lines one order may have.
///
/// Inventory reserves every line in one DynamoDB `TransactWriteItems`, which
/// takes at most 100 items; the order's own state and the idempotency record
/// take two more, and the rest is headroom.
pub const MAX_LINES: usize = 50;

/// Declares every kind once, as `Kind from producer;`: the payload type of
/// the same name, emitted under the source `orderflow.<producer>`. From
/// that one table come [`EventKind`] (with `ALL`, `detail_type`, `source`
/// and [`EventKind::payload`], through which decoding and the schemas reach
/// each kind's type), [`Event`] (with `kind` and `Serialize`), and each
/// payload's [`Payload`] impl and object-only serde.
macro_rules! kinds {
    ($($(#[doc = $doc:literal])* $kind:ident from $producer:ident;)*) => {
        /// Every kind of orderflow event. Non-exhaustive: a service matches
        /// the kinds it consumes, and a new kind is added without touching it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventKind {
            $($(#[doc = $doc])* $kind,)*
        }

        impl EventKind {
            /// Every kind, in a fixed order.
            pub const ALL: [EventKind; [$(stringify!($kind)),*].len()] = [$(Self::$kind),*];

            /// The EventBridge `detail-type`.
            pub const fn detail_type(self) -> &'static str {
                match self {
                    $(Self::$kind => stringify!($kind),)*
                }
            }

            /// The EventBridge `source` that emits this kind.
            pub const fn source(self) -> &'static str {
                match self {
                    $(Self::$kind => concat!("orderflow.", stringify!($producer)),)*
                }
            }

            /// Runs `visitor` on this kind's payload type.
            pub fn payload<V: PayloadVisitor>(self, visitor: V) -> V::Output {
                match self {
                    $(Self::$kind => visitor.visit::<$kind>(),)*
                }
            }
        }

        /// A typed orderflow event payload. Non-exhaustive, as [`EventKind`].
        #[derive(Debug, Clone, PartialEq, Eq)]
        #[non_exhaustive]
        pub enum Event {
            $(#[doc = concat!("See [`", stringify!($kind), "`].")] $kind($kind),)*
        }

        impl Event {
            /// Which kind of event this is.
            pub fn kind(&self) -> EventKind {
                match self {
                    $(Self::$kind(_) => EventKind::$kind,)*
                }
            }
        }

        impl Serialize for Event {
            /// An event serializes as its bare payload; the kind travels
            /// beside it as the `detail-type`.
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $(Self::$kind(e) => e.serialize(serializer),)*
                }
            }
        }

        $(
            impl Payload for $kind {
                fn into_event(self) -> Event {
                    Event::$kind(self)
                }
            }
        )*

        crate::object::objects_only!($($kind),*);
    };
}

kinds! {
    /// A customer placed an order.
    OrderPlaced from orders;
    /// Payment for an order was authorized.
    PaymentAuthorized from payment;
    /// Payment for an order was declined.
    PaymentDeclined from payment;
    /// An authorized payment was voided.
    PaymentVoided from payment;
    /// An authorized payment was captured, once its order shipped.
    PaymentCaptured from payment;
    /// Stock for every line of an order was reserved.
    StockReserved from inventory;
    /// Some lines of an order could not be reserved.
    StockUnavailable from inventory;
    /// A reservation was released.
    StockReleased from inventory;
    /// An order was not reserved: its payment was declined before it
    /// reached inventory.
    StockNotReserved from inventory;
    /// A shipment was scheduled.
    ShipmentScheduled from shipping;
}

/// A kind's payload type: what [`EventKind::payload`] hands a
/// [`PayloadVisitor`].
pub trait Payload: Serialize + for<'de> Deserialize<'de> + JsonSchema + Sized + 'static {
    /// The payload as an [`Event`].
    fn into_event(self) -> Event;
}

/// Work done on a kind's payload type, which only the kind names at run
/// time: [`EventKind::payload`] calls [`PayloadVisitor::visit`] with it.
pub trait PayloadVisitor {
    /// What the work gives.
    type Output;

    /// Does the work on payload type `P`.
    fn visit<P: Payload>(self) -> Self::Output;
}

impl EventKind {
    /// Whether an event of this kind opens an order: an order id is opened
    /// once, so a second opening event with the same order id and other
    /// contents is a reused id, not a retry.
    pub const fn opens_order(self) -> bool {
        matches!(self, Self::OrderPlaced)
    }

    /// The producer name of this kind's source.
    pub fn producer(self) -> Producer {
        Producer::from_trusted(self.source())
    }

    /// The kind whose `detail-type` is `detail_type`.
    pub fn from_detail_type(detail_type: &str) -> Result<Self, ContractError> {
        Self::ALL
            .into_iter()
            .find(|k| k.detail_type() == detail_type)
            .ok_or_else(|| ContractError::UnknownDetailType(detail_type.to_owned()))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.detail_type())
    }
}

impl Event {
    /// Checks the rules that a type alone cannot express. `field` is the
    /// path of the payload, used to name the offending field.
    pub fn validate(&self, field: &str) -> Result<(), ContractError> {
        match self {
            Self::OrderPlaced(e) => e.validate(field),
            Self::StockReserved(e) => {
                lines_not_empty(&e.lines, field, "lines")?;
                e.ship_to.validate(field, "ship_to")
            }
            Self::StockReleased(e) => lines_not_empty(&e.lines, field, "lines"),
            Self::StockUnavailable(e) => lines_not_empty(&e.short, field, "short"),
            Self::ShipmentScheduled(e) if e.pickup.to <= e.pickup.from => Err(
                ContractError::invalid(format!("{field}.pickup.to"), "must be after pickup.from"),
            ),
            _ => Ok(()),
        }
    }
}

/// A field's path, `parent.member`, written out only when displayed.
struct Path<'a>(&'a str, &'a str);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

fn lines_not_empty<T>(lines: &[T], field: &str, name: &str) -> Result<(), ContractError> {
    if lines.is_empty() {
        return Err(ContractError::invalid(
            format!("{field}.{name}"),
            "must not be empty",
        ));
    }
    Ok(())
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct LineItem {
    /// What is ordered.
    pub sku: Sku,
    /// How many units.
    pub quantity: Quantity,
    /// The price of one unit, in minor units of the order's currency.
    pub unit_price_minor: MinorUnits,
}

/// Where an order ships to. `Debug` redacts it: an address never reaches a
/// log.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct Address {
    /// The recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// Anything more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    #[schemars(regex(pattern = "^[A-Z]{2}$"))]
    pub country: String,
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(<redacted>)")
    }
}

impl Address {
    /// Checks the address found at `{parent}.{member}`; the path is
    /// written out only for an error.
    fn validate(&self, parent: &str, member: &str) -> Result<(), ContractError> {
        let field = Path(parent, member);
        let required = [
            ("name", &self.name),
            ("line1", &self.line1),
            ("city", &self.city),
            ("postal_code", &self.postal_code),
        ];
        for (name, value) in required {
            if value.trim().is_empty() {
                return Err(ContractError::invalid(
                    format!("{field}.{name}"),
                    "must not be empty",
                ));
            }
        }
        let all = required
            .into_iter()
            .chain(self.line2.iter().map(|v| ("line2", v)));
        for (name, value) in all {
            if value.len() > 100 {
                return Err(ContractError::invalid(
                    format!("{field}.{name}"),
                    "is longer than 100 bytes",
                ));
            }
        }
        let country = self.country.as_bytes();
        if country.len() != 2 || !country.iter().all(u8::is_ascii_uppercase) {
            return Err(ContractError::invalid(
                format!("{field}.country"),
                "must be an ISO 3166-1 alpha-2 code such as DE",
            ));
        }
        Ok(())
    }
}

/// A customer placed an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct OrderPlaced {
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
    /// The customer who placed it (from `schema_version` 2).
    // `None` for an order written as version 1, which `crate::versions`
    // reads into this shape. Last, and not written when `None`, so that a
    // version 1 order encodes (and fingerprints) as it always did.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "CustomerId")]
    pub customer_id: Option<CustomerId>,
}

impl OrderPlaced {
    /// Checks the order's own rules; `field` is the path of the payload.
    pub fn validate(&self, field: &str) -> Result<(), ContractError> {
        if self.items.is_empty() {
            return Err(ContractError::invalid(
                format!("{field}.items"),
                "must not be empty",
            ));
        }
        if self.items.len() > MAX_LINES {
            return Err(ContractError::invalid(
                format!("{field}.items"),
                format!(
                    "has {} lines; at most {MAX_LINES} are allowed",
                    self.items.len()
                ),
            ));
        }
        let mut sum = MinorUnits(0);
        for (i, item) in self.items.iter().enumerate() {
            if self.items[..i]
                .iter()
                .any(|earlier| earlier.sku == item.sku)
            {
                return Err(ContractError::invalid(
                    format!("{field}.items[{i}].sku"),
                    format!("sku {} appears on more than one line", item.sku),
                ));
            }
            sum = item
                .unit_price_minor
                .checked_mul(item.quantity.get())
                .and_then(|line| sum.checked_add(line))
                .ok_or_else(|| {
                    ContractError::invalid(format!("{field}.items[{i}]"), "line total overflows")
                })?;
        }
        if sum != self.total_minor {
            return Err(ContractError::invalid(
                format!("{field}.total_minor"),
                format!(
                    "is {} but the lines add up to {}",
                    self.total_minor.0, sum.0
                ),
            ));
        }
        self.shipping_address.validate(field, "shipping_address")
    }
}

/// Payment for an order was authorized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct PaymentAuthorized {
    /// The provider's id for the authorization.
    pub authorization_id: AuthorizationId,
    /// The authorized amount.
    pub amount_minor: MinorUnits,
    /// Its currency.
    pub currency: Currency,
}

/// Why a payment was declined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// The provider declined the payment method.
    CardDeclined,
    /// The amount is over the configured limit.
    OverLimit,
    /// Stock was reported unavailable before the order could be charged.
    StockUnavailable,
}

/// Payment for an order was declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct PaymentDeclined {
    /// Why.
    pub reason: DeclineReason,
}

/// An authorized payment was voided, because stock was unavailable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct PaymentVoided {
    /// The voided authorization.
    pub authorization_id: AuthorizationId,
    /// Its amount.
    pub amount_minor: MinorUnits,
    /// Its currency.
    pub currency: Currency,
}

/// An authorized payment was captured: its order shipped, and the hold
/// became a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct PaymentCaptured {
    /// The captured authorization.
    pub authorization_id: AuthorizationId,
    /// The amount captured: the whole authorization.
    pub amount_minor: MinorUnits,
    /// Its currency.
    pub currency: Currency,
}

/// A reserved (or released) quantity of one sku.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct ReservedLine {
    /// The sku.
    pub sku: Sku,
    /// How many units.
    pub quantity: Quantity,
}

/// Stock for every line of an order was reserved.
///
/// It carries the shipping address, because the reserved goods are what
/// ships: shipping prints its label from this event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct StockReserved {
    /// The reserved lines.
    pub lines: Vec<ReservedLine>,
    /// Where they ship to.
    pub ship_to: Address,
}

/// A line that could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct ShortLine {
    /// The sku that is short.
    pub sku: Sku,
    /// How many units the order asked for.
    pub requested: u32,
    /// How many were in stock.
    pub available: u64,
}

/// Some lines of an order could not be reserved; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct StockUnavailable {
    /// The skus that are short.
    pub short: Vec<ShortLine>,
}

/// A reservation was released, because payment was declined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct StockReleased {
    /// The released lines.
    pub lines: Vec<ReservedLine>,
}

/// An order that inventory will never reserve: its payment was declined
/// before the order reached inventory. Inventory's part of the order ends
/// here, visibly, as it does with `StockUnavailable` or `StockReleased`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct StockNotReserved {
    /// Why.
    pub reason: NotReservedReason,
}

/// Why an order was not reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotReservedReason {
    /// The payment was declined first.
    PaymentDeclined,
}

/// Where a shipping label is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct LabelLocation {
    /// The S3 bucket.
    pub bucket: String,
    /// The object key.
    pub key: String,
    /// The document's media type, e.g. `application/pdf`.
    pub content_type: String,
}

/// When the carrier picks a parcel up (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct PickupWindow {
    /// Start of the window.
    #[serde(
        deserialize_with = "crate::time::deserialize",
        serialize_with = "crate::time::serialize"
    )]
    pub from: DateTime<Utc>,
    /// End of the window.
    #[serde(
        deserialize_with = "crate::time::deserialize",
        serialize_with = "crate::time::serialize"
    )]
    pub to: DateTime<Utc>,
}

/// A shipment was scheduled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self")]
pub struct ShipmentScheduled {
    /// The carrier's tracking number.
    pub tracking_number: TrackingNumber,
    /// The printable label.
    pub label: LabelLocation,
    /// The pickup window.
    pub pickup: PickupWindow,
}

// The payloads of the kinds are object-only through `kinds!`.
crate::object::objects_only!(
    LineItem,
    Address,
    ReservedLine,
    ShortLine,
    LabelLocation,
    PickupWindow,
);
