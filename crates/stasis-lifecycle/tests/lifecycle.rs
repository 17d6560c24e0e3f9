//! Operation-level tests on fakes: restart reconciliation, races decided by the store's
//! compare-and-set, failed runtime calls, and usage accounting through all of it.

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use stasis_lifecycle::{Clock, CreateRequest, Lifecycle, LifecycleConfig, LifecycleError, ManualClock, NoopGuest};
use stasis_runtime::fake::FakeRuntime;
use stasis_runtime::{Limits, Runtime, SandboxId, SandboxSpec, SandboxStatus};
use stasis_store::{Changes, ListQuery, MemoryStore, OnTimeout, Page, SandboxRecord, Store, StoreError, UsageRow};
use stasis_types::SandboxState;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use SandboxState::*;

const OWNER: &str = "owner-a";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

/// A `MemoryStore` whose reads can be slowed down, so two operations both read a state before
/// either claims it: the race the compare-and-set must decide.
#[derive(Default)]
struct SlowStore {
    inner: MemoryStore,
    get_delay_ms: AtomicU64,
}

impl SlowStore {
    /// Reads of one record and of the sweeper's lists return what was there, `d` later.
    fn slow_reads(&self, d: Duration) {
        self.get_delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    async fn lag(&self) {
        let d = self.get_delay_ms.load(Ordering::SeqCst);
        if d > 0 {
            tokio::time::sleep(Duration::from_millis(d)).await;
        }
    }
}

#[async_trait]
impl Store for SlowStore {
    async fn insert(&self, record: &SandboxRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn get(&self, id: &str) -> Result<Option<SandboxRecord>, StoreError> {
        let r = self.inner.get(id).await;
        self.lag().await;
        r
    }
    async fn transition(&self, id: &str, expected: SandboxState, to: SandboxState, changes: Changes, now: DateTime<Utc>) -> Result<SandboxRecord, StoreError> {
        self.inner.transition(id, expected, to, changes, now).await
    }
    async fn set_end_at(&self, id: &str, state: SandboxState, end_at: DateTime<Utc>) -> Result<SandboxRecord, StoreError> {
        self.inner.set_end_at(id, state, end_at).await
    }
    async fn set_network(&self, id: &str, allow: Option<bool>, network: Option<serde_json::Value>) -> Result<SandboxRecord, StoreError> {
        self.inner.set_network(id, allow, network).await
    }
    async fn delete(&self, id: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.inner.delete(id, now).await
    }
    async fn list(&self, query: &ListQuery) -> Result<Page, StoreError> {
        self.inner.list(query).await
    }
    async fn all(&self) -> Result<Vec<SandboxRecord>, StoreError> {
        self.inner.all().await
    }
    async fn expired(&self, now: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let r = self.inner.expired(now).await;
        self.lag().await;
        r
    }
    async fn retention_due(&self, created_before: DateTime<Utc>) -> Result<Vec<SandboxRecord>, StoreError> {
        let r = self.inner.retention_due(created_before).await;
        self.lag().await;
        r
    }
    async fn usage(&self, owner: Option<&str>) -> Result<Vec<UsageRow>, StoreError> {
        self.inner.usage(owner).await
    }
}

struct Fixture {
    lc: Lifecycle,
    store: Arc<SlowStore>,
    runtime: Arc<FakeRuntime>,
    clock: Arc<ManualClock>,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_config(LifecycleConfig::default())
    }

    fn with_config(cfg: LifecycleConfig) -> Fixture {
        let store = Arc::new(SlowStore::default());
        let runtime = Arc::new(FakeRuntime::new());
        let clock = Arc::new(ManualClock::new(t0()));
        let lc = Lifecycle::new(store.clone(), runtime.clone(), Arc::new(NoopGuest), clock.clone(), cfg);
        Fixture { lc, store, runtime, clock }
    }

    async fn create(&self) -> String {
        let req = CreateRequest { template: "base".into(), ..Default::default() };
        self.lc.create(OWNER, req).await.unwrap().id
    }

    async fn state(&self, id: &str) -> Option<SandboxState> {
        self.store.get(id).await.unwrap().map(|r| r.state)
    }

    fn runtime_status(&self, id: &str) -> Option<SandboxStatus> {
        self.runtime.status(&SandboxId::parse(id).unwrap())
    }

