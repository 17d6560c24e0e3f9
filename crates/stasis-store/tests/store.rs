//! One behaviour suite, run against every `Store`: the in-memory fake, SQLite in memory and
//! SQLite on a file. The fake stands in for the database in the control plane's tests, so
//! any difference between them is a bug this suite should catch.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use stasis_store::{Changes, ListQuery, MemoryStore, OnTimeout, SandboxRecord, SqliteStore, Store, StoreError, UsageRow};
use stasis_types::{can_transition, SandboxState};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use SandboxState::*;

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!("stasis-store-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
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

struct Fixture {
    store: Arc<dyn Store>,
    _dir: Option<TempDir>,
}

async fn memory() -> Fixture {
    Fixture { store: Arc::new(MemoryStore::new()), _dir: None }
}

async fn sqlite_memory() -> Fixture {
    Fixture { store: Arc::new(SqliteStore::open_in_memory().await.unwrap()), _dir: None }
}

async fn sqlite_file() -> Fixture {
    let dir = TempDir::new();
    let store = SqliteStore::open(&dir.0.join("stasis.db")).await.unwrap();
    Fixture { store: Arc::new(store), _dir: Some(dir) }
}

/// A fixed instant with milliseconds, so that precision loss would show.
fn t(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_764_300_000_000 + ms).unwrap()
}

/// A record with every field set to something other than its default.
fn record(id: &str, owner: &str, created: i64) -> SandboxRecord {
    SandboxRecord {
        id: id.to_owned(),
        owner: owner.to_owned(),
        template: "base".to_owned(),
        alias: Some("my-alias".to_owned()),
        state: Running,
        cpu_count: 2,
        memory_mb: 512,
        disk_size_mb: 4096,
        metadata: BTreeMap::from([("team".to_owned(), "core".to_owned()), ("ünïcode".to_owned(), "✓ \"quoted\"".to_owned())]),
        env_vars: BTreeMap::from([("PATH".to_owned(), "/usr/bin".to_owned()), ("EMPTY".to_owned(), String::new())]),
        envd_access_token: "tok-secret".to_owned(),
        envd_version: "0.2.0".to_owned(),
        on_timeout: OnTimeout::Pause,
        auto_pause_memory: true,
        auto_resume: true,
        allow_internet_access: Some(false),
        network: Some(json!({"allowOut": ["1.1.1.1"], "denyOut": [], "nested": {"n": 1.5, "b": true, "z": null}})),
        created_at: t(created),
        started_at: t(created + 7),
        end_at: t(created + 300_001),
        state_since: t(created + 9),
        running_ms: 1234,
        paused_ms: 567,
    }
}

fn in_state(id: &str, state: SandboxState) -> SandboxRecord {
    SandboxRecord { state, ..record(id, "owner-a", 0) }
}

fn query(limit: u32) -> ListQuery {
    ListQuery { limit, ..ListQuery::default() }
}

/// Pages through `q` with its limit, checking that no page is larger and that only the last
/// one has no token; returns the ids in the order seen.
async fn page_through(store: &dyn Store, mut q: ListQuery) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..1000 {
        let page = store.list(&q).await.unwrap();
        assert!(page.items.len() <= q.limit as usize);
        ids.extend(page.items.iter().map(|r| r.id.clone()));
        match page.next_token {
            Some(token) => {
                assert_eq!(page.items.len(), q.limit as usize, "only the last page may be short");
                q.next_token = Some(token);
            }
            None => return ids,
        }
    }
    panic!("pagination does not end");
}

fn assert_conflict(result: Result<SandboxRecord, StoreError>, expected: SandboxState, actual: SandboxState, to: SandboxState) {
    match result {
        Err(StoreError::Conflict { expected: e, actual: a, to: t, .. }) => {
            assert_eq!((e, a, t), (expected, actual, to));
        }
        other => panic!("expected Conflict {{ {expected}, actual {actual}, to {to} }}, got {other:?}"),
    }
}

