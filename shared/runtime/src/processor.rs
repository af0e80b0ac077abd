//! One event, idempotently: load, decide, commit the effect together with
//! the outbox, then publish. Two requests to the store per event.
//!
//! 1. **Load**, in one read, the event's idempotency record, the order's
//!    record and any counters.
//!    - A completed idempotency record means a duplicate delivery: its
//!      stored outcome is re-published with the same event ids and nothing
//!      is applied again. This also covers a crash or a failed publish after
//!      commit. If its fingerprint differs, the id was reused for another
//!      event (of any order): that goes to the DLQ as `event_id_reused`.
//!    - The order's record lists every event applied to the order, and
//!      never expires: an event found there (its idempotency record long
//!      gone, say a redrive on day 13) has its stored outcome re-published
//!      and nothing applied. A second opening event (`OrderPlaced`) under a
//!      new id and with other contents is a reused order id:
//!      `order_id_reused`, naming both events.
//! 2. **Decide**: the [`Service`] turns the event into a [`Decision`]. Before
//!    an external call whose effect a later decision could otherwise miss,
//!    it writes ahead ([`Ahead::write`]): the order's record says what
//!    is being attempted before it is attempted.
//! 3. **Commit** the new state, the counter changes, the applied event and
//!    the completed event record holding the outbox, in one transaction,
//!    conditioned on the order's version and on no record of the event
//!    being completed yet. On a conflict, wait a jittered moment and go
//!    back to 1.
//! 4. **Publish** the outbox.
//!
//! Nothing is claimed first. Two deliveries of one event at once (SQS
//! delivers at least once) both decide; the order's version lets one
//! commit, and the other, loading again, finds the event applied and
//! re-publishes its outcome. A service's effects are idempotent already,
//! since a delivery may crash after an effect and before its commit: the
//! write-ahead and the effect's own idempotency key make the second call
//! learn what the first did.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use chrono::Utc;
use orderflow_contracts::{Event, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::contract::Contract;
use crate::error::{RecordError, Transient};
use crate::publish::{EventPublisher, MAX_BYTES_PER_CALL, entry_size};
use crate::store::{
    Applied, Commit, CommitError, Completed, CounterChange, Fingerprint, Opening, OrderRecord,
    OutboxEntry, StateStore, Ticket,
};

/// What a function supplies: the events it reads and writes, which of them
/// it consumes, the state it keeps per subject (an order), and how it
/// decides.
pub trait Service: Send + Sync {
    /// The function's state for one subject ([`Contract::subject`]).
    type State: Serialize + DeserializeOwned + Default + Send + Sync;

    /// The events it reads and writes: orderflow's [`Message`], or a
    /// contract of another domain.
    type Contract: Contract;

    /// The function's name (`payment`, `inventory`, `shipping`): its logs,
    /// metrics and dead letters carry it.
    const FUNCTION: &'static str;

    /// Whether the function consumes events of this kind.
    fn consumes(&self, kind: KindOf<Self>) -> bool;

    /// The counters the decision needs to read (inventory's stock).
    fn counters(&self, _message: &Self::Contract) -> Vec<String> {
        Vec::new()
    }

    /// The counters memory mode's store starts with, as `(key, value)`:
    /// the function's own seed data, which it reads at cold start (inventory
    /// its stock file). By default none.
    fn memory_counters(&self) -> Vec<(String, i64)> {
        Vec::new()
    }

    /// Decides what `input.message` does to `input.state`. The pure rules
    /// live in each function's `decide`; this may also call the function's
    /// own ports (the payment gateway, the label store).
    fn handle(
        &self,
        input: Input<'_, Self::State, Self::Contract>,
    ) -> impl Future<Output = Result<Decision<Self::State, EventOf<Self>>, RecordError>> + Send;
}

/// The kinds of event of a service's contract.
pub type KindOf<S> = <<S as Service>::Contract as Contract>::Kind;

/// The events a service emits.
pub type EventOf<S> = <<S as Service>::Contract as Contract>::Event;

/// What a decision is made from: orderflow's [`Message`] unless the
/// service has another contract.
#[derive(Debug)]
pub struct Input<'a, S, M = Message> {
    /// The event.
    pub message: &'a M,
    /// The subject's current state (the default if it has none yet).
    pub state: S,
    /// The counters asked for by [`Service::counters`], in order.
    pub counters: Vec<Option<i64>>,
    /// Where to write the subject's state ahead of an external call.
    pub ahead: Ahead<'a>,
}

