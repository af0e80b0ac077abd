//! One event, idempotently: claim it, decide, commit the effect together
//! with the outbox, then publish.
//!
//! 1. **Claim** the event id. A completed record means a duplicate delivery:
//!    its stored outcome is re-published with the same event ids and
//!    nothing is applied again. This also covers a crash or a failed publish
//!    after commit. A record in progress under an unexpired lease means a
//!    concurrent duplicate: retry later.
//! 2. **Load** the order's state and any counters, and let the [`Service`]
//!    decide.
//! 3. **Commit** the new state, the counter changes and the completed event
//!    record holding the outbox, in one transaction.
//! 4. **Publish** the outbox.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::SystemTime;

use chrono::Utc;
use orderflow_contracts::{Event, EventId, EventKind, Message, Metadata, SCHEMA_VERSION};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{RecordError, Transient};
use crate::publish::{EventPublisher, MAX_BYTES_PER_CALL, entry_size};
use crate::store::{Claim, Commit, CommitError, CounterChange, OutboxEntry, StateStore};

/// What a function supplies: the events it consumes, the state it keeps per
/// order, and how it decides.
pub trait Service: Send + Sync {
    /// The function's state for one order.
    type State: Serialize + DeserializeOwned + Default + Send + Sync;

    /// The function's name: `payment`, `inventory` or `shipping`.
    const FUNCTION: &'static str;

    /// Whether the function consumes events of this kind.
    fn consumes(&self, kind: EventKind) -> bool;

    /// The counters the decision needs to read (inventory's stock).
    fn counters(&self, _message: &Message) -> Vec<String> {
        Vec::new()
    }

    /// The counters that `stock` (quantities by sku, from
    /// [`crate::config::MEMORY_STOCK`]) seeds in memory mode, as
    /// `(key, value)`; or why `stock` is unusable, e.g. a malformed sku.
    ///
    /// By default nothing: a function that keeps no stock is handed the
    /// same file as inventory, since one `cargo lambda watch` serves all
    /// three with one environment.
    fn seed_stock(&self, _stock: &BTreeMap<String, i64>) -> Result<Vec<(String, i64)>, String> {
        Ok(Vec::new())
    }

    /// Decides what `input.message` does to `input.state`. The pure rules
    /// live in each function's `decide`; this may also call the function's
    /// own ports (the payment gateway, the label store).
    fn handle(
        &self,
        input: Input<'_, Self::State>,
    ) -> impl Future<Output = Result<Decision<Self::State>, RecordError>> + Send;
}

/// What a decision is made from.
#[derive(Debug)]
pub struct Input<'a, S> {
    /// The event.
    pub message: &'a Message,
    /// The order's current state (the default if it has none yet).
    pub state: S,
    /// The counters asked for by [`Service::counters`], in order.
    pub counters: Vec<Option<i64>>,
}

/// What an event does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<S> {
    /// The order's new state.
    pub state: S,
    /// Counter changes, applied atomically with the state.
    pub counters: Vec<CounterChange>,
    /// The events to emit.
    pub emit: Vec<Event>,
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

