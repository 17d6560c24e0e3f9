//! The embedded default [`Store`]: one SQLite file through sqlx.
//!
//! Durability first: WAL with `synchronous = FULL`, so a transition that returned (a pause
//! acknowledged to a user) survives a power cut, not only a crash of the process. Queries are
//! plain SQL that PostgreSQL also accepts (placeholders aside, which sqlx's builder writes per
//! database); exceptions are marked where they occur.

use crate::common::{self, Cursor};
use crate::{Changes, ListQuery, OnTimeout, Page, SandboxRecord, Store, StoreError, UsageRow};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};
use stasis_types::{can_transition, SandboxState};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// How long a writer waits for another one before failing with "database is locked". Writes
/// are single short statements, so contention clears in milliseconds; this only guards
/// against a stalled disk.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Readers run in parallel under WAL; writers queue on SQLite's lock whatever the count.
const MAX_CONNECTIONS: u32 = 4;

/// Columns of `sandboxes` in the order [`record_from_row`] reads them.
const COLUMNS: &str = "id, owner, template, alias, state, cpu_count, memory_mb, disk_size_mb, metadata, env_vars, \
     envd_access_token, envd_version, on_timeout, auto_pause_memory, auto_resume, allow_internet_access, network, \
     created_at, started_at, end_at, state_since, running_ms, paused_ms";

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating it with mode 0600 if missing) the database at `path` and brings its
    /// schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        // SQLite would create the file with the umask's mode; it holds envd access tokens, so
        // create it ourselves, readable by the owner only. SQLite gives the -wal and -shm files
        // the database file's permissions.
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| StoreError::Database(format!("creating {}: {e}", path.display())))?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .connect_with(options)
            .await
            .map_err(|e| db_error(&format!("opening {}", path.display()), e))?;
        Self::with_pool(pool).await
    }

    /// A private database that lives as long as this store (and its clones). For tests.
    pub async fn open_in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new().in_memory(true).foreign_keys(true);
        // Every connection to ":memory:" is a database of its own, and it vanishes when the
        // connection closes: keep exactly one, forever.
        let pool = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await
            .map_err(|e| db_error("opening an in-memory database", e))?;
        Self::with_pool(pool).await
    }

    async fn with_pool(pool: SqlitePool) -> Result<Self, StoreError> {
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Database(format!("migrating the schema: {e}")))?;
        Ok(SqliteStore { pool })
    }

    /// Waits for queries under way and closes every connection (checkpointing the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The state of `id`, or `NotFound`: what a compare-and-set that changed nothing tells.
    async fn current_state(&self, id: &str) -> Result<SandboxState, StoreError> {
        let row = sqlx::query("SELECT state FROM sandboxes WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&format!("reading the state of {id}"), e))?;
        match row {
            None => Err(StoreError::NotFound(id.to_owned())),
            Some(row) => parse_state(&get::<String>(&row, "state")?),
        }
    }

    async fn fetch_records(&self, sql: &str, at: DateTime<Utc>, context: &str) -> Result<Vec<SandboxRecord>, StoreError> {
        let rows = sqlx::query(sql).bind(common::to_ms(at)).fetch_all(&self.pool).await.map_err(|e| db_error(context, e))?;
        rows.iter().map(record_from_row).collect()
    }
}

fn db_error(context: &str, e: sqlx::Error) -> StoreError {
    StoreError::Database(format!("{context}: {e}"))
}

fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(column).map_err(|e| db_error(&format!("reading column {column}"), e))
}

fn parse_state(s: &str) -> Result<SandboxState, StoreError> {
    s.parse().map_err(|e: String| StoreError::Database(format!("stored state: {e}")))
}

fn on_timeout_str(o: OnTimeout) -> &'static str {
    match o {
        OnTimeout::Kill => "kill",
        OnTimeout::Pause => "pause",
    }
}

fn parse_on_timeout(s: &str) -> Result<OnTimeout, StoreError> {
    match s {
        "kill" => Ok(OnTimeout::Kill),
        "pause" => Ok(OnTimeout::Pause),
        other => Err(StoreError::Database(format!("stored on_timeout {other:?} is neither kill nor pause"))),
    }
}

fn from_json<T: serde::de::DeserializeOwned>(column: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("column {column} holds invalid JSON: {e}")))
}

fn to_json<T: serde::Serialize>(column: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(format!("encoding {column} as JSON: {e}")))
}