/// Writes an order's state ahead of an external call: see [`Ahead::write`].
pub struct Ahead<'a>(&'a dyn WriteAhead);

impl std::fmt::Debug for Ahead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ahead")
    }
}

impl Ahead<'_> {
    /// Writes `state` as the order's state now, before an external call
    /// whose effect must not be lost: a provider's authorization, say. If
    /// this delivery then crashes, times out or loses a write conflict,
    /// whoever decides next reads `state` and knows the call may have
    /// happened, so it makes the call again under the same idempotency key
    /// (learning what the first one did) instead of deciding as if it never
    /// happened.
    ///
    /// A conflict here (the order changed since it was read) makes the
    /// runtime decide again from the new state, like a conflict at commit.
    pub async fn write<S: Serialize>(&self, state: &S) -> Result<(), RecordError> {
        let json = serde_json::to_string(state).map_err(|e| {
            RecordError::rejected("rejected", format!("state does not serialize: {e}"))
        })?;
        self.0.write(json).await
    }
}

/// Where [`Ahead::write`] writes.
trait WriteAhead: Send + Sync {
    fn write(
        &self,
        state: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), RecordError>> + Send + '_>>;
}

/// What a function's rules make of an event, the one return type of every
/// function's `decide(state, message, counters)`: a [`Decision`] to apply
/// now, an effect outside the order's state to carry out first (a provider
/// call, a label to store), whose outcome the rules then settle into
/// another plan, or a refusal. Which effects there are is the function's
/// own type `E`: [`NoEffect`] for a function that has none.
/// The events emitted are orderflow's [`Event`]s unless the service has
/// another contract (`Ev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan<S, E = NoEffect, Ev = Event> {
    /// Apply this decision.
    Apply(Decision<S, Ev>),
    /// Carry out this effect first.
    Effect(E),
    /// The rules refuse the event: it goes to the DLQ with the reason.
    Refuse(Refusal),
}

/// The effect of a function that has none: no value of it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoEffect {}

/// Why the rules refuse an event: no retry can change the answer, but an
/// operator can (say, by loading missing data and redriving the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error kind its dead letter carries, such as `unknown_sku`.
    pub kind: &'static str,
    /// What is wrong and how to fix it. Double-quoted values are redacted
    /// from dead letters and logs, so name what an operator needs unquoted.
    pub message: String,
}

impl From<Refusal> for RecordError {
    fn from(refusal: Refusal) -> Self {
        RecordError::rejected(refusal.kind, refusal.message)
    }
}

impl<S, E, Ev> Plan<S, E, Ev> {
    /// Applies `state` unchanged or changed, emitting nothing.
    pub fn unchanged(state: S) -> Self {
        Self::Apply(Decision::unchanged(state))
    }

    /// Applies `state` and publishes `emit`.
    pub fn emit(state: S, emit: Vec<Ev>) -> Self {
        Self::Apply(Decision::emit(state, emit))
    }

    /// Carries out each effect with `effect`, which settles its outcome into
    /// the next plan, until there is a decision to apply or a refusal.
    pub async fn carry_out<F, Fut>(self, mut effect: F) -> Result<Decision<S, Ev>, RecordError>
    where
        F: FnMut(E) -> Fut,
        Fut: Future<Output = Result<Self, RecordError>>,
    {
        let mut plan = self;
        loop {
            plan = match plan {
                Self::Apply(decision) => return Ok(decision),
                Self::Refuse(refusal) => return Err(refusal.into()),
                Self::Effect(e) => effect(e).await?,
            };
        }
    }
}

