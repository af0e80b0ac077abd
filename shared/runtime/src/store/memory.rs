//! An in-memory [`StateStore`], with the same semantics as the DynamoDB one.

use std::collections::HashMap;
use std::sync::Mutex;

use orderflow_contracts::{EventId, OrderId};

use super::{Claim, Commit, CommitError, OutboxEntry, Snapshot, StateStore};
use crate::error::Transient;

#[derive(Debug, Clone)]
enum Record {
    InProgress { lease_until: i64 },
    Completed(Vec<OutboxEntry>),
}

#[derive(Debug, Default)]
struct Tables {
    events: HashMap<EventId, Record>,
    orders: HashMap<String, (String, u64)>,
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
    pub fn state(&self, order: &OrderId) -> Option<String> {
        self.lock()
            .orders
            .get(&super::order_key(order))
            .map(|(s, _)| s.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-written
        // (every write is a single insert), so a poisoned lock is still usable.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StateStore for MemoryStore {
    async fn claim(
        &self,
        event: EventId,
        lease_until: i64,
        now: i64,
        _expires_at: i64,
    ) -> Result<Claim, Transient> {
        let mut t = self.lock();
        match t.events.get(&event) {
            Some(Record::Completed(outbox)) => Ok(Claim::Completed(outbox.clone())),
            Some(Record::InProgress { lease_until: until }) if *until >= now => Ok(Claim::Busy),
            _ => {
                t.events.insert(event, Record::InProgress { lease_until });
                Ok(Claim::Acquired)
            }
        }
    }

    async fn release(&self, event: EventId) -> Result<(), Transient> {
        let mut t = self.lock();
        if matches!(t.events.get(&event), Some(Record::InProgress { .. })) {
            t.events.remove(&event);
        }
        Ok(())
    }

    async fn load(&self, order: &OrderId, counters: &[String]) -> Result<Snapshot, Transient> {
        let t = self.lock();
        Ok(Snapshot {
            state: t.orders.get(&super::order_key(order)).cloned(),
            counters: counters
                .iter()
                .map(|k| t.counters.get(k).copied())
                .collect(),
        })
    }

    async fn commit(&self, commit: &Commit) -> Result<(), CommitError> {
        let mut t = self.lock();
        let key = super::order_key(&commit.order_id);
        let version = t.orders.get(&key).map_or(0, |(_, v)| *v);
        if version != commit.expected_version {
            return Err(CommitError::Conflict(format!(
                "order {} is at version {version}, not {}",
                commit.order_id, commit.expected_version
            )));
        }
        if !matches!(
            t.events.get(&commit.event_id),
            Some(Record::InProgress { .. })
        ) {
            return Err(CommitError::Conflict(format!(
                "event {} is no longer in progress",
                commit.event_id
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
        t.orders.insert(key, (commit.state.clone(), version + 1));
        t.events
            .insert(commit.event_id, Record::Completed(commit.outbox.clone()));
        Ok(())
    }
}
