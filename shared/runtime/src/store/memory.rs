//! An in-memory [`StateStore`], with the same semantics as the DynamoDB one.

use std::collections::HashMap;
use std::sync::Mutex;

use orderflow_contracts::EventId;

use super::{Commit, CommitError, Completed, FirstSeen, OrderRecord, Snapshot, StateStore};
use crate::error::Transient;

#[derive(Debug, Default)]
struct Tables {
    events: HashMap<EventId, Completed>,
    orders: HashMap<String, OrderRecord>,
    counters: HashMap<String, i64>,
}

/// A [`StateStore`] in process memory, for handler tests and local invoke.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a counter, e.g. to seed stock.
    pub fn set_counter(&self, key: &str, value: i64) {
        self.lock().counters.insert(key.to_owned(), value);
    }

    /// A counter's value.
    pub fn counter(&self, key: &str) -> Option<i64> {
        self.lock().counters.get(key).copied()
    }

    /// An order's state JSON.
    pub fn state(&self, order: &str) -> Option<String> {
        self.order(order).map(|r| r.state)
    }

    /// An order's whole record.
    pub fn order(&self, order: &str) -> Option<OrderRecord> {
        self.lock().orders.get(&super::order_key(order)).cloned()
    }

    /// Forgets every idempotency record, as DynamoDB's TTL does once they
    /// expire; order records and counters stay.
    pub fn expire_event_records(&self) {
        self.lock().events.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-written
        // (every write is a single insert), so a poisoned lock is still usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn check_version(t: &Tables, order: &str, expected: u64) -> Result<(), CommitError> {
    let version = t
        .orders
        .get(&super::order_key(order))
        .map_or(0, |r| r.version);
    if version == expected {
        Ok(())
    } else {
        Err(CommitError::Conflict(format!(
            "order {order} is at version {version}, not {expected}"
        )))
    }
}

impl StateStore for MemoryStore {
    async fn load(
        &self,
        event: EventId,
        order: &str,
        counters: &[String],
    ) -> Result<Snapshot, Transient> {
        let t = self.lock();
        Ok(Snapshot {
            event: t.events.get(&event).cloned(),
            order: t.orders.get(&super::order_key(order)).cloned(),
            counters: counters
                .iter()
                .map(|k| t.counters.get(k).copied())
                .collect(),
        })
    }

    async fn write_ahead(
        &self,
        order: &str,
        expected_version: u64,
        record: &OrderRecord,
    ) -> Result<(), CommitError> {
        let mut t = self.lock();
        check_version(&t, order, expected_version)?;
        t.orders.insert(super::order_key(order), record.clone());
        Ok(())
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        let mut t = self.lock();
        let ticket = &commit.ticket;
        check_version(&t, &ticket.order_id, commit.expected_version)?;
        if t.events.contains_key(&ticket.event_id) {
            return Err(CommitError::Conflict(format!(
                "event {} was completed by another delivery",
                ticket.event_id
            )));
        }
        for change in &commit.counters {
            let current = t.counters.get(&change.key).copied();
            if change.delta < 0 && current.is_none_or(|c| c + change.delta < 0) {
                return Err(CommitError::Conflict(format!(
                    "counter {} would go below zero",
                    change.key
                )));
            }
        }
        for change in &commit.counters {
            *t.counters.entry(change.key.clone()).or_insert(0) += change.delta;
        }
        t.orders
            .insert(super::order_key(&ticket.order_id), commit.order.clone());
        t.events.insert(
            ticket.event_id,
            Completed {
                first: Some(FirstSeen {
                    fingerprint: ticket.fingerprint.clone(),
                    order_id: ticket.order_id.to_string(),
                    detail_type: ticket.detail_type.to_owned(),
                }),
                outbox: commit.outbox.clone(),
            },
        );
        Ok(())
    }
}
