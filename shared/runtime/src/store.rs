//! The state store port: idempotency records, per-order state and counters,
//! committed together.
//!
//! One table per function holds three kinds of item, keyed by `pk`:
//! - `EVENT#<event_id>`: the idempotency record, written by the commit that
//!   applies the event: `COMPLETED`, holding the outbox (the events to
//!   publish), with the event's fingerprint, order and detail-type. It
//!   expires through the `expires_at` TTL attribute. It is read with the
//!   order's record, in the same request, and answers a duplicate of any
//!   order, or an event id reused for another order.
//! - `ORDER#<order_id>`: the function's record of one order: its state,
//!   with a version for optimistic concurrency, and what every event applied
//!   to the order left (its fingerprint and outbox). It never expires, so
//!   it answers redeliveries at any age.
//! - `<counter key>`: a non-negative counter, e.g. `STOCK#<sku>`.

use std::collections::BTreeMap;
use std::future::Future;

use orderflow_contracts::EventId;

use crate::contract::Contract;
use serde::{Deserialize, Serialize};

use crate::error::Transient;

#[cfg(feature = "aws")]
mod dynamo;
mod memory;

#[cfg(feature = "aws")]
pub use dynamo::{APPLIED_ATTRIBUTE, COUNTER_ATTRIBUTE, DynamoStore, PK, STATE_ATTRIBUTE};
pub use memory::MemoryStore;

/// One event to publish, as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The event's id, for logs and tests.
    pub event_id: EventId,
    /// EventBridge `source`.
    pub source: String,
    /// EventBridge `detail-type`.
    pub detail_type: String,
    /// EventBridge `detail`, as JSON.
    pub detail: String,
}

/// A stable digest of an event's contents: the same event always has the
/// same fingerprint, so an event id that arrives with another fingerprint
/// was reused for something else.
///
/// The digest is taken over a canonical encoding of the decoded event, not
/// its JSON text, so field order and whitespace never matter: the fields
/// in declaration order, in postcard's wire format (stable since 1.0), with
/// `occurred_at` as seconds and nanoseconds. Then a 64-bit FNV-style hash
/// over 8-byte words and a final mix, fixed here rather than std's hasher,
/// whose output may change between Rust releases: stored fingerprints must
/// mean the same thing to every later build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

/// Room for a typical event's canonical encoding, so it is written without
/// growing the buffer.
const CANONICAL_CAPACITY: usize = 512;

impl Fingerprint {
    /// The fingerprint of a whole event: metadata and data. Fails only if
    /// a contract type's `Serialize` fails, which it never should: the
    /// caller rejects the record rather than guess.
    pub fn of_message<M: Contract>(message: &M) -> Result<Self, postcard::Error> {
        let (bytes, _) = message.canonical(Vec::with_capacity(CANONICAL_CAPACITY))?;
        Ok(Self::of(&bytes))
    }

    /// The fingerprint of an event's data alone (postcard's encoding of
    /// it): a retry of the same order under a new event id has other
    /// metadata and the same data.
    pub fn of_data<T: Serialize>(data: &T) -> Result<Self, postcard::Error> {
        let bytes = postcard::to_extend(data, Vec::with_capacity(CANONICAL_CAPACITY))?;
        Ok(Self::of(&bytes))
    }

    /// [`Fingerprint::of_message`] and [`Fingerprint::of_data`] at once,
    /// from one encoding.
    pub fn of_message_and_data<M: Contract>(message: &M) -> Result<(Self, Self), postcard::Error> {
        let (bytes, data) = message.canonical(Vec::with_capacity(CANONICAL_CAPACITY))?;
        Ok((Self::of(&bytes), Self::of(&bytes[data..])))
    }

    /// The fingerprint of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = 0xcbf2_9ce4_8422_2325_u64 ^ bytes.len() as u64;
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut w = [0; 8];
            w.copy_from_slice(word);
            hash = (hash ^ u64::from_le_bytes(w))
                .wrapping_mul(PRIME)
                .rotate_left(29);
        }
        for &byte in words.remainder() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
        // murmur3's fmix64: every input bit reaches every output bit.
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        hash ^= hash >> 33;
        Self(hex(hash))
    }

    /// A fingerprint as stored earlier (the DynamoDB store reads it back).
    #[cfg(feature = "aws")]
    pub(crate) fn from_stored(digest: &str) -> Self {
        Self(digest.to_owned())
    }

    /// The digest, as 16 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` as 16 lowercase hex digits, as `format!("{value:016x}")` writes it.
