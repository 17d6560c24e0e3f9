//! An in-memory [`Store`]: the fake that API and lifecycle tests run on.
//!
//! It must be indistinguishable from [`crate::SqliteStore`] through the trait (the shared test
//! suite runs against both): the same errors in the same precedence, times truncated to the
//! millisecond, the same orders and page tokens. One mutex makes every operation atomic.

use crate::common::{self, Cursor};
use crate::{Changes, ListQuery, Page, SandboxRecord, Store, StoreError, UsageRow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use stasis_types::{can_transition, SandboxState};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

#[derive(Default)]
struct Inner {
    live: BTreeMap<String, SandboxRecord>,
    history: Vec<UsageRow>,
}

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No operation panics half-way through a change, so a poisoned lock still guards
        // consistent data (the panic was a failed assertion elsewhere in a test).
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The record as the database would read it back.
fn normalized(record: &SandboxRecord) -> SandboxRecord {
    let mut r = record.clone();
    r.created_at = common::truncate_ms(r.created_at);
    r.started_at = common::truncate_ms(r.started_at);
    r.end_at = common::truncate_ms(r.end_at);
    r.state_since = common::truncate_ms(r.state_since);
    r
}

fn conflict(id: &str, expected: SandboxState, actual: SandboxState, to: SandboxState) -> StoreError {
    StoreError::Conflict { id: id.to_owned(), expected, actual, to }
}

#[async_trait]
impl Store for MemoryStore {
    async fn insert(&self, record: &SandboxRecord) -> Result<(), StoreError> {
        common::validate_record(record)?;
        let mut inner = self.lock();
        if inner.live.contains_key(&record.id) {
            return Err(StoreError::AlreadyExists(record.id.clone()));
        }
        inner.live.insert(record.id.clone(), normalized(record));
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<SandboxRecord>, StoreError> {
        Ok(self.lock().live.get(id).cloned())
    }

    async fn transition(
        &self,
        id: &str,
        expected: SandboxState,
        to: SandboxState,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<SandboxRecord, StoreError> {
        let mut inner = self.lock();
        let record = inner.live.get_mut(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        if record.state != expected || !can_transition(expected, to) {
            return Err(conflict(id, expected, record.state, to));
        }
        record.state = to;
        record.state_since = common::truncate_ms(now);
        if let Some(t) = changes.started_at {
            record.started_at = common::truncate_ms(t);
        }
        if let Some(t) = changes.end_at {
            record.end_at = common::truncate_ms(t);
        }
        record.running_ms += changes.add_running_ms;
        record.paused_ms += changes.add_paused_ms;
        if let Some(o) = changes.on_timeout {
            record.on_timeout = o;
        }
        if let Some(m) = changes.auto_pause_memory {
            record.auto_pause_memory = m;
        }
        Ok(record.clone())
    }

    async fn set_end_at(&self, id: &str, state: SandboxState, end_at: DateTime<Utc>) -> Result<SandboxRecord, StoreError> {
        let mut inner = self.lock();
        let record = inner.live.get_mut(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        if record.state != state {
            return Err(conflict(id, state, record.state, state));
        }
        record.end_at = common::truncate_ms(end_at);
        Ok(record.clone())
    }

    async fn set_network(&self, id: &str, allow_internet_access: Option<bool>, network: Option<serde_json::Value>) -> Result<SandboxRecord, StoreError> {
        let mut inner = self.lock();
        let record = inner.live.get_mut(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        record.allow_internet_access = allow_internet_access;
        record.network = network;
        Ok(record.clone())
    }

    async fn delete(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let record = inner.live.remove(id).ok_or_else(|| StoreError::NotFound(id.to_owned()))?;
        let mut row = common::usage_of(&record);
        row.state = None;
        row.deleted_at = Some(common::truncate_ms(now));
        inner.history.push(row);
        Ok(())
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let plan = common::plan(query)?;
        let inner = self.lock();
        let mut items: Vec<SandboxRecord> = inner
            .live
            .values()
            .filter(|r| plan.after.as_ref().is_none_or(|after| Cursor::of(r) > *after))
            .filter(|r| common::matches(r, query))
            .cloned()
            .collect();
        items.sort_by(common::created_order);
        items.truncate(plan.limit + 1);
        Ok(common::finish_page(items, plan.limit))
    }

    async fn all(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        let mut items: Vec<SandboxRecord> = self.lock().live.values().cloned().collect();
        items.sort_by(common::created_order);
        Ok(items)
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let now = common::truncate_ms(now);
        let mut items: Vec<SandboxRecord> =
            self.lock().live.values().filter(|r| r.state == SandboxState::Running && r.end_at <= now).cloned().collect();
        items.sort_by(common::end_order);
        Ok(items)
    }

    async fn retention_due(&self, created_before: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let cutoff = common::truncate_ms(created_before);
        let mut items: Vec<SandboxRecord> =
            self.lock().live.values().filter(|r| r.state == SandboxState::Paused && r.created_at < cutoff).cloned().collect();
        items.sort_by(common::created_order);
        Ok(items)
    }

    async fn usage(&self, owner: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let inner = self.lock();
        let wanted = |o: &str| owner.is_none_or(|w| w == o);
        let mut rows: Vec<UsageRow> = inner
            .live
            .values()
            .filter(|r| wanted(&r.owner))
            .map(common::usage_of)
            .chain(inner.history.iter().filter(|r| wanted(&r.owner)).cloned())
            .collect();
        common::sort_usage(&mut rows);
        Ok(rows)
    }
}
