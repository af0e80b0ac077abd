//! What the runtime needs to know of the events a service reads and
//! writes: the [`Contract`]. orderflow's own events ([`Message`], from
//! `orderflow-contracts`) are one contract; a service of another domain
//! brings its own.

use orderflow_contracts::{Event, EventKind, Message, Metadata};
use serde::Serialize;

/// Event ids, the errors of reading an event, and the encoder of
/// [`Contract::canonical`]'s usual implementation: what a contract of
/// another domain needs, without depending on `orderflow-contracts` or
/// postcard itself.
pub use orderflow_contracts::{ContractError, EventId};
pub use postcard;

use crate::store::OutboxEntry;

/// A decoded, validated event of some domain, and how the events a service
/// emits in answer to it are written.
///
/// Everything the runtime keeps per event is keyed by what this says: the
/// idempotency record by [`event_id`](Contract::event_id), the state by
/// [`subject`](Contract::subject) (orderflow's order id), the stored
/// outcome by a fingerprint of [`canonical`](Contract::canonical).
pub trait Contract: Sized + Send + Sync + 'static {
    /// The kinds of event there are: what a service says it consumes.
    type Kind: Copy + Eq + std::fmt::Debug + Send + Sync + 'static;
    /// An event a service emits, before it has ids and metadata.
    type Event: Clone + std::fmt::Debug + PartialEq + Send + Sync;

    /// Reads one event from its EventBridge envelope: the body of an SQS
    /// record that a bus rule delivered, or a direct invocation. An error
    /// sends the record to the DLQ with its reason.
    fn from_bus_json(json: &str) -> Result<Self, ContractError>;

    /// The event's kind.
    fn kind(&self) -> Self::Kind;

    /// The kind's EventBridge `detail-type`, which logs, dead letters and
    /// the idempotency record name it by.
    fn detail_type(&self) -> &'static str;

    /// The event's unique id.
    fn event_id(&self) -> EventId;

    /// The event that caused it, if any.
    fn causation_id(&self) -> Option<EventId>;

    /// What the event is about: the key a service's state is kept under
    /// (orderflow's order id).
    fn subject(&self) -> &str;

    /// Whether the event opens its subject (orderflow's `OrderPlaced`): a
    /// second opening event with other data under a new id means the
    /// subject's id was reused, and is refused.
    fn opens_subject(&self) -> bool {
        false
    }

    /// The event's canonical encoding, which its fingerprint is taken over:
    /// the same event must always encode the same, whatever the JSON it
    /// came in. Appends the whole event to `buffer` (as
    /// `postcard::to_extend` does) and returns it with where the event's
    /// data starts: an opening event's data alone is fingerprinted too.
    fn canonical(&self, buffer: Vec<u8>) -> Result<(Vec<u8>, usize), postcard::Error>;

    /// The outbox entries for the events `self` causes, in order. Their ids
    /// must derive from `self`'s (see [`EventId::derive`]), so that deciding
    /// again yields the same ids.
    fn outbox(&self, emit: Vec<Self::Event>) -> Vec<OutboxEntry>;
}

/// What a canonical encoding of orderflow's [`Message`] writes before the
/// data: every other field of the detail. Postcard writes a struct as its
/// fields one after the other, so these bytes followed by the data's are
/// the encoding of the whole detail.
#[derive(Serialize)]
struct CanonicalMeta<'a> {
    event_id: &'a EventId,
    order_id: &'a orderflow_contracts::OrderId,
    causation_id: &'a Option<EventId>,
    occurred_at: (i64, u32),
    schema_version: u32,
    producer: &'a str,
}

/// orderflow's events: an order's events, keyed by its order id, with
/// `OrderPlaced` opening it.
impl Contract for Message {
    type Kind = EventKind;
    type Event = Event;

    fn from_bus_json(json: &str) -> Result<Self, ContractError> {
        Message::from_bus_json(json)
    }

    fn kind(&self) -> EventKind {
        Message::kind(self)
    }

    fn detail_type(&self) -> &'static str {
        Message::kind(self).detail_type()
    }

    fn event_id(&self) -> EventId {
        self.meta.event_id
    }

    fn causation_id(&self) -> Option<EventId> {
        self.meta.causation_id
    }

    fn subject(&self) -> &str {
        self.meta.order_id.as_str()
    }

    fn opens_subject(&self) -> bool {
        Message::kind(self).opens_order()
    }

    fn canonical(&self, buffer: Vec<u8>) -> Result<(Vec<u8>, usize), postcard::Error> {
        let meta = &self.meta;
        let head = CanonicalMeta {
            event_id: &meta.event_id,
            order_id: &meta.order_id,
            causation_id: &meta.causation_id,
            occurred_at: (
                meta.occurred_at.timestamp(),
                meta.occurred_at.timestamp_subsec_nanos(),
            ),
            schema_version: meta.schema_version,
            producer: meta.producer.as_str(),
        };
        let bytes = postcard::to_extend(&head, buffer)?;
        let data = bytes.len();
        Ok((postcard::to_extend(&self.event, bytes)?, data))
    }

    fn outbox(&self, emit: Vec<Event>) -> Vec<OutboxEntry> {
        let now = chrono::Utc::now();
        emit.into_iter()
            .enumerate()
            .map(|(index, event)| {
                let kind = event.kind();
                let event_id = EventId::derive(self.meta.event_id, kind.detail_type(), index);
                let message = Message {
                    meta: Metadata {
                        event_id,
                        order_id: self.meta.order_id.clone(),
                        causation_id: Some(self.meta.event_id),
                        occurred_at: now,
                        schema_version: event.schema_version(),
                        producer: kind.producer(),
                    },
                    event,
                };
                OutboxEntry {
                    event_id,
                    source: kind.source().to_owned(),
                    detail_type: kind.detail_type().to_owned(),
                    detail: message.detail_json(),
                }
            })
            .collect()
    }
}