/// How long a claim is held when the invocation's deadline is unknown.
const DEFAULT_LEASE_SECS: i64 = 60;

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

    /// Processes one message. `deadline` is the invocation's deadline: a
    /// claim lasts until then, so a concurrent duplicate is held off exactly
    /// as long as this invocation can still finish.
    pub async fn process(
        &self,
        message: &Message,
        deadline: Option<SystemTime>,
    ) -> Result<Processed, RecordError> {
        let kind = message.kind();
        if !self.service.consumes(kind) {
            return Err(RecordError::Unexpected {
                function: S::FUNCTION,
                kind,
            });
        }
        let now = Utc::now().timestamp();
        let lease_until = deadline
            .and_then(|d| d.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(now + DEFAULT_LEASE_SECS, |d| d.as_secs() as i64 + 1);
        let expires_at = now + self.ttl_secs;
        let event_id = message.meta.event_id;

        match self
            .store
            .claim(event_id, lease_until, now, expires_at)
            .await?
        {
            Claim::Completed(outbox) => {
                self.publisher.publish(&outbox).await?;
                return Ok(Processed::Duplicate {
                    republished: outbox.len(),
                });
            }
            Claim::Busy => {
                return Err(Transient::new(format!(
                    "event {event_id} is being processed by another invocation"
                ))
                .into());
            }
            Claim::Acquired => {}
        }

        let outbox = match self.decide_and_commit_retrying(message, expires_at).await {
            Ok(outbox) => outbox,
            Err(err) => {
                // Give the claim up so the retry need not wait for the lease.
                if let Err(release) = self.store.release(event_id).await {
                    tracing::warn!(
                        order_id = message.meta.order_id.as_str(),
                        event_id = %event_id,
                        error = %crate::error::describe(&release),
                        "could not release the claim; it will expire"
                    );
                }
                return Err(err);
            }
        };
        // Committed: from here on a failure is retried as a duplicate, which
        // re-publishes this same outbox.
        self.publisher.publish(&outbox).await?;
        Ok(Processed::Applied {
            published: outbox.len(),
        })
    }

    /// Decides and commits, deciding again on a write conflict: two records
    /// of one order in one batch (shipping's two positives, say) conflict on
    /// the order's version, and re-reading settles it at once instead of a
    /// visibility timeout later. Conflicts that persist become transient
    /// errors, retried by SQS.
    async fn decide_and_commit_retrying(
        &self,
        message: &Message,
        expires_at: i64,
    ) -> Result<Vec<OutboxEntry>, RecordError> {
        let mut attempt = 1;
        loop {
            match self.decide_and_commit(message, expires_at).await {
                Ok(outbox) => return Ok(outbox),
                Err(Attempt::Conflict(what)) if attempt < CONFLICT_ATTEMPTS => {
                    tracing::info!(
                        order_id = message.meta.order_id.as_str(),
                        event_id = %message.meta.event_id,
                        attempt,
                        conflict = %what,
                        "write conflict; deciding again"
                    );
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

    async fn decide_and_commit(
        &self,
        message: &Message,
        expires_at: i64,
    ) -> Result<Vec<OutboxEntry>, Attempt> {
        let counters = self.service.counters(message);
        let snapshot = self.store.load(&message.meta.order_id, &counters).await?;
        let (state, version) = match &snapshot.state {
            Some((json, version)) => (
                serde_json::from_str(json).map_err(|e| {
                    Transient::caused_by(
                        format!(
                            "stored state of order {} is unreadable",
                            message.meta.order_id
                        ),
                        e,
                    )
                })?,
                *version,
            ),
            None => (S::State::default(), 0),
        };
        let decision = self
            .service
            .handle(Input {
                message,
                state,
                counters: snapshot.counters,
            })
            .await?;
        let outbox = outbox_for(message, decision.emit);
        if let Some(big) = outbox.iter().find(|e| entry_size(e) > MAX_BYTES_PER_CALL) {
            return Err(RecordError::rejected(
                "rejected",
                format!(
                    "outgoing {} is {} bytes; EventBridge takes at most {MAX_BYTES_PER_CALL}",
                    big.detail_type,
                    entry_size(big)
                ),
            )
            .into());
        }
        let state = serde_json::to_string(&decision.state).map_err(|e| {
            RecordError::rejected("rejected", format!("state does not serialize: {e}"))
        })?;
        let commit = Commit {
            event_id: message.meta.event_id,
            order_id: message.meta.order_id.clone(),
            expected_version: version,
            state,
            counters: decision.counters,
            outbox,
            expires_at,
        };
        match self.store.commit(&commit).await {
            Ok(()) => Ok(commit.outbox),
            Err(CommitError::Conflict(what)) => Err(Attempt::Conflict(what)),
            Err(CommitError::Transient(t)) => Err(Attempt::Failed(t.into())),
        }
    }
}

/// How many times one delivery decides before a conflict goes back to SQS.
const CONFLICT_ATTEMPTS: u32 = 3;

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

/// The outbox entries for the events a message causes. Their ids derive
/// from the cause's id, so a re-decision or a re-publish yields the same ids.
pub fn outbox_for(cause: &Message, emit: Vec<Event>) -> Vec<OutboxEntry> {
    let now = Utc::now();
    emit.into_iter()
        .enumerate()
        .map(|(index, event)| {
            let kind = event.kind();
            let event_id = EventId::derive(
                cause.meta.event_id,
                &format!("{}#{index}", kind.detail_type()),
            );
            let message = Message {
                meta: Metadata {
                    event_id,
                    order_id: cause.meta.order_id.clone(),
                    causation_id: Some(cause.meta.event_id),
                    occurred_at: now,
                    schema_version: SCHEMA_VERSION,
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