fn unsigned<T: TryFrom<i64>>(column: &str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Database(format!("column {column} holds {value}, out of range")))
}

fn record_from_row(row: &SqliteRow) -> Result<SandboxRecord, StoreError> {
    let network: Option<String> = get(row, "network")?;
    Ok(SandboxRecord {
        id: get(row, "id")?,
        owner: get(row, "owner")?,
        template: get(row, "template")?,
        alias: get(row, "alias")?,
        state: parse_state(&get::<String>(row, "state")?)?,
        cpu_count: unsigned("cpu_count", get(row, "cpu_count")?)?,
        memory_mb: unsigned("memory_mb", get(row, "memory_mb")?)?,
        disk_size_mb: unsigned("disk_size_mb", get(row, "disk_size_mb")?)?,
        metadata: from_json("metadata", &get::<String>(row, "metadata")?)?,
        env_vars: from_json("env_vars", &get::<String>(row, "env_vars")?)?,
        envd_access_token: get(row, "envd_access_token")?,
        envd_version: get(row, "envd_version")?,
        on_timeout: parse_on_timeout(&get::<String>(row, "on_timeout")?)?,
        auto_pause_memory: get(row, "auto_pause_memory")?,
        auto_resume: get(row, "auto_resume")?,
        allow_internet_access: get(row, "allow_internet_access")?,
        network: network.map(|n| from_json("network", &n)).transpose()?,
        created_at: common::from_ms(get(row, "created_at")?)?,
        started_at: common::from_ms(get(row, "started_at")?)?,
        end_at: common::from_ms(get(row, "end_at")?)?,
        state_since: common::from_ms(get(row, "state_since")?)?,
        running_ms: get(row, "running_ms")?,
        paused_ms: get(row, "paused_ms")?,
    })
}

fn usage_from_history_row(row: &SqliteRow) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        sandbox_id: get(row, "id")?,
        owner: get(row, "owner")?,
        state: None,
        running_ms: get(row, "running_ms")?,
        paused_ms: get(row, "paused_ms")?,
        cpu_count: unsigned("cpu_count", get(row, "cpu_count")?)?,
        memory_mb: unsigned("memory_mb", get(row, "memory_mb")?)?,
        created_at: common::from_ms(get(row, "created_at")?)?,
        deleted_at: Some(common::from_ms(get(row, "deleted_at")?)?),
    })
}

fn usage_from_live_row(row: &SqliteRow) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        sandbox_id: get(row, "id")?,
        owner: get(row, "owner")?,
        state: Some(parse_state(&get::<String>(row, "state")?)?),
        running_ms: get(row, "running_ms")?,
        paused_ms: get(row, "paused_ms")?,
        cpu_count: unsigned("cpu_count", get(row, "cpu_count")?)?,
        memory_mb: unsigned("memory_mb", get(row, "memory_mb")?)?,
        created_at: common::from_ms(get(row, "created_at")?)?,
        deleted_at: None,
    })
}