fn hex(value: u64) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(16);
    for shift in (0..16).rev() {
        out.push(char::from(DIGITS[((value >> (shift * 4)) & 0xf) as usize]));
    }
    out
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The event being applied, as its records name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The event.
    pub event_id: EventId,
    /// What it is about ([`Contract::subject`]): its order.
    pub order_id: String,
    /// Its detail-type.
    pub detail_type: &'static str,
    /// Its contents' fingerprint.
    pub fingerprint: Fingerprint,
    /// When its idempotency record expires (epoch seconds).
    pub expires_at: i64,
}

/// What a completed event record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The fingerprint, order and detail-type it was completed for; `None`
    /// for a record written before they were kept.
    pub first: Option<FirstSeen>,
    /// Its outcome, to re-publish.
    pub outbox: Vec<OutboxEntry>,
}

/// What an event id was first seen as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirstSeen {
    /// Its contents' fingerprint.
    pub fingerprint: Fingerprint,
    /// Its order.
    pub order_id: String,
    /// Its detail-type.
    pub detail_type: String,
}

/// What one applied event left in its order's record. Order records never
/// expire, so a redelivery or a replay at any age, long after the event's
/// idempotency record is gone, still finds this and re-publishes the same
/// outbox instead of deciding again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The event's fingerprint.
    pub fingerprint: Fingerprint,
    /// The events it caused.
    pub outbox: Vec<OutboxEntry>,
}

/// The event that opened an order (see `EventKind::opens_order`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// Its id.
    pub event_id: EventId,
    /// The fingerprint of its data (metadata excluded): a retry under a new
    /// event id has the same one.
    pub fingerprint: Fingerprint,
}

/// A function's record of one order: its state, with a version for
/// optimistic concurrency, and every event applied to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderRecord {
    /// The state, as JSON.
    pub state: String,
    /// Bumped by every write.
    pub version: u64,
    /// What each applied event left, by event id.
    pub applied: BTreeMap<EventId, Applied>,
    /// The event that opened the order, once one has.
    pub opened_by: Option<Opening>,
}

impl OrderRecord {
    /// Moves the record to `state`: bumps its version and, if nothing has
    /// opened the order yet, records `opening`. Returns the version the
    /// write must find (the one before).
    pub fn advance(&mut self, state: String, opening: Option<&Opening>) -> u64 {
        let expected = self.version;
        self.state = state;
        self.version += 1;
        if self.opened_by.is_none() {
            self.opened_by = opening.cloned();
        }
        expected
    }
}

/// An event's idempotency record, its order's record and the counters a
/// decision needs, read together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// What the event left if it was applied before, under this order or
    /// another: its idempotency record, until it expires.
    pub event: Option<Completed>,
    /// The order's record, if it has one yet.
    pub order: Option<OrderRecord>,
    /// The counters asked for, in the same order; `None` for a missing one.
    pub counters: Vec<Option<i64>>,
}

/// A change to a counter. A negative delta is conditioned on the counter
/// existing and staying at or above zero: a counter never goes negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterChange {
    /// The counter's key, e.g. `STOCK#SKU-1`.
    pub key: String,
    /// How much to add; negative to take away.
    pub delta: i64,
}

/// Everything one event changes, written atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The event being applied; no record of it may be completed yet.
    pub ticket: Ticket,
    /// The version the order's record must still have (0: no record yet).
    pub expected_version: u64,
    /// The order's new record (its version is `expected_version + 1`).
    pub order: OrderRecord,
    /// Counter changes.
    pub counters: Vec<CounterChange>,
    /// The events to publish once committed.
    pub outbox: Vec<OutboxEntry>,
}

/// Why a commit did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Something changed since the snapshot (the order's version, a counter,
    /// or the event record, completed by another delivery meanwhile).
    /// Retrying re-reads and decides again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed in a way worth retrying.
    #[error(transparent)]
    Transient(#[from] Transient),
}

/// Where a function keeps idempotency records, order records and counters.
pub trait StateStore: Send + Sync {
    /// Reads, at once, what `event` left if it completed before, `order`'s
    /// record and the counters named by `counters`.
    fn load(
        &self,
        event: EventId,
        order: &str,
        counters: &[String],
    ) -> impl Future<Output = Result<Snapshot, Transient>> + Send;

    /// Writes an order's record alone, if it is still at `expected_version`:
    /// a write-ahead, made before an external call so that whoever decides
    /// next knows the call may have happened.
    fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<(), CommitError>> + Send;

    /// Writes the order's record, the counter changes and the completed
    /// event record in one transaction, unless the order moved past
    /// `expected_version`, a counter would go below zero, or the event's
    /// record was completed meanwhile: each is a [`CommitError::Conflict`].
    fn commit(&self, commit: &Commit) -> impl Future<Output = Result<(), CommitError>> + Send;
}