async fn round_trip(store: Arc<dyn Store>) {
    let full = record("sbx-full", "owner-a", 0);
    store.insert(&full).await.unwrap();
    assert_eq!(store.get("sbx-full").await.unwrap(), Some(full.clone()));

    let bare = SandboxRecord {
        alias: None,
        allow_internet_access: None,
        network: None,
        metadata: BTreeMap::new(),
        env_vars: BTreeMap::new(),
        on_timeout: OnTimeout::Kill,
        auto_pause_memory: false,
        auto_resume: false,
        cpu_count: u32::MAX,
        memory_mb: i64::MAX as u64,
        running_ms: 0,
        paused_ms: 0,
        ..record("sbx-bare", "owner-b", -1_764_300_000_000 - 1) // before 1970, odd ms
    };
    store.insert(&bare).await.unwrap();
    assert_eq!(store.get("sbx-bare").await.unwrap(), Some(bare.clone()));

    // Some(null) is a value, not an absent field.
    let null_network = SandboxRecord { network: Some(serde_json::Value::Null), ..record("sbx-null", "owner-a", 1) };
    store.insert(&null_network).await.unwrap();
    assert_eq!(store.get("sbx-null").await.unwrap(), Some(null_network));

    // Sub-millisecond precision is not kept, by either store.
    let mut precise = record("sbx-precise", "owner-a", 2);
    precise.created_at += Duration::microseconds(999);
    precise.end_at += Duration::nanoseconds(1);
    store.insert(&precise).await.unwrap();
    let read = store.get("sbx-precise").await.unwrap().unwrap();
    assert_eq!(read.created_at, t(2));
    assert_eq!(read.end_at, t(2 + 300_001));

    assert!(matches!(store.insert(&full).await, Err(StoreError::AlreadyExists(id)) if id == "sbx-full"));
    assert_eq!(store.get("sbx-full").await.unwrap(), Some(full));
    assert_eq!(store.get("nope").await.unwrap(), None);

    let too_big = SandboxRecord { memory_mb: u64::MAX, ..record("sbx-big", "owner-a", 3) };
    assert!(matches!(store.insert(&too_big).await, Err(StoreError::BadQuery(_))));
    assert_eq!(store.get("sbx-big").await.unwrap(), None);
}

async fn transition_matrix(store: Arc<dyn Store>) {
    let now = t(10_000);
    for from in SandboxState::ALL {
        for to in SandboxState::ALL {
            let id = format!("sbx-{from}-{to}");
            let before = in_state(&id, from);
            store.insert(&before).await.unwrap();
            let changes = Changes {
                started_at: Some(t(5_000)),
                end_at: Some(t(65_000)),
                add_running_ms: 100,
                add_paused_ms: 20,
                on_timeout: Some(OnTimeout::Kill),
                auto_pause_memory: Some(false),
            };
            let result = store.transition(&id, from, to, changes, now).await;
            if can_transition(from, to) {
                let after = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                let want = SandboxRecord {
                    state: to,
                    state_since: now,
                    started_at: t(5_000),
                    end_at: t(65_000),
                    running_ms: before.running_ms + 100,
                    paused_ms: before.paused_ms + 20,
                    on_timeout: OnTimeout::Kill,
                    auto_pause_memory: false,
                    ..before.clone()
                };
                assert_eq!(after, want, "{from} -> {to}");
                assert_eq!(store.get(&id).await.unwrap(), Some(want));
            } else {
                assert_conflict(result, from, from, to);
                assert_eq!(store.get(&id).await.unwrap(), Some(before), "{from} -> {to} must change nothing");
            }
        }
    }

    // No changes: only the state and state_since move.
    let plain = in_state("sbx-plain", Running);
    store.insert(&plain).await.unwrap();
    let after = store.transition("sbx-plain", Running, Pausing, Changes::default(), now).await.unwrap();
    assert_eq!(after, SandboxRecord { state: Pausing, state_since: now, ..plain });

    // A stale read: the caller thinks paused, it is pausing.
    assert_conflict(store.transition("sbx-plain", Paused, Resuming, Changes::default(), now).await, Paused, Pausing, Resuming);
    // Forbidden and stale at once: the actual state is still reported.
    assert_conflict(store.transition("sbx-plain", Killing, Running, Changes::default(), now).await, Killing, Pausing, Running);
    // Unknown ids are NotFound, whether or not the transition is allowed.
    assert!(
        matches!(store.transition("nope", Running, Pausing, Changes::default(), now).await, Err(StoreError::NotFound(id)) if id == "nope")
    );
    assert!(matches!(store.transition("nope", Killing, Running, Changes::default(), now).await, Err(StoreError::NotFound(_))));
    // Durations may be corrected downwards.
    let after = store.transition("sbx-plain", Pausing, Running, Changes { add_running_ms: -34, ..Changes::default() }, now).await.unwrap();
    assert_eq!(after.running_ms, 1200);
}

