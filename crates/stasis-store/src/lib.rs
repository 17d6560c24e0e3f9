//! Persistence of sandbox records.
//!
//! The lifecycle layer owns the decisions; the store owns atomicity: every state change is a
//! compare-and-set against the state the caller read, checked against the one transition table
//! ([`stasis_types::can_transition`]), so two concurrent operations on one sandbox can never both
//! win. Times are stored as Unix milliseconds and maps as JSON text, so the schema ports to
//! PostgreSQL unchanged.
//!
//! [`SqliteStore`] is the embedded default; [`MemoryStore`] is the fake for the control plane's
//! tests. One behaviour suite runs against both; the README lists the semantics callers rely on.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stasis_types::wire::Metadata;
use stasis_types::SandboxState;
use std::collections::BTreeMap;

mod common;
mod memory;
mod sqlite;

pub use memory::MemoryStore;
pub use sqlite::SqliteStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnTimeout {
    Kill,
    Pause,
}

/// Everything the control plane knows about a sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    /// Who may see and drive it: the id of the API key that created it.
    pub owner: String,
    pub template: String,
    pub alias: Option<String>,
    pub state: SandboxState,
    pub cpu_count: u32,
    pub memory_mb: u64,
    pub disk_size_mb: u64,
    pub metadata: Metadata,
    pub env_vars: BTreeMap<String, String>,
    pub envd_access_token: String,
    pub envd_version: String,
    pub on_timeout: OnTimeout,
    /// With `on_timeout = Pause`: keep memory (true) or only the file system.
    pub auto_pause_memory: bool,
    pub auto_resume: bool,
    pub allow_internet_access: Option<bool>,
    pub network: Option<serde_json::Value>,
    /// Original creation; retention counts from here.
    pub created_at: DateTime<Utc>,
    /// Last start or resume.
    pub started_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    /// When `state` was entered.
    pub state_since: DateTime<Utc>,
    /// Completed running time, not counting the current running stretch.
    pub running_ms: i64,
    /// Completed paused time, not counting the current paused stretch.
    pub paused_ms: i64,
}

/// Fields a transition may change along with the state. `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub started_at: Option<DateTime<Utc>>,
    pub end_at: Option<DateTime<Utc>>,
    pub add_running_ms: i64,
    pub add_paused_ms: i64,
    pub on_timeout: Option<OnTimeout>,
    pub auto_pause_memory: Option<bool>,
}

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    /// Only this owner's sandboxes (`None`: everyone's, for the server's own sweeps).
    pub owner: Option<String>,
    /// Only these states; empty means all.
    pub states: Vec<SandboxState>,
    /// Every pair must be present in the sandbox's metadata.
    pub metadata: Metadata,
    /// Page size, 1..=1000.
    pub limit: u32,
    /// The `next_token` of the previous page.
    pub next_token: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Page {
    pub items: Vec<SandboxRecord>,
    /// Opaque; `None` on the last page.
    pub next_token: Option<String>,
}

/// Usage of one sandbox, live or already deleted.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageRow {
    pub sandbox_id: String,
    pub owner: String,
    /// `None` once deleted.
    pub state: Option<SandboxState>,
    pub running_ms: i64,
    pub paused_ms: i64,
    pub cpu_count: u32,
    pub memory_mb: u64,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sandbox {0} not found")]
    NotFound(String),
    #[error("sandbox {0} already exists")]
    AlreadyExists(String),
    /// The sandbox is not in the state the caller read (someone else moved it first), or the
    /// transition is not in the table.
    #[error("sandbox {id} is {actual}, cannot go from {expected} to {to}")]
    Conflict { id: String, expected: SandboxState, actual: SandboxState, to: SandboxState },
    #[error("invalid page token")]
    BadToken,
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("database: {0}")]
    Database(String),
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn insert(&self, record: &SandboxRecord) -> Result<(), StoreError>;

    async fn get(&self, id: &str) -> Result<Option<SandboxRecord>, StoreError>;

    /// Atomically move `id` from `expected` to `to`, applying `changes` and setting
    /// `state_since = now`. Fails with `Conflict` if the stored state is not `expected` or the
    /// table forbids `expected → to`. Returns the updated record.
    async fn transition(
        &self,
        id: &str,
        expected: SandboxState,
        to: SandboxState,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<SandboxRecord, StoreError>;

    /// Set `end_at` if the sandbox is in `state` (a timeout change must not race a pause).
    async fn set_end_at(&self, id: &str, state: SandboxState, end_at: DateTime<Utc>) -> Result<SandboxRecord, StoreError>;

    /// Replace a sandbox's network settings (`allow_internet_access`, `network`), in any state.
    async fn set_network(&self, id: &str, allow_internet_access: Option<bool>, network: Option<serde_json::Value>) -> Result<SandboxRecord, StoreError>;

    /// Remove a killed sandbox, keeping its usage (running/paused time, size) in the history.
    async fn delete(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError>;

    /// A page in a stable order (creation time, then id): paging through a list that does not
    /// change meanwhile returns every item exactly once.
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError>;

    /// Every record (for reconciliation and sweeps).
    async fn all(&self) -> Result<Vec<SandboxRecord>, StoreError>;

    /// Running sandboxes whose `end_at` is at or before `now`.
    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError>;

    /// Paused sandboxes created before `created_before`.
    async fn retention_due(&self, created_before: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError>;

    /// Usage of live and deleted sandboxes, optionally of one owner.
    async fn usage(&self, owner: Option<&str>) -> Result<Vec<UsageRow>, StoreError>;
}
