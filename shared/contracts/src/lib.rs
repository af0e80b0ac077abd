//! The typed events that orderflow's functions exchange.
//!
//! Every event travels on the EventBridge bus as the `detail` of a bus
//! envelope, and reaches a function either inside an SQS record (an
//! EventBridge → SQS rule target delivers the whole envelope as the body) or
//! as a direct EventBridge invocation. Both shapes decode to one [`Message`].
//!
//! Reading is tolerant (unknown fields are ignored) and validation is strict:
//! a missing or invalid value is a [`ContractError`] naming the field.
//!
//! This crate holds serde and schema types only: no SDK, no async runtime.
//!
//! Layout:
//! - [`ids`]: typed ids and small validated values (`OrderId`, `Sku`, …).
//! - [`money`]: integer minor units and ISO currencies.
//! - [`events`]: the event payloads, and the `kinds!` table that declares
//!   each kind once, as `Kind from producer;`: from it come [`EventKind`]
//!   (every EventBridge `source` and `detail-type`), [`Event`], and the
//!   dispatch to each payload type ([`events::PayloadVisitor`]).
//! - [`envelope`]: [`Metadata`], [`Message`], decoding and encoding.
//! - [`error`]: why an event could not be read ([`ContractError`]).
//! - [`object`]: structs read only from JSON objects, never arrays.
//! - [`time`]: timestamps, RFC 3339 read strictly.
//! - [`versions`]: each kind's `schema_version`, and the upcaster that
//!   reads an older one.
//! - [`schema`]: the JSON Schema of each event's `detail`, and
//!   [`schema::compat`], which names the changes that break a released one.

pub mod envelope;
pub mod error;
pub mod events;
pub mod ids;
pub mod money;
pub mod object;
pub mod schema;
pub mod time;
pub mod versions;

/// This crate's version: the version of the contract as a whole.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use envelope::{BusEnvelope, Detail, Message, Metadata};
pub use error::ContractError;
pub use events::{
    Address, DeclineReason, Event, EventKind, LabelLocation, LineItem, NotReservedReason,
    OrderPlaced, PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided, PickupWindow,
    ReservedLine, ShipmentScheduled, ShortLine, StockNotReserved, StockReleased, StockReserved,
    StockUnavailable,
};
pub use ids::{
    AuthorizationId, CustomerId, EventId, OrderId, PaymentToken, Producer, Quantity, Sku,
    TrackingNumber,
};
pub use money::{Currency, MinorUnits};
