//! Pauses kept in memory (`RuntimeConfig::park_for`, root only): a resume before the checkpoint
//! is written thaws the sandbox; after it, the sandbox is restored from the checkpoint; kill and
//! a restart of the runtime while it is parked; memory pressure cuts the wait short.

mod common;

use stasis_runtime::{ExecRequest, Limits, Runtime, RuncRuntime, RuntimeError, SandboxId, SandboxSpec, SandboxStatus};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DATA: &str = "/var/lib/stasis-test-park";

/// "FROZEN" or "THAWED"; "" once the cgroup is gone (cgroup v1 or v2).
fn freezer_state(id: &SandboxId) -> String {
    let v1 = Path::new("/sys/fs/cgroup/freezer/stasis").join(id.as_str()).join("freezer.state");
    let v2 = Path::new("/sys/fs/cgroup/stasis").join(id.as_str()).join("cgroup.freeze");
    if let Ok(s) = std::fs::read_to_string(v1) {
        return s.trim().to_owned();
    }
    match std::fs::read_to_string(v2).map(|s| s.trim().to_owned()).as_deref() {
        Ok("1") => "FROZEN".into(),
        Ok(_) => "THAWED".into(),
        Err(_) => String::new(),
    }
}

fn sandbox_dir(id: &SandboxId) -> PathBuf {
    Path::new(DATA).join("sandboxes").join(id.as_str())
}

fn checkpointed(id: &SandboxId) -> bool {
    sandbox_dir(id).join("checkpoint/manifest.json").exists()
}

async fn wait_until_checkpointed(id: &SandboxId) {
    let deadline = Instant::now() + Duration::from_secs(60);
    // The mark goes last: once it is gone, the container is too.
    while !checkpointed(id) || sandbox_dir(id).join("parked").exists() {
        assert!(Instant::now() < deadline, "a parked sandbox was not checkpointed and freed within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A runtime over the test's data dir; `fresh`: without the sandboxes an earlier run left.
async fn open(park_for: Duration, fresh: bool) -> Arc<RuncRuntime> {
    let mut cfg = common::config(Path::new(DATA));
    cfg.park_for = Some(park_for);
    if fresh {
        common::open_runtime_with(cfg).await
    } else {
        RuncRuntime::new(cfg).await.expect("reopen the runtime")
    }
}

/// A sandbox running a counter on port 7000 that moves only when read.
async fn counter_sandbox(rt: &RuncRuntime) -> SandboxId {
    let id = SandboxId::generate();
    let spec = SandboxSpec { template: "base".into(), limits: Limits { memory_mib: 256, ..Limits::default() }, env: Default::default(), network: Default::default() };
    rt.create(&id, spec).await.unwrap();
    common::start_counter(rt, &id).await;
    assert_eq!(common::counter(rt, &id).await, 1);
    id
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parked_pauses_thaw_checkpoint_and_survive_a_restart() {
    let rt = open(Duration::from_secs(3), true).await;
    let id = counter_sandbox(&rt).await;

    // Parked: paused to every caller, frozen, nothing written yet.
    let started = Instant::now();
    rt.pause(&id).await.unwrap();
    eprintln!("parked pause: {:?}", started.elapsed());
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Paused);
    assert_eq!(freezer_state(&id), "FROZEN");
    assert!(!checkpointed(&id), "no checkpoint is written before park_for");
    assert!(matches!(rt.exec(&id, ExecRequest::new(["true"])).await, Err(RuntimeError::NotRunning(_))), "exec in a parked sandbox");
    assert!(matches!(rt.connect(&id, 7000).await, Err(RuntimeError::NotRunning(_))), "connect to a parked sandbox");
    assert!(rt.stats(&id).await.is_err(), "stats of a parked sandbox");
    assert!(matches!(rt.pause(&id).await, Err(RuntimeError::AlreadyPaused(_))), "pause of a parked sandbox");

    // A resume before park_for thaws the same processes.
    let started = Instant::now();
    rt.resume(&id).await.unwrap();
    eprintln!("resume from memory: {:?}", started.elapsed());
    assert_eq!(freezer_state(&id), "THAWED");
    assert_eq!(common::counter(&rt, &id).await, 2, "the counter kept its memory");
    assert!(!sandbox_dir(&id).join("parked").exists(), "the parked mark is gone");

    // After park_for the checkpoint is written and the container (its memory) is gone; a resume
    // restores it from there.
    rt.pause(&id).await.unwrap();
    wait_until_checkpointed(&id).await;
    assert_eq!(freezer_state(&id), "", "the checkpointed sandbox's cgroup (its memory) is gone");
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Paused);
    rt.resume(&id).await.unwrap();
    assert_eq!(common::counter(&rt, &id).await, 3, "the counter came back from the checkpoint");

    // Killed while parked: nothing remains, and the scheduled checkpoint finds nothing to do.
    rt.pause(&id).await.unwrap();
    rt.kill(&id).await.unwrap();
    assert!(!sandbox_dir(&id).exists(), "the killed sandbox's dir");
    assert_eq!(freezer_state(&id), "", "the killed sandbox's cgroup");
    assert!(matches!(rt.resume(&id).await, Err(RuntimeError::NotFound(_))));

    // A restart while parked: still paused and in memory, its checkpoint scheduled again.
    let id = counter_sandbox(&rt).await;
    rt.pause(&id).await.unwrap();
    drop(rt);
    let rt = open(Duration::from_secs(60), false).await;
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Paused, "parked across a restart");
    assert_eq!(freezer_state(&id), "FROZEN");
    rt.resume(&id).await.unwrap();
    assert_eq!(common::counter(&rt, &id).await, 2, "resumed from memory after a restart");

    // A restart with a pause that wrote nothing yet and a zero park_for: written at once.
    rt.pause(&id).await.unwrap();
    drop(rt);
    let rt = open(Duration::ZERO, false).await;
    wait_until_checkpointed(&id).await;
    rt.resume(&id).await.unwrap();
    assert_eq!(common::counter(&rt, &id).await, 3, "restored after a restart");

    // Memory pressure (MemAvailable below the reserve, always here) checkpoints at once.
    drop(rt);
    let mut cfg = common::config(Path::new(DATA));
    (cfg.park_for, cfg.park_reserve_bytes) = (Some(Duration::from_secs(600)), u64::MAX);
    let rt = RuncRuntime::new(cfg).await.expect("reopen the runtime");
    rt.pause(&id).await.unwrap();
    wait_until_checkpointed(&id).await;
    rt.resume(&id).await.unwrap();
    assert_eq!(common::counter(&rt, &id).await, 4, "restored after a checkpoint forced by memory pressure");
    rt.kill(&id).await.unwrap();
}