async fn concurrent_transitions(store: Arc<dyn Store>) {
    store.insert(&in_state("sbx-race", Running)).await.unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let changes = Changes { add_running_ms: 1, end_at: Some(t(i)), ..Changes::default() };
                store.transition("sbx-race", Running, Pausing, changes, t(20_000 + i)).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(record) => winners.push(record),
            Err(StoreError::Conflict { actual: Pausing, .. }) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one transition wins");
    let stored = store.get("sbx-race").await.unwrap().unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(stored.running_ms, 1234 + 1, "only the winner's time is added");
}

async fn set_end_at(store: Arc<dyn Store>) {
    let r = in_state("sbx-end", Running);
    store.insert(&r).await.unwrap();
    let after = store.set_end_at("sbx-end", Running, t(99_999)).await.unwrap();
    assert_eq!(after, SandboxRecord { end_at: t(99_999), ..r.clone() });
    assert_eq!(store.get("sbx-end").await.unwrap(), Some(after.clone()));

    // A pause got there first: the timeout change must not apply.
    store.transition("sbx-end", Running, Pausing, Changes::default(), t(1)).await.unwrap();
    let paused = store.get("sbx-end").await.unwrap().unwrap();
    assert_conflict(store.set_end_at("sbx-end", Running, t(5)).await, Running, Pausing, Running);
    assert_eq!(store.get("sbx-end").await.unwrap(), Some(paused));
    assert!(matches!(store.set_end_at("nope", Running, t(5)).await, Err(StoreError::NotFound(_))));
}

async fn set_network(store: Arc<dyn Store>) {
    let r = in_state("sbx-net", Paused);
    store.insert(&r).await.unwrap();
    let net = serde_json::json!({"allowOut": ["1.1.1.1"], "denyOut": ["0.0.0.0/0"]});
    let after = store.set_network("sbx-net", Some(false), Some(net.clone())).await.unwrap();
    assert_eq!(after, SandboxRecord { allow_internet_access: Some(false), network: Some(net), ..r.clone() });
    assert_eq!(store.get("sbx-net").await.unwrap(), Some(after));
    let cleared = store.set_network("sbx-net", None, None).await.unwrap();
    assert_eq!(cleared, SandboxRecord { allow_internet_access: None, network: None, ..r });
    assert!(matches!(store.set_network("nope", None, None).await, Err(StoreError::NotFound(_))));
}