impl<S, Ev> Plan<S, NoEffect, Ev> {
    /// The decision of a function without effects, or its refusal.
    pub fn into_decision(self) -> Result<Decision<S, Ev>, RecordError> {
        match self {
            Self::Apply(decision) => Ok(decision),
            Self::Refuse(refusal) => Err(refusal.into()),
            Self::Effect(never) => match never {},
        }
    }
}

/// What an event does. The events emitted are orderflow's [`Event`]s
/// unless the service has another contract (`Ev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<S, Ev = Event> {
    /// The order's new state.
    pub state: S,
    /// Counter changes, applied atomically with the state.
    pub counters: Vec<CounterChange>,
    /// The events to emit.
    pub emit: Vec<Ev>,
}

impl<S, Ev> Decision<S, Ev> {
    /// The order moves to `state`; nothing is emitted or counted.
    pub fn unchanged(state: S) -> Self {
        Self {
            state,
            counters: Vec::new(),
            emit: Vec::new(),
        }
    }

    /// The order moves to `state` and `emit` is published.
    pub fn emit(state: S, emit: Vec<Ev>) -> Self {
        Self {
            state,
            counters: Vec::new(),
            emit,
        }
    }

    /// The same decision, also applying `counters` with the state.
    pub fn counting(self, counters: Vec<CounterChange>) -> Self {
        Self { counters, ..self }
    }
}

/// How a processed event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Applied for the first time; this many events were published.
    Applied {
        /// Events published.
        published: usize,
    },
    /// Seen before: the stored outcome was re-published.
    Duplicate {
        /// Events re-published.
        republished: usize,
    },
}

/// Runs events through a [`Service`] with a store and a publisher.
#[derive(Debug)]
pub struct Processor<S, St, P> {
    service: S,
    store: St,
    publisher: P,
    ttl_secs: i64,
}

impl<S: Service, St: StateStore, P: EventPublisher> Processor<S, St, P> {
    /// A processor whose idempotency records live `ttl_secs`.
    pub fn new(service: S, store: St, publisher: P, ttl_secs: i64) -> Self {
        Self {
            service,
            store,
            publisher,
            ttl_secs,
        }
    }

    /// The service.
    pub fn service(&self) -> &S {
        &self.service
    }

    /// The store.
    pub fn store(&self) -> &St {
        &self.store
    }

    /// The publisher.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Processes one message: applies it once, or re-publishes what it left
    /// if it was applied before.
    pub async fn process(&self, message: &S::Contract) -> Result<Processed, RecordError> {
        if !self.service.consumes(message.kind()) {
            return Err(RecordError::Unexpected {
                function: S::FUNCTION,
                kind: message.detail_type(),
            });
        }
        let (fingerprint, opening) = fingerprints(message)?;
        let ticket = Ticket {
            event_id: message.event_id(),
            order_id: message.subject().to_owned(),
            detail_type: message.detail_type(),
            fingerprint,
            expires_at: Utc::now().timestamp() + self.ttl_secs,
        };
        let done = self
            .decide_and_commit_retrying(message, &ticket, opening.as_ref())
            .await?;
        // Committed: from here on a failure is retried as a duplicate, which
        // re-publishes this same outbox.
        let (Done::Committed(outbox) | Done::AlreadyApplied(outbox)) = &done;
        self.publisher.publish(outbox).await?;
        Ok(match done {
            Done::Committed(outbox) => Processed::Applied {
                published: outbox.len(),
            },
            Done::AlreadyApplied(outbox) => Processed::Duplicate {
                republished: outbox.len(),
            },
        })
    }