    /// A record as a crashed server may have left it, and optionally a runtime sandbox.
    async fn leftover(&self, state: SandboxState, runtime: Option<SandboxStatus>) -> String {
        let id = SandboxId::generate();
        let now = self.clock.now();
        let rec = SandboxRecord {
            id: id.to_string(),
            owner: OWNER.into(),
            template: "base".into(),
            alias: None,
            state,
            cpu_count: 2,
            memory_mb: 512,
            disk_size_mb: 1024,
            metadata: BTreeMap::new(),
            env_vars: BTreeMap::new(),
            envd_access_token: "tok".into(),
            envd_version: "0.4.0".into(),
            on_timeout: OnTimeout::Kill,
            auto_pause_memory: true,
            auto_resume: false,
            allow_internet_access: None,
            network: None,
            created_at: now,
            started_at: now,
            end_at: now + secs(300),
            state_since: now,
            running_ms: 0,
            paused_ms: 0,
        };
        self.store.insert(&rec).await.unwrap();
        if let Some(status) = runtime {
            self.orphan(&id, status).await;
        }
        id.to_string()
    }

    async fn orphan(&self, id: &SandboxId, status: SandboxStatus) {
        self.runtime.create(id, SandboxSpec { template: "base".into(), limits: Limits::default(), env: BTreeMap::new(), network: Default::default() }).await.unwrap();
        if status == SandboxStatus::Paused {
            self.runtime.pause(id).await.unwrap();
        }
    }
}

#[tokio::test]
async fn reconcile_makes_records_and_runtime_agree() {
    let f = Fixture::new();
    let pausing_paused = f.leftover(Pausing, Some(SandboxStatus::Paused)).await;
    let pausing_running = f.leftover(Pausing, Some(SandboxStatus::Running)).await;
    let resuming_running = f.leftover(Resuming, Some(SandboxStatus::Running)).await;
    let resuming_paused = f.leftover(Resuming, Some(SandboxStatus::Paused)).await;
    let running_missing = f.leftover(Running, None).await;
    let paused_missing = f.leftover(Paused, None).await;
    let creating_running = f.leftover(Creating, Some(SandboxStatus::Running)).await;
    let creating_missing = f.leftover(Creating, None).await;
    let killing_running = f.leftover(Killing, Some(SandboxStatus::Running)).await;
    let running_ok = f.leftover(Running, Some(SandboxStatus::Running)).await;
    let paused_ok = f.leftover(Paused, Some(SandboxStatus::Paused)).await;
    let running_but_paused = f.leftover(Running, Some(SandboxStatus::Paused)).await;
    let paused_but_running = f.leftover(Paused, Some(SandboxStatus::Running)).await;
    let stray = SandboxId::generate();
    f.orphan(&stray, SandboxStatus::Running).await;
    let stray_paused = SandboxId::generate();
    f.orphan(&stray_paused, SandboxStatus::Paused).await;

    f.clock.advance(secs(5));
    f.lc.reconcile().await.unwrap();

    let expect = [
        (&pausing_paused, Some(Paused), Some(SandboxStatus::Paused)),
        (&pausing_running, Some(Running), Some(SandboxStatus::Running)),
        (&resuming_running, Some(Running), Some(SandboxStatus::Running)),
        (&resuming_paused, Some(Paused), Some(SandboxStatus::Paused)),
        (&running_missing, None, None),
        (&paused_missing, None, None),
        (&creating_running, None, None),
        (&creating_missing, None, None),
        (&killing_running, None, None),
        (&running_ok, Some(Running), Some(SandboxStatus::Running)),
        (&paused_ok, Some(Paused), Some(SandboxStatus::Paused)),
        (&running_but_paused, Some(Paused), Some(SandboxStatus::Paused)),
        (&paused_but_running, Some(Running), Some(SandboxStatus::Running)),
    ];
    for (id, state, status) in &expect {
        assert_eq!(f.state(id).await, *state, "record of {id}");
        assert_eq!(f.runtime_status(id), *status, "runtime of {id}");
    }
    assert_eq!(f.runtime.status(&stray), None, "a runtime sandbox without a record survived");
    assert_eq!(f.runtime.status(&stray_paused), None);
    let runtime_ids: Vec<String> = f.runtime.list().await.unwrap().into_iter().map(|i| i.id.to_string()).collect();
    assert_eq!(runtime_ids.len(), 8, "{runtime_ids:?}");

    // What was kept is usable: running ones pause, paused ones resume.
    for (id, state, _) in &expect {
        match state {
            Some(Running) => {
                f.lc.pause(Some(OWNER), id).await.unwrap();
                assert_eq!(f.runtime_status(id), Some(SandboxStatus::Paused));
            }
            Some(Paused) => {
                let r = f.lc.connect(Some(OWNER), id, None).await.unwrap();
                assert!(r.resumed);
                assert_eq!(r.record.end_at, f.clock.now() + secs(300));
                assert_eq!(f.runtime_status(id), Some(SandboxStatus::Running));
            }
            _ => {}
        }
    }

    // A second pass changes nothing.
    let before = f.store.all().await.unwrap();
    f.lc.reconcile().await.unwrap();
    assert_eq!(f.store.all().await.unwrap(), before);
}

#[tokio::test]
async fn reconcile_keeps_running_time_of_an_interrupted_pause() {
    let f = Fixture::new();
    let id = f.create().await;
    f.clock.advance(secs(10));
    // The server died after the runtime checkpointed but before it recorded Paused.
    f.store.transition(&id, Running, Pausing, Changes::default(), f.clock.now()).await.unwrap();
    f.runtime.pause(&SandboxId::parse(&id).unwrap()).await.unwrap();
    f.clock.advance(secs(20));
    f.lc.reconcile().await.unwrap();
    assert_eq!(f.state(&id).await, Some(Paused));
    let usage = f.lc.usage(OWNER).await.unwrap();
    assert_eq!(usage.running_seconds, 10.0, "{usage:?}");
    assert_eq!(usage.paused_seconds, 0.0, "{usage:?}");
}

#[tokio::test]
async fn reconcile_keeps_running_time_of_a_rolled_back_pause() {
    let f = Fixture::new();
    let id = f.create().await;
    f.clock.advance(secs(10));
    // The server died before the runtime checkpointed: the sandbox never stopped running.
    f.store.transition(&id, Running, Pausing, Changes::default(), f.clock.now()).await.unwrap();
    f.clock.advance(secs(20));
    f.lc.reconcile().await.unwrap();
    assert_eq!(f.state(&id).await, Some(Running));
    let usage = f.lc.usage(OWNER).await.unwrap();
    assert_eq!(usage.running_seconds, 30.0, "{usage:?}");
}

#[tokio::test]
async fn a_resume_completed_by_reconcile_gets_a_fresh_timeout() {
    let f = Fixture::new();
    let id = f.create().await;
    f.lc.pause(Some(OWNER), &id).await.unwrap();
    // Paused for longer than its old timeout, then the server died mid-resume.
    f.clock.advance(secs(3600));
    f.store.transition(&id, Paused, Resuming, Changes::default(), f.clock.now()).await.unwrap();
    f.runtime.resume(&SandboxId::parse(&id).unwrap()).await.unwrap();
    f.lc.reconcile().await.unwrap();
    // The first sweep runs right after reconcile: it must not kill what the owner resumed.
    f.lc.sweep_once().await;
    assert_eq!(f.state(&id).await, Some(Running));
    let rec = f.store.get(&id).await.unwrap().unwrap();
    assert_eq!(rec.end_at, f.clock.now() + secs(300));
}

/// `first` starts reading 10 ms before `second`; both read `running` before either claims it.
async fn staggered<A: std::future::Future, B: std::future::Future>(first: A, second: B) -> (A::Output, B::Output) {
    tokio::join!(first, async {
        tokio::time::sleep(Duration::from_millis(10)).await;
        second.await
    })
}

#[tokio::test]
async fn a_kill_that_loses_the_race_to_a_pause_waits_for_it() {
    let f = Fixture::new();
    let id = f.create().await;
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    let (pause, kill) = staggered(f.lc.pause(Some(OWNER), &id), f.lc.kill(Some(OWNER), &id)).await;
    assert!(pause.is_ok(), "{:?}", pause.err());
    assert!(kill.is_ok(), "kill refused while a pause was under way: {:?}", kill.err());
    f.store.slow_reads(Duration::ZERO);
    assert_eq!(f.state(&id).await, None);
    assert_eq!(f.runtime_status(&id), None);
    let usage = f.lc.usage(OWNER).await.unwrap();
    assert_eq!(usage.sandboxes.len(), 1);
    assert_eq!(usage.sandboxes[0].state, "deleted");
}

#[tokio::test]
async fn a_pause_that_loses_the_race_to_a_kill_is_a_conflict_or_not_found() {
    let f = Fixture::new();
    let id = f.create().await;
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    let (kill, pause) = staggered(f.lc.kill(Some(OWNER), &id), f.lc.pause(Some(OWNER), &id)).await;
    assert!(kill.is_ok(), "{:?}", kill.err());
    assert!(matches!(pause, Err(LifecycleError::Conflict(_) | LifecycleError::NotFound(_))), "{:?}", pause.map(|r| r.state));
    f.store.slow_reads(Duration::ZERO);
    assert_eq!(f.state(&id).await, None);
    assert_eq!(f.runtime_status(&id), None);
}

#[tokio::test]
async fn a_kill_that_loses_the_race_to_a_resume_waits_for_it() {
    let f = Fixture::new();
    let id = f.create().await;
    f.lc.pause(Some(OWNER), &id).await.unwrap();
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    let (resume, kill) = staggered(f.lc.connect(Some(OWNER), &id, None), f.lc.kill(Some(OWNER), &id)).await;
    assert!(resume.is_ok_and(|r| r.resumed));
    assert!(kill.is_ok(), "kill refused while a resume was under way: {:?}", kill.err());
    f.store.slow_reads(Duration::ZERO);
    assert_eq!(f.state(&id).await, None);
    assert_eq!(f.runtime_status(&id), None);
}

#[tokio::test]
async fn traffic_routed_while_a_pause_begins_is_closed_by_it() {
    let f = Fixture::new();
    let id = f.create().await;
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    // The route reads `running`, then the pause claims the sandbox and closes its connections,
    // then the route registers its connection: that one must not outlive the pause.
    let (pause, route) = staggered(f.lc.pause(Some(OWNER), &id), f.lc.route(&id, true)).await;
    assert!(pause.is_ok(), "{:?}", pause.err());
    f.store.slow_reads(Duration::ZERO);
    if let Ok(route) = route {
        assert!(route.closed.is_cancelled(), "a connection opened during the pause was left open after it");
    }
    // After the pause, routing fails, and a token taken before a kill is cancelled by it.
    assert!(matches!(f.lc.route(&id, true).await, Err(LifecycleError::NotRunning(_))));
    f.lc.connect(Some(OWNER), &id, None).await.unwrap();
    let route = f.lc.route(&id, true).await.unwrap();
    assert!(!route.closed.is_cancelled());
    f.lc.kill(Some(OWNER), &id).await.unwrap();
    assert!(route.closed.is_cancelled());
    assert!(matches!(f.lc.route(&id, true).await, Err(LifecycleError::NotFound(_))));
}

#[tokio::test]
async fn a_create_whose_agent_does_not_answer_leaves_nothing() {
    struct DeadGuest;
    #[async_trait]
    impl stasis_lifecycle::Guest for DeadGuest {
        async fn init(&self, _: &SandboxId, _: Option<&str>, _: &BTreeMap<String, String>) -> Result<(), stasis_lifecycle::GuestError> {
            Err(stasis_lifecycle::GuestError("no answer".into()))
        }
    }
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(FakeRuntime::new());
    let lc = Lifecycle::new(store.clone(), runtime.clone(), Arc::new(DeadGuest), Arc::new(ManualClock::new(t0())), LifecycleConfig::default());
    let req = CreateRequest { template: "base".into(), ..Default::default() };
    assert!(matches!(lc.create(OWNER, req).await, Err(LifecycleError::GuestUnresponsive(_))));
    assert!(store.all().await.unwrap().is_empty());
    assert!(runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_timeout_kill_spares_a_sandbox_its_owner_paused_meanwhile() {
    let f = Fixture::new();
    let id = f.create().await;
    f.clock.advance(secs(301));
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    // The sweep lists the sandbox as expired, the owner's pause claims it first.
    let (pause, _) = staggered(f.lc.pause(Some(OWNER), &id), f.lc.sweep_once()).await;
    f.store.slow_reads(Duration::ZERO);
    assert!(pause.is_ok(), "{:?}", pause.err());
    assert_eq!(f.state(&id).await, Some(Paused), "the sweeper killed a sandbox whose pause had succeeded");
    assert_eq!(f.runtime_status(&id), Some(SandboxStatus::Paused));
}

#[tokio::test]
async fn the_retention_delete_spares_a_sandbox_its_owner_resumed_meanwhile() {
    let f = Fixture::with_config(LifecycleConfig { retention: Duration::from_secs(3600), ..Default::default() });
    let id = f.create().await;
    f.lc.pause(Some(OWNER), &id).await.unwrap();
    f.clock.advance(secs(3601));
    f.runtime.set_delay(Duration::from_millis(100));
    f.store.slow_reads(Duration::from_millis(50));
    // The sweep reads its lists (timeouts, then retention: this one, paused) before the
    // owner's resume claims the sandbox, and acts on it after.
    let (_, resumed) = staggered(f.lc.sweep_once(), f.lc.connect(Some(OWNER), &id, None)).await;
    f.store.slow_reads(Duration::ZERO);
    assert!(resumed.is_ok_and(|r| r.resumed));
    assert_eq!(f.state(&id).await, Some(Running), "the sweeper deleted a sandbox whose resume had succeeded");
    assert_eq!(f.runtime_status(&id), Some(SandboxStatus::Running));
}

#[tokio::test]
async fn racing_pauses_and_resumes_leave_one_winner_each() {
    let f = Fixture::new();
    let id = f.create().await;
    f.runtime.set_delay(Duration::from_millis(50));
    f.store.slow_reads(Duration::from_millis(30));
    let (a, b) = staggered(f.lc.pause(Some(OWNER), &id), f.lc.pause(Some(OWNER), &id)).await;
    assert_eq!([a.is_ok(), b.is_ok()].iter().filter(|ok| **ok).count(), 1);
    assert!(matches!(a.err().or(b.err()), Some(LifecycleError::Conflict(_))));
    assert_eq!(f.state(&id).await, Some(Paused));
    let (a, b) = staggered(f.lc.connect(Some(OWNER), &id, None), f.lc.connect(Some(OWNER), &id, None)).await;
    let resumed = [&a, &b].iter().filter(|r| r.as_ref().is_ok_and(|r| r.resumed)).count();
    assert_eq!(resumed, 1, "exactly one connect restores the sandbox");
    assert_eq!(f.state(&id).await, Some(Running));
    assert_eq!(f.runtime_status(&id), Some(SandboxStatus::Running));
}

#[tokio::test]
async fn a_sandbox_that_vanished_is_forgotten_on_pause_and_resume() {
    let f = Fixture::new();
    let running = f.create().await;
    let paused = f.create().await;
    f.lc.pause(Some(OWNER), &paused).await.unwrap();
    f.runtime.forget(&SandboxId::parse(&running).unwrap());
    f.runtime.forget(&SandboxId::parse(&paused).unwrap());
    assert!(matches!(f.lc.pause(Some(OWNER), &running).await, Err(LifecycleError::NotFound(_))));
    assert!(matches!(f.lc.connect(Some(OWNER), &paused, None).await, Err(LifecycleError::NotFound(_))));
    assert_eq!(f.state(&running).await, None);
    assert_eq!(f.state(&paused).await, None);
}

#[tokio::test]
async fn usage_survives_failed_operations() {
    let f = Fixture::new();
    let id = f.create().await;
    f.clock.advance(secs(10));
    f.runtime.fail("pause", true);
    assert!(f.lc.pause(Some(OWNER), &id).await.is_err());
    f.runtime.fail("pause", false);
    f.clock.advance(secs(10));
    f.lc.pause(Some(OWNER), &id).await.unwrap();
    f.clock.advance(secs(100));
    f.runtime.fail("resume", true);
    assert!(f.lc.connect(Some(OWNER), &id, None).await.is_err());
    f.runtime.fail("resume", false);
    f.clock.advance(secs(100));
    f.lc.connect(Some(OWNER), &id, None).await.unwrap();
    f.clock.advance(secs(5));
    f.lc.kill(Some(OWNER), &id).await.unwrap();
    let usage = f.lc.usage(OWNER).await.unwrap();
    assert_eq!(usage.running_seconds, 25.0, "{usage:?}");
    assert_eq!(usage.paused_seconds, 200.0, "{usage:?}");
}

#[tokio::test]
async fn timeouts_are_validated() {
    let f = Fixture::new();
    for bad in [Some(0), Some(24 * 3600 + 1), Some(u64::MAX)] {
        let req = CreateRequest { template: "base".into(), timeout_secs: bad, ..Default::default() };
        assert!(matches!(f.lc.create(OWNER, req).await, Err(LifecycleError::InvalidInput(_))), "{bad:?}");
    }
    let req = CreateRequest { template: "base".into(), timeout_secs: Some(24 * 3600), ..Default::default() };
    let rec = f.lc.create(OWNER, req).await.unwrap();
    assert_eq!(rec.end_at, t0() + secs(24 * 3600));
    assert!(f.store.all().await.unwrap().len() == 1);
}