async fn delete(store: Arc<dyn Store>) {
    let r = SandboxRecord { state: Killing, ..record("sbx-del", "owner-a", 0) };
    store.insert(&r).await.unwrap();
    store.insert(&record("sbx-keep", "owner-a", 1)).await.unwrap();
    store.delete("sbx-del", t(50_000)).await.unwrap();

    assert_eq!(store.get("sbx-del").await.unwrap(), None);
    assert!(matches!(store.delete("sbx-del", t(50_001)).await, Err(StoreError::NotFound(id)) if id == "sbx-del"));
    assert!(matches!(store.delete("never", t(1)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.transition("sbx-del", Killing, Running, Changes::default(), t(1)).await, Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_end_at("sbx-del", Killing, t(1)).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.all().await.unwrap().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sbx-keep"]);

    let usage = store.usage(Some("owner-a")).await.unwrap();
    let deleted = usage.iter().find(|u| u.sandbox_id == "sbx-del").expect("history row");
    assert_eq!(
        *deleted,
        UsageRow {
            sandbox_id: "sbx-del".into(),
            owner: "owner-a".into(),
            state: None,
            running_ms: 1234,
            paused_ms: 567,
            cpu_count: 2,
            memory_mb: 512,
            created_at: t(0),
            deleted_at: Some(t(50_000)),
        }
    );

    // The id may come back (ids are random, but a reuse must not break anything).
    store.insert(&r).await.unwrap();
    store.delete("sbx-del", t(60_000)).await.unwrap();
    let usage = store.usage(Some("owner-a")).await.unwrap();
    assert_eq!(usage.iter().filter(|u| u.sandbox_id == "sbx-del").count(), 2);
}

async fn pagination(store: Arc<dyn Store>) {
    // Inserted out of order; three share a creation time, so the id breaks the tie.
    let created = [("e", 5), ("a", 1), ("h", 3), ("c", 3), ("b", 3), ("g", 9), ("d", 0), ("f", 7)];
    for (id, ms) in created {
        store.insert(&record(&format!("sbx-{id}"), "owner-a", ms)).await.unwrap();
    }
    let expected: Vec<String> = ["d", "a", "b", "c", "h", "e", "f", "g"].iter().map(|s| format!("sbx-{s}")).collect();

    let first = store.list(&query(3)).await.unwrap();
    assert_eq!(first.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sbx-d", "sbx-a", "sbx-b"]);
    assert_eq!(first.items[0], record("sbx-d", "owner-a", 0), "list returns whole records");
    assert_eq!(page_through(&*store, query(3)).await, expected);
    for limit in [1, 2, 4, 7, 8, 9, 1000] {
        assert_eq!(page_through(&*store, query(limit)).await, expected, "limit {limit}");
    }
    // A page that ends exactly at the last item has no token: no empty page follows.
    let whole = store.list(&query(8)).await.unwrap();
    assert_eq!((whole.items.len(), whole.next_token), (8, None));

    // Owner and state filters.
    store.insert(&record("sbx-other", "owner-b", 4)).await.unwrap();
    store.transition("sbx-c", Running, Pausing, Changes::default(), t(1)).await.unwrap();
    store.transition("sbx-f", Running, Pausing, Changes::default(), t(1)).await.unwrap();
    let mine = ListQuery { owner: Some("owner-a".into()), ..query(3) };
    assert_eq!(page_through(&*store, mine.clone()).await, expected);
    let everyone = page_through(&*store, query(3)).await;
    assert_eq!(everyone.len(), 9);
    assert_eq!(everyone[5], "sbx-other");
    let theirs = ListQuery { owner: Some("owner-b".into()), ..query(3) };
    assert_eq!(page_through(&*store, theirs).await, ["sbx-other"]);
    let pausing = ListQuery { states: vec![Pausing], ..mine.clone() };
    assert_eq!(page_through(&*store, pausing).await, ["sbx-c", "sbx-f"]);
    let some_states = ListQuery { states: vec![Running, Paused], limit: 2, ..mine.clone() };
    assert_eq!(page_through(&*store, some_states).await, ["sbx-d", "sbx-a", "sbx-b", "sbx-h", "sbx-e", "sbx-g"]);
    let nobody = ListQuery { owner: Some("owner-z".into()), ..query(3) };
    let empty = store.list(&nobody).await.unwrap();
    assert!(empty.items.is_empty() && empty.next_token.is_none());

    // A token stays valid when its item is deleted meanwhile (keyset, not offset).
    let page = store.list(&query(2)).await.unwrap();
    store.delete("sbx-a", t(1)).await.unwrap();
    let next = store.list(&ListQuery { next_token: page.next_token, ..query(2) }).await.unwrap();
    assert_eq!(next.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sbx-b", "sbx-c"]);

    let all = store.all().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["sbx-d", "sbx-b", "sbx-c", "sbx-h", "sbx-other", "sbx-e", "sbx-f", "sbx-g"]
    );
}

async fn metadata_filter(store: Arc<dyn Store>) {
    let mut matching = Vec::new();
    // 250 sandboxes, one in 40 tagged: a page needs several database batches to fill.
    for i in 0..250 {
        let mut r = record(&format!("sbx-{i:03}"), "owner-a", i);
        r.metadata = BTreeMap::from([("n".to_owned(), i.to_string())]);
        if i % 40 == 7 {
            r.metadata.insert("team".into(), "blue".into());
            r.metadata.insert("env".into(), if i % 80 == 7 { "prod" } else { "dev" }.into());
            matching.push(r.id.clone());
        }
        store.insert(&r).await.unwrap();
    }
    assert_eq!(matching.len(), 7);
    let blue = ListQuery { metadata: BTreeMap::from([("team".to_owned(), "blue".to_owned())]), ..query(3) };
    assert_eq!(page_through(&*store, blue.clone()).await, matching);
    let first = store.list(&blue).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert!(first.next_token.is_some());
    for limit in [1, 2, 6, 7, 8] {
        assert_eq!(page_through(&*store, ListQuery { limit, ..blue.clone() }).await, matching, "limit {limit}");
    }

    // Every pair must match.
    let prod =
        ListQuery { metadata: BTreeMap::from([("team".to_owned(), "blue".to_owned()), ("env".to_owned(), "prod".to_owned())]), ..query(2) };
    assert_eq!(page_through(&*store, prod).await, ["sbx-007", "sbx-087", "sbx-167", "sbx-247"]);
    let wrong_value = ListQuery { metadata: BTreeMap::from([("team".to_owned(), "red".to_owned())]), ..query(3) };
    assert!(page_through(&*store, wrong_value).await.is_empty());
    let one = ListQuery { metadata: BTreeMap::from([("n".to_owned(), "249".to_owned())]), ..query(1) };
    assert_eq!(page_through(&*store, one).await, ["sbx-249"]);

    // Combined with a state filter.
    store.transition("sbx-047", Running, Pausing, Changes::default(), t(1)).await.unwrap();
    let blue_running = ListQuery { states: vec![Running], ..blue };
    assert_eq!(page_through(&*store, blue_running).await, ["sbx-007", "sbx-087", "sbx-127", "sbx-167", "sbx-207", "sbx-247"]);
}

async fn bad_queries(store: Arc<dyn Store>) {
    store.insert(&record("sbx-1", "owner-a", 0)).await.unwrap();
    let bad_tokens = [
        "not hex".to_owned(),
        "abc".to_owned(),
        String::new(),
        hex::encode("no-separator"),
        hex::encode("12x:sbx-1"),
        hex::encode("12:"),
        hex::encode([0xc3, 0x28, b':', b'a']),
    ];
    for token in bad_tokens {
        let q = ListQuery { next_token: Some(token.clone()), ..query(3) };
        assert!(matches!(store.list(&q).await, Err(StoreError::BadToken)), "token {token:?}");
    }
    for limit in [0, 1001, u32::MAX] {
        assert!(matches!(store.list(&query(limit)).await, Err(StoreError::BadQuery(_))), "limit {limit}");
    }
    assert_eq!(store.list(&query(1000)).await.unwrap().items.len(), 1);
}

async fn sweeps(store: Arc<dyn Store>) {
    let now = t(100_000);
    let with = |id: &str, state, created: i64, end: i64| SandboxRecord { state, end_at: t(end), ..record(id, "owner-a", created) };
    let records = [
        with("run-past", Running, 5, 99_000),
        with("run-now", Running, 4, 100_000),
        with("run-future", Running, 3, 100_001),
        with("run-long-past", Running, 6, 1_000),
        with("pausing-past", Pausing, 1, 1_000),
        with("paused-old", Paused, 10, 1_000),
        with("paused-cutoff", Paused, 50, 1_000),
        with("paused-new", Paused, 60, 1_000),
        with("resuming-old", Resuming, 0, 1_000),
        with("creating-past", Creating, 0, 1_000),
    ];
    for r in &records {
        store.insert(r).await.unwrap();
    }
    let ids = |rs: Vec<SandboxRecord>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    // Longest overdue first.
    assert_eq!(ids(store.expired(now).await.unwrap()), ["run-long-past", "run-past", "run-now"]);
    assert_eq!(store.expired(now).await.unwrap()[0], records[3]);
    // Sub-millisecond: 100_000.5 ms is still the 100_000th millisecond.
    assert_eq!(store.expired(now + Duration::microseconds(500)).await.unwrap().len(), 3);
    assert!(store.expired(t(0)).await.unwrap().is_empty());

    assert_eq!(ids(store.retention_due(t(50)).await.unwrap()), ["paused-old"]);
    assert_eq!(ids(store.retention_due(t(51)).await.unwrap()), ["paused-old", "paused-cutoff"]);
    assert!(store.retention_due(t(10)).await.unwrap().is_empty());
}

async fn usage(store: Arc<dyn Store>) {
    store.insert(&record("sbx-a1", "owner-a", 1)).await.unwrap();
    store.insert(&SandboxRecord { state: Paused, cpu_count: 8, memory_mb: 8192, ..record("sbx-a2", "owner-a", 2) }).await.unwrap();
    store.insert(&record("sbx-b1", "owner-b", 0)).await.unwrap();
    store.insert(&record("sbx-a0", "owner-a", 0)).await.unwrap();
    let stopped = store.transition("sbx-a0", Running, Killing, Changes { add_running_ms: 766, ..Changes::default() }, t(10)).await.unwrap();
    assert_eq!(stopped.running_ms, 2000);
    store.delete("sbx-a0", t(11)).await.unwrap();

    let a = store.usage(Some("owner-a")).await.unwrap();
    let live = |id: &str, state, cpu_count, memory_mb, created| UsageRow {
        sandbox_id: id.into(),
        owner: "owner-a".into(),
        state: Some(state),
        running_ms: 1234,
        paused_ms: 567,
        cpu_count,
        memory_mb,
        created_at: t(created),
        deleted_at: None,
    };
    assert_eq!(
        a,
        [
            UsageRow {
                sandbox_id: "sbx-a0".into(),
                owner: "owner-a".into(),
                state: None,
                running_ms: 2000,
                paused_ms: 567,
                cpu_count: 2,
                memory_mb: 512,
                created_at: t(0),
                deleted_at: Some(t(11)),
            },
            live("sbx-a1", Running, 2, 512, 1),
            live("sbx-a2", Paused, 8, 8192, 2),
        ]
    );
    let b = store.usage(Some("owner-b")).await.unwrap();
    assert_eq!(b.iter().map(|u| u.sandbox_id.as_str()).collect::<Vec<_>>(), ["sbx-b1"]);
    let everyone = store.usage(None).await.unwrap();
    assert_eq!(everyone.iter().map(|u| u.sandbox_id.as_str()).collect::<Vec<_>>(), ["sbx-a0", "sbx-b1", "sbx-a1", "sbx-a2"]);
    assert!(store.usage(Some("nobody")).await.unwrap().is_empty());
}

/// One test per case on `$backend`, every case on a fresh store.
macro_rules! cases {
    ($backend:ident: $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let fixture = super::$backend().await;
                super::$case(fixture.store.clone()).await;
            }
        )*
    };
}

/// The whole suite against one store.
macro_rules! suite {
    ($backend:ident) => {
        mod $backend {
            cases!($backend: round_trip, transition_matrix, concurrent_transitions, set_end_at, set_network, delete, pagination,
                metadata_filter, bad_queries, sweeps, usage);
        }
    };
}

suite!(memory);
suite!(sqlite_memory);
suite!(sqlite_file);