    /// Decides and commits, deciding again on a write conflict: two records
    /// of one order in one batch (shipping's two positives, say) conflict on
    /// the order's version, and many orders on one sku conflict on its
    /// counter. Each new attempt waits a random moment, up to twice as long
    /// as the one before, so that contenders spread out instead of
    /// colliding again in step. Conflicts that persist become transient
    /// errors, retried by SQS.
    async fn decide_and_commit_retrying(
        &self,
        message: &S::Contract,
        ticket: &Ticket,
        opening: Option<&Opening>,
    ) -> Result<Done, RecordError> {
        let mut attempt = 1;
        loop {
            match self.decide_and_commit(message, ticket, opening).await {
                Ok(done) => return Ok(done),
                Err(Attempt::Conflict(what)) if attempt < CONFLICT_ATTEMPTS => {
                    let pause = conflict_pause(attempt);
                    tracing::info!(
                        order_id = message.subject(),
                        event_id = %message.event_id(),
                        attempt,
                        conflict = %what,
                        pause_ms = pause.as_millis() as u64,
                        "write conflict; deciding again"
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(Attempt::Conflict(what)) => {
                    return Err(Transient::new(format!(
                        "write conflict after {attempt} attempts, will retry: {what}"
                    ))
                    .into());
                }
                Err(Attempt::Failed(err)) => return Err(err),
            }
        }
    }

    /// One attempt: decides `message` from the order's record as loaded now
    /// and commits the outcome, unless the event's own record or the
    /// order's shows it applied before.
    async fn decide_and_commit(
        &self,
        message: &S::Contract,
        ticket: &Ticket,
        opening: Option<&Opening>,
    ) -> Result<Done, Attempt> {
        let counters = self.service.counters(message);
        let snapshot = self
            .store
            .load(ticket.event_id, message.subject(), &counters)
            .await?;
        if let Some(done) = snapshot.event {
            return Ok(Done::AlreadyApplied(completed_before(done, ticket)?));
        }
        let record = snapshot.order.unwrap_or_default();
        if let Some(outbox) = applied_before(&record, ticket)? {
            return Ok(Done::AlreadyApplied(outbox));
        }
        refuse_reopening(message, opening, &record)?;
        let state = stored_state(&record, message.subject())?;
        let (record, decision) = self
            .handle_writing_ahead(message, opening, record, state, snapshot.counters)
            .await?;
        let outbox = message.outbox(decision.emit);
        refuse_oversized(&outbox)?;
        let commit = commit_of(
            ticket,
            opening,
            record,
            &decision.state,
            decision.counters,
            outbox,
        )?;
        match self.store.commit(&commit).await {
            Ok(()) => Ok(Done::Committed(commit.outbox)),
            Err(CommitError::Conflict(what)) => Err(Attempt::Conflict(what)),
            Err(CommitError::Transient(t)) => Err(Attempt::Failed(t.into())),
        }
    }

    /// Lets the service decide, free to write ahead to the order's record;
    /// returns the record as the last write-ahead left it.
    async fn handle_writing_ahead(
        &self,
        message: &S::Contract,
        opening: Option<&Opening>,
        record: OrderRecord,
        state: S::State,
        counters: Vec<Option<i64>>,
    ) -> Result<(OrderRecord, Decision<S::State, EventOf<S>>), Attempt> {
        let ahead = RecordAhead {
            store: &self.store,
            order_id: message.subject(),
            opening,
            record: Mutex::new(record),
            conflict: Mutex::new(None),
        };
        let handled = self
            .service
            .handle(Input {
                message,
                state,
                counters,
                ahead: Ahead(&ahead),
            })
            .await;
        let RecordAhead {
            record, conflict, ..
        } = ahead;
        let record = record.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(what) = conflict.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(Attempt::Conflict(what));
        }
        Ok((record, handled?))
    }
}

/// The outbox the ticket's event left, as its idempotency record holds it;
/// an error if its id was completed with other contents (of any order).
fn completed_before(done: Completed, ticket: &Ticket) -> Result<Vec<OutboxEntry>, RecordError> {
    if let Some(first) = &done.first {
        same_event(
            ticket,
            &first.detail_type,
            &first.order_id,
            &first.fingerprint,
        )?;
    }
    Ok(done.outbox)
}

/// The outbox stored for the ticket's event if the order's record shows it
/// applied already; an error if its id was applied with other contents.
fn applied_before(
    record: &OrderRecord,
    ticket: &Ticket,
) -> Result<Option<Vec<OutboxEntry>>, RecordError> {
    let Some(applied) = record.applied.get(&ticket.event_id) else {
        return Ok(None);
    };
    same_event(
        ticket,
        ticket.detail_type,
        &ticket.order_id,
        &applied.fingerprint,
    )?;
    Ok(Some(applied.outbox.clone()))
}

/// Refuses an opening event when another event with other contents opened
/// the order already: the order id was reused.
fn refuse_reopening(
    message: &impl Contract,
    opening: Option<&Opening>,
    record: &OrderRecord,
) -> Result<(), RecordError> {
    if let (Some(ours), Some(first)) = (opening, &record.opened_by)
        && first.event_id != ours.event_id
        && first.fingerprint != ours.fingerprint
    {
        return Err(RecordError::rejected(
            "order_id_reused",
            format!(
                "order {} was opened by event {} and event {} opens it again with \
                     other contents; an order id names one order",
                message.subject(),
                first.event_id,
                ours.event_id
            ),
        ));
    }
    Ok(())
}

/// The order's state as its record holds it; the default if it has none yet.
fn stored_state<T: DeserializeOwned + Default>(
    record: &OrderRecord,
    order_id: &str,
) -> Result<T, Transient> {
    if record.version == 0 {
        return Ok(T::default());
    }
    serde_json::from_str(&record.state).map_err(|e| {
        Transient::caused_by(format!("stored state of order {order_id} is unreadable"), e)
    })
}

/// Refuses an outbox holding an entry too big for EventBridge to take.
fn refuse_oversized(outbox: &[OutboxEntry]) -> Result<(), RecordError> {
    if let Some(big) = outbox.iter().find(|e| entry_size(e) > MAX_BYTES_PER_CALL) {
        return Err(RecordError::rejected(
            "rejected",
            format!(
                "outgoing {} is {} bytes; EventBridge takes at most {MAX_BYTES_PER_CALL}",
                big.detail_type,
                entry_size(big)
            ),
        ));
    }
    Ok(())
}

/// The commit of a decision: `record` moved to `state`, with the ticket's
/// event recorded as applied along with its outbox.
fn commit_of(
    ticket: &Ticket,
    opening: Option<&Opening>,
    mut record: OrderRecord,
    state: &impl Serialize,
    counters: Vec<CounterChange>,
    outbox: Vec<OutboxEntry>,
) -> Result<Commit, RecordError> {
    let state = serde_json::to_string(state)
        .map_err(|e| RecordError::rejected("rejected", format!("state does not serialize: {e}")))?;
    let expected_version = record.advance(state, opening);
    record.applied.insert(
        ticket.event_id,
        Applied {
            fingerprint: ticket.fingerprint.clone(),
            outbox: outbox.clone(),
        },
    );
    Ok(Commit {
        ticket: ticket.clone(),
        expected_version,
        order: record,
        counters,
        outbox,
    })
}

/// How many times one delivery decides before a conflict goes back to SQS.
const CONFLICT_ATTEMPTS: u32 = 5;

/// The most the first pause after a conflict lasts; each later one may
/// last twice as long as the one before.
const CONFLICT_PAUSE: Duration = Duration::from_millis(25);

/// A random pause in `[0, CONFLICT_PAUSE × 2^(attempt-1))`: full jitter,
/// as AWS's architecture blog recommends for contended writes.
fn conflict_pause(attempt: u32) -> Duration {
    let ceiling = CONFLICT_PAUSE.as_micros() as u64 * (1 << attempt.saturating_sub(1).min(8));
    // RandomState is seeded per process and per instance: randomness enough
    // for jitter, with no dependency.
    let random = RandomState::new().hash_one(attempt);
    Duration::from_micros(random % ceiling.max(1))
}

/// What a committed attempt came to.
enum Done {
    /// Decided and committed: publish this.
    Committed(Vec<OutboxEntry>),
    /// Applied before, as the event's record or the order's shows:
    /// re-publish this.
    AlreadyApplied(Vec<OutboxEntry>),
}

/// Why one decide-and-commit attempt did not commit.
enum Attempt {
    /// Something changed since the snapshot: worth deciding again.
    Conflict(String),
    /// Anything else.
    Failed(RecordError),
}

impl<E: Into<RecordError>> From<E> for Attempt {
    fn from(err: E) -> Self {
        Self::Failed(err.into())
    }
}

/// The event's fingerprint, and the opening it makes if its kind opens an
/// order: the data's own fingerprint, as a retry of the same order under a
/// new event id has other metadata and the same data. Both come from one
/// encoding of the event.
pub(crate) fn fingerprints(
    message: &impl Contract,
) -> Result<(Fingerprint, Option<Opening>), RecordError> {
    if !message.opens_subject() {
        let whole = Fingerprint::of_message(message).map_err(unencodable)?;
        return Ok((whole, None));
    }
    let (whole, data) = Fingerprint::of_message_and_data(message).map_err(unencodable)?;
    let opening = Opening {
        event_id: message.event_id(),
        fingerprint: data,
    };
    Ok((whole, Some(opening)))
}

/// A contract type that would not encode for its fingerprint: a bug in a
/// `Serialize` impl, rejected with its reason rather than fingerprinted
/// as something else.
pub(crate) fn unencodable(err: postcard::Error) -> RecordError {
    RecordError::rejected(
        "rejected",
        format!("the event does not encode canonically: {err}"),
    )
}

/// Nothing, if the ticket's event is the one first seen under its id (as
/// `first_kind` of `first_order`, fingerprinted `first`); otherwise the
/// dead-letter reason for an event id reused with other contents.
fn same_event(
    ticket: &Ticket,
    first_kind: &str,
    first_order: &str,
    first: &Fingerprint,
) -> Result<(), RecordError> {
    if *first == ticket.fingerprint {
        return Ok(());
    }
    Err(RecordError::rejected(
        "event_id_reused",
        format!(
            "event {} was first {first_kind} of order {first_order} (fingerprint {first}), \
             and now arrives as {} of order {} with other contents (fingerprint {}); \
             an event id names one event",
            ticket.event_id, ticket.detail_type, ticket.order_id, ticket.fingerprint
        ),
    ))
}

/// The write-ahead of one decision: the order's record as last written.
struct RecordAhead<'s, St> {
    store: &'s St,
    order_id: &'s str,
    opening: Option<&'s Opening>,
    record: Mutex<OrderRecord>,
    conflict: Mutex<Option<String>>,
}

impl<St: StateStore> WriteAhead for RecordAhead<'_, St> {
    fn write(
        &self,
        state: String,
    ) -> Pin<Box<dyn Future<Output = Result<(), RecordError>> + Send + '_>> {
        Box::pin(async move {
            let mut next = self
                .record
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let expected = next.advance(state, self.opening);
            match self.store.write_ahead(self.order_id, expected, &next).await {
                Ok(()) => {
                    *self.record.lock().unwrap_or_else(|p| p.into_inner()) = next;
                    Ok(())
                }
                Err(CommitError::Conflict(what)) => {
                    let err = Transient::new(format!("write-ahead conflict: {what}"));
                    *self.conflict.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
                    Err(err.into())
                }
                Err(CommitError::Transient(t)) => Err(t.into()),
            }
        })
    }
}