/// A shared store is a store: two processors over one `Arc<MemoryStore>`
/// are two execution environments over one table, for tests of races.
impl<T: StateStore + ?Sized> StateStore for std::sync::Arc<T> {
    fn load(
        &self,
        event: EventId,
        order: &str,
        counters: &[String],
    ) -> impl Future<Output = Result<Snapshot, Transient>> + Send {
        (**self).load(event, order, counters)
    }

    fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> impl Future<Output = Result<(), CommitError>> + Send {
        (**self).write_ahead(order, expected_version, record)
    }

    fn commit(&self, commit: &Commit) -> impl Future<Output = Result<(), CommitError>> + Send {
        (**self).commit(commit)
    }
}

/// The `status` that earlier builds gave an idempotency record while an
/// invocation worked on the event (a claim, with a lease until
/// `lease_until`), so a table may still hold some. No build writes it now,
/// and none honours the lease: a commit completes the record over it. Two
/// deliveries of one event at once are told apart by the order's version.
pub const STATUS_IN_PROGRESS: &str = "IN_PROGRESS";
/// The `status` of an idempotency record once its event is applied.
pub const STATUS_COMPLETED: &str = "COMPLETED";

/// The key of an event's idempotency record.
pub fn event_key(event: EventId) -> String {
    format!("EVENT#{event}")
}

/// The key of a function's state for one order.
pub fn order_key(order: &str) -> String {
    format!("ORDER#{order}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lambda::{Invocation, read_invocation};
    use orderflow_contracts::{Event, Message, OrderId};

    /// The whole detail as one struct: what the fingerprints were first
    /// defined over, which the split encoding must reproduce byte for byte.
    #[derive(Serialize)]
    struct Whole<'a> {
        event_id: &'a EventId,
        order_id: &'a OrderId,
        causation_id: &'a Option<EventId>,
        occurred_at: (i64, u32),
        schema_version: u32,
        producer: &'a str,
        data: &'a Event,
    }

    fn sample(name: &str) -> Message {
        let payload = crate::testing::read_sample(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        let Ok(Invocation::Sqs { records, .. }) = read_invocation(&payload) else {
            panic!("{name} is not an SQS payload");
        };
        Message::from_bus_json(&records[0].body).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn the_split_encoding_fingerprints_as_the_whole_detail_did() {
        for name in [
            "payment/order-placed.sqs.json",
            "shipping/stock-reserved.sqs.json",
            "payment/stock-unavailable.sqs.json",
        ] {
            let message = sample(name);
            let meta = &message.meta;
            let whole = postcard::to_allocvec(&Whole {
                event_id: &meta.event_id,
                order_id: &meta.order_id,
                causation_id: &meta.causation_id,
                occurred_at: (
                    meta.occurred_at.timestamp(),
                    meta.occurred_at.timestamp_subsec_nanos(),
                ),
                schema_version: meta.schema_version,
                producer: meta.producer.as_str(),
                data: &message.event,
            })
            .unwrap();
            let data = postcard::to_allocvec(&message.event).unwrap();
            let (of_message, of_data) = Fingerprint::of_message_and_data(&message).unwrap();
            assert_eq!(of_message, Fingerprint::of(&whole), "{name}");
            assert_eq!(of_data, Fingerprint::of(&data), "{name}");
            assert_eq!(Fingerprint::of_message(&message).ok(), Some(of_message));
            assert_eq!(Fingerprint::of_data(&message.event).ok(), Some(of_data));
        }
    }

    #[test]
    fn stored_fingerprints_keep_their_meaning() {
        // Fingerprints are stored for good (in every order's record): a
        // build that digests the same event differently would take a
        // redelivery for a reused event id. These are the values the
        // project has always computed for the sample.
        let message = sample("payment/order-placed.sqs.json");
        let (of_message, of_data) = Fingerprint::of_message_and_data(&message).unwrap();
        assert_eq!(of_message.as_str(), "f88701f1eab04f62");
        assert_eq!(Fingerprint::of(b"").as_str(), "efd01f60ba992926");
        assert_eq!(of_data.as_str(), "a885c56f5ad2e2a1");
    }

    #[test]
    fn hex_writes_as_format_does() {
        for value in [
            0,
            1,
            0xf,
            0x10,
            0xdead_beef,
            u64::MAX,
            0x0123_4567_89ab_cdef,
        ] {
            assert_eq!(hex(value), format!("{value:016x}"));
        }
    }
}