/// Adds `query`'s filters (owner, states, page position) to a `WHERE TRUE` clause.
fn push_filters(b: &mut QueryBuilder<'_, Sqlite>, query: &ListQuery, after: Option<&Cursor>) {
    if let Some(owner) = &query.owner {
        b.push(" AND owner = ").push_bind(owner.clone());
    }
    if !query.states.is_empty() {
        b.push(" AND state IN (");
        let mut states = b.separated(", ");
        for s in &query.states {
            states.push_bind(s.as_str());
        }
        b.push(")");
    }
    if let Some(after) = after {
        // `(created_at, id) > (?, ?)`, spelled out: strictly after the last item returned.
        b.push(" AND (created_at > ")
            .push_bind(after.created_ms)
            .push(" OR (created_at = ")
            .push_bind(after.created_ms)
            .push(" AND id > ")
            .push_bind(after.id.clone())
            .push("))");
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert(&self, r: &SandboxRecord) -> Result<(), StoreError> {
        common::validate_record(r)?;
        let network = r.network.as_ref().map(|n| to_json("network", n)).transpose()?;
        let sql = format!("INSERT INTO sandboxes ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
        let result = sqlx::query(&sql)
            .bind(&r.id)
            .bind(&r.owner)
            .bind(&r.template)
            .bind(&r.alias)
            .bind(r.state.as_str())
            .bind(i64::from(r.cpu_count))
            .bind(common::size_to_i64("memory_mb", r.memory_mb)?)
            .bind(common::size_to_i64("disk_size_mb", r.disk_size_mb)?)
            .bind(to_json("metadata", &r.metadata)?)
            .bind(to_json("env_vars", &r.env_vars)?)
            .bind(&r.envd_access_token)
            .bind(&r.envd_version)
            .bind(on_timeout_str(r.on_timeout))
            .bind(r.auto_pause_memory)
            .bind(r.auto_resume)
            .bind(r.allow_internet_access)
            .bind(network)
            .bind(common::to_ms(r.created_at))
            .bind(common::to_ms(r.started_at))
            .bind(common::to_ms(r.end_at))
            .bind(common::to_ms(r.state_since))
            .bind(r.running_ms)
            .bind(r.paused_ms)
            .execute(&self.pool)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::AlreadyExists(r.id.clone())),
            Err(e) => Err(db_error(&format!("inserting sandbox {}", r.id), e)),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<SandboxRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&format!("reading sandbox {id}"), e))?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn transition(
        &self,
        id: &str,
        expected: SandboxState,
        to: SandboxState,
        changes: Changes,
        now: DateTime<Utc>,
    ) -> Result<SandboxRecord, StoreError> {
        if !can_transition(expected, to) {
            // Report what is really there (or that nothing is), as a failed CAS would.
            let actual = self.current_state(id).await?;
            return Err(StoreError::Conflict { id: id.to_owned(), expected, actual, to });
        }
        // The compare-and-set: one statement, so the check and the change cannot be split by
        // another writer. RETURNING (SQLite 3.35+, PostgreSQL) reads the result in the same
        // statement.
        let sql = format!(
            "UPDATE sandboxes SET state = ?, state_since = ?, \
             started_at = COALESCE(?, started_at), end_at = COALESCE(?, end_at), \
             running_ms = running_ms + ?, paused_ms = paused_ms + ?, \
             on_timeout = COALESCE(?, on_timeout), auto_pause_memory = COALESCE(?, auto_pause_memory) \
             WHERE id = ? AND state = ? RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(common::to_ms(now))
            .bind(changes.started_at.map(common::to_ms))
            .bind(changes.end_at.map(common::to_ms))
            .bind(changes.add_running_ms)
            .bind(changes.add_paused_ms)
            .bind(changes.on_timeout.map(on_timeout_str))
            .bind(changes.auto_pause_memory)
            .bind(id)
            .bind(expected.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&format!("moving sandbox {id} from {expected} to {to}"), e))?;
        match row {
            Some(row) => record_from_row(&row),
            // Nothing changed: either the sandbox is gone or it is in another state. (If
            // another writer moved it back to `expected` meanwhile, `actual == expected` is
            // reported: the caller's read was stale all the same.)
            None => {
                let actual = self.current_state(id).await?;
                Err(StoreError::Conflict { id: id.to_owned(), expected, actual, to })
            }
        }
    }

    async fn set_end_at(&self, id: &str, state: SandboxState, end_at: DateTime<Utc>) -> Result<SandboxRecord, StoreError> {
        let row = sqlx::query(&format!("UPDATE sandboxes SET end_at = ? WHERE id = ? AND state = ? RETURNING {COLUMNS}"))
            .bind(common::to_ms(end_at))
            .bind(id)
            .bind(state.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&format!("setting end_at of sandbox {id}"), e))?;
        match row {
            Some(row) => record_from_row(&row),
            None => {
                let actual = self.current_state(id).await?;
                Err(StoreError::Conflict { id: id.to_owned(), expected: state, actual, to: state })
            }
        }
    }

    async fn set_network(&self, id: &str, allow_internet_access: Option<bool>, network: Option<serde_json::Value>) -> Result<SandboxRecord, StoreError> {
        let network = network.as_ref().map(|n| to_json("network", n)).transpose()?;
        let row = sqlx::query(&format!("UPDATE sandboxes SET allow_internet_access = ?, network = ? WHERE id = ? RETURNING {COLUMNS}"))
            .bind(allow_internet_access)
            .bind(network)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(&format!("setting the network of sandbox {id}"), e))?;
        match row {
            Some(row) => record_from_row(&row),
            None => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    async fn delete(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        let context = || format!("deleting sandbox {id}");
        let mut tx = self.pool.begin().await.map_err(|e| db_error(&context(), e))?;
        // The first statement writes, so the transaction takes the write lock at once (no
        // read-then-upgrade that could fail on a busy database).
        let copied = sqlx::query(
            "INSERT INTO usage_history (id, owner, running_ms, paused_ms, cpu_count, memory_mb, created_at, deleted_at) \
             SELECT id, owner, running_ms, paused_ms, cpu_count, memory_mb, created_at, ? FROM sandboxes WHERE id = ?",
        )
        .bind(common::to_ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| db_error(&context(), e))?;
        if copied.rows_affected() == 0 {
            // Dropping `tx` rolls back (nothing was written anyway).
            return Err(StoreError::NotFound(id.to_owned()));
        }
        sqlx::query("DELETE FROM sandboxes WHERE id = ?").bind(id).execute(&mut *tx).await.map_err(|e| db_error(&context(), e))?;
        tx.commit().await.map_err(|e| db_error(&context(), e))
    }

    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        let plan = common::plan(query)?;
        // One more than the page, to know whether another page follows.
        let wanted = plan.limit + 1;
        // Metadata is matched here rather than in SQL (JSON functions differ between SQLite
        // and PostgreSQL), so a batch may yield fewer matches than rows: read on from the
        // last row seen until the page is full or the rows run out.
        let batch = if query.metadata.is_empty() { wanted } else { wanted.max(100) };
        let mut items = Vec::with_capacity(wanted);
        let mut after = plan.after;
        loop {
            let mut b = QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM sandboxes WHERE TRUE"));
            push_filters(&mut b, query, after.as_ref());
            b.push(" ORDER BY created_at, id LIMIT ").push_bind(batch as i64);
            let rows = b.build().fetch_all(&self.pool).await.map_err(|e| db_error("listing sandboxes", e))?;
            let exhausted = rows.len() < batch;
            for row in &rows {
                let record = record_from_row(row)?;
                after = Some(Cursor::of(&record));
                if common::metadata_matches(&record.metadata, &query.metadata) {
                    items.push(record);
                    if items.len() == wanted {
                        return Ok(common::finish_page(items, plan.limit));
                    }
                }
            }
            if exhausted {
                return Ok(common::finish_page(items, plan.limit));
            }
        }
    }

    async fn all(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM sandboxes ORDER BY created_at, id"))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error("reading all sandboxes", e))?;
        rows.iter().map(record_from_row).collect()
    }

    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sandboxes WHERE state = 'running' AND end_at <= ? ORDER BY end_at, id");
        self.fetch_records(&sql, now, "reading expired sandboxes").await
    }

    async fn retention_due(&self, created_before: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM sandboxes WHERE state = 'paused' AND created_at < ? ORDER BY created_at, id");
        self.fetch_records(&sql, created_before, "reading sandboxes due for retention").await
    }

    async fn usage(&self, owner: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        let filter = if owner.is_some() { " WHERE owner = ?" } else { "" };
        let live_sql = format!("SELECT id, owner, state, running_ms, paused_ms, cpu_count, memory_mb, created_at FROM sandboxes{filter}");
        let history_sql =
            format!("SELECT id, owner, running_ms, paused_ms, cpu_count, memory_mb, created_at, deleted_at FROM usage_history{filter}");
        // One read transaction, so that a sandbox deleted meanwhile is counted exactly once.
        let mut tx = self.pool.begin().await.map_err(|e| db_error("reading usage", e))?;
        let (mut live_query, mut history_query) = (sqlx::query(&live_sql), sqlx::query(&history_sql));
        if let Some(owner) = owner {
            live_query = live_query.bind(owner);
            history_query = history_query.bind(owner);
        }
        let live = live_query.fetch_all(&mut *tx).await.map_err(|e| db_error("reading usage", e))?;
        let history = history_query.fetch_all(&mut *tx).await.map_err(|e| db_error("reading usage history", e))?;
        tx.commit().await.map_err(|e| db_error("reading usage", e))?;
        let mut rows =
            live.iter().map(usage_from_live_row).chain(history.iter().map(usage_from_history_row)).collect::<Result<Vec<_>, _>>()?;
        common::sort_usage(&mut rows);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryStore;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("stasis-store-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn t(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(1_764_300_000_000 + ms).unwrap()
    }

    fn record(id: &str, created: i64) -> SandboxRecord {
        SandboxRecord {
            id: id.to_owned(),
            owner: "owner".to_owned(),
            template: "base".to_owned(),
            alias: None,
            state: SandboxState::Running,
            cpu_count: 1,
            memory_mb: 256,
            disk_size_mb: 1024,
            metadata: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            env_vars: BTreeMap::new(),
            envd_access_token: "secret".to_owned(),
            envd_version: "0.2.0".to_owned(),
            on_timeout: OnTimeout::Kill,
            auto_pause_memory: true,
            auto_resume: false,
            allow_internet_access: Some(true),
            network: None,
            created_at: t(created),
            started_at: t(created),
            end_at: t(created + 1000),
            state_since: t(created),
            running_ms: 0,
            paused_ms: 0,
        }
    }

    async fn scalar(store: &SqliteStore, sql: &str) -> String {
        let row = sqlx::query(sql).fetch_one(&store.pool).await.unwrap();
        row.try_get::<String, _>(0).or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string())).unwrap()
    }

    /// Applies the same operations to `store` and to the fake.
    async fn history(store: &dyn Store) {
        for i in 0..5 {
            store.insert(&record(&format!("sbx-{i}"), i)).await.unwrap();
        }
        let pause = Changes { add_running_ms: 1500, ..Changes::default() };
        store.transition("sbx-1", SandboxState::Running, SandboxState::Pausing, pause, t(100)).await.unwrap();
        store.transition("sbx-1", SandboxState::Pausing, SandboxState::Paused, Changes::default(), t(200)).await.unwrap();
        store.transition("sbx-2", SandboxState::Running, SandboxState::Killing, Changes::default(), t(300)).await.unwrap();
        store.delete("sbx-2", t(301)).await.unwrap();
        store.set_end_at("sbx-3", SandboxState::Running, t(9_999)).await.unwrap();
    }

    #[tokio::test]
    async fn data_survives_reopening_and_migrations_run_once() {
        let dir = TempDir::new("reopen");
        let path = dir.0.join("stasis.db");
        let store = SqliteStore::open(&path).await.unwrap();
        history(&store).await;
        let tables = scalar(&store, "SELECT COUNT(*) FROM sqlite_master").await;
        store.close().await;
        drop(store);

        let fake = MemoryStore::new();
        history(&fake).await;

        // Reopening runs the migrator again: it must find everything applied and change nothing.
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM _sqlx_migrations").await, MIGRATOR.iter().count().to_string());
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM sqlite_master").await, tables);
        MIGRATOR.run(&store.pool).await.unwrap();
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM _sqlx_migrations").await, MIGRATOR.iter().count().to_string());

        assert_eq!(store.all().await.unwrap(), fake.all().await.unwrap());
        assert_eq!(store.usage(None).await.unwrap(), fake.usage(None).await.unwrap());
        let paused = store.get("sbx-1").await.unwrap().unwrap();
        assert_eq!((paused.state, paused.running_ms, paused.state_since), (SandboxState::Paused, 1500, t(200)));
        assert_eq!(store.get("sbx-2").await.unwrap(), None);
        assert_eq!(store.usage(None).await.unwrap().iter().filter(|u| u.deleted_at.is_some()).count(), 1);
    }

    #[tokio::test]
    async fn file_is_private_durable_and_waits_for_locks() {
        let dir = TempDir::new("pragmas");
        let path = dir.0.join("new.db");
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(scalar(&store, "PRAGMA journal_mode").await, "wal");
        // 2 = FULL: the WAL is synced at every commit.
        assert_eq!(scalar(&store, "PRAGMA synchronous").await, "2");
        assert_eq!(scalar(&store, "PRAGMA foreign_keys").await, "1");
        assert_eq!(scalar(&store, "PRAGMA busy_timeout").await, BUSY_TIMEOUT.as_millis().to_string());
        store.insert(&record("sbx-1", 0)).await.unwrap();
        let wal = dir.0.join("new.db-wal");
        assert_eq!(std::fs::metadata(&wal).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[tokio::test]
    async fn open_reports_unusable_paths() {
        let dir = TempDir::new("bad");
        let missing_parent = dir.0.join("no-such-dir").join("x.db");
        assert!(matches!(SqliteStore::open(&missing_parent).await, Err(StoreError::Database(m)) if m.contains("no-such-dir")));
        let not_a_db = dir.0.join("garbage.db");
        std::fs::write(&not_a_db, vec![0x5a; 8192]).unwrap();
        assert!(matches!(SqliteStore::open(&not_a_db).await, Err(StoreError::Database(_))));
    }

    #[tokio::test]
    async fn in_memory_store_keeps_its_data_across_queries() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        store.insert(&record("sbx-1", 0)).await.unwrap();
        let clone = store.clone();
        assert_eq!(clone.get("sbx-1").await.unwrap(), Some(record("sbx-1", 0)));
    }
}
