//! Many pause/resume cycles on one sandbox (root only): nothing lost, nothing leaked.
//! `STASIS_CYCLES` sets the count (CI: 100; the full soak is 1000).

mod common;

use stasis_runtime::{ExecRequest, Limits, Runtime, SandboxId, SandboxSpec};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Host mounts under `dir` (this test's sandboxes only: other work on the host moves the rest).
fn mounts_under(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_to_string("/proc/self/mountinfo").unwrap().lines().filter(|l| l.contains(&needle)).count()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// cgroup directories of sandbox `id`, over all hierarchies.
fn cgroup_dirs(id: &SandboxId) -> usize {
    std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .filter(|c| c.path().join("stasis").join(id.as_str()).exists())
        .count()
}

/// Zombie processes that belonged to sandbox `id`.
fn zombies_of(id: &SandboxId) -> usize {
    let needle = format!("/stasis/{id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_to_string(e.path().join("cgroup")).is_ok_and(|c| c.contains(&needle)))
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
        .count()
}

fn dir_bytes(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir).into_iter().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}


#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_resume_cycles_lose_nothing_and_leak_nothing() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root (CI runs it as root)");
    let cycles: usize = std::env::var("STASIS_CYCLES").ok().and_then(|c| c.parse().ok()).unwrap_or(100);
    let data = PathBuf::from("/var/lib/stasis-test-cycles");
    let rt = common::open_runtime(&data, None).await;

    let id = SandboxId::generate();
    rt.create(&id, SandboxSpec { template: "base".into(), limits: Limits { memory_mib: 256, ..Limits::default() }, env: Default::default(), network: Default::default() })
        .await
        .unwrap();
    // The counter only moves when asked, so the test knows exactly what it must be.
    common::start_counter(&rt, &id).await;
    assert_eq!(common::counter(&rt, &id).await, 1);

    let sdir = data.join("sandboxes").join(id.as_str());
    let sandboxes_dir = data.join("sandboxes");
    let (fds0, mounts0, cgroups0) = (open_fds(), mounts_under(&sandboxes_dir), cgroup_dirs(&id));
    assert_eq!(mounts0, 1, "the running sandbox's overlay");
    assert!(cgroups0 > 0, "the running sandbox's cgroups");
    let mut upper_peak = 0;
    let started = Instant::now();
    for cycle in 1..=cycles {
        let out = rt.exec(&id, ExecRequest::new(["/bin/sh", "-c", &format!("echo {cycle} >> /root/cycles.log")])).await.unwrap();
        assert_eq!(out.exit_code, 0, "append {cycle}");
        rt.pause(&id).await.unwrap_or_else(|e| panic!("pause {cycle}: {e}"));
        let paused_bytes = dir_bytes(&sdir);
        rt.resume(&id).await.unwrap_or_else(|e| panic!("resume {cycle}: {e}"));
        assert_eq!(common::counter(&rt, &id).await, cycle as u64 + 1, "the in-memory counter after cycle {cycle}");
        // On disk: the upper dir, plus one checkpoint while paused, never an accumulation.
        upper_peak = upper_peak.max(dir_bytes(&sdir.join("upper")));
        assert!(paused_bytes < upper_peak + (64 << 20), "cycle {cycle}: {paused_bytes} bytes on disk while paused");
        assert!(!sdir.join("checkpoint").exists(), "cycle {cycle}: the used checkpoint is removed");
    }
    eprintln!("{cycles} cycles in {:?}", started.elapsed());
    let out = rt.exec(&id, ExecRequest::new(["cat", "/root/cycles.log"])).await.unwrap();
    let expected: String = (1..=cycles).map(|c| format!("{c}\n")).collect();
    assert_eq!(out.stdout_str(), expected, "every append survived");
    assert!(open_fds() <= fds0 + 2, "fds grew from {fds0} to {}", open_fds());
    assert_eq!(mounts_under(&sandboxes_dir), mounts0, "mounts");
    assert_eq!(cgroup_dirs(&id), cgroups0, "cgroups");
    assert_eq!(zombies_of(&id), 0, "zombies of the sandbox");
    rt.kill(&id).await.unwrap();
    assert_eq!((mounts_under(&sandboxes_dir), cgroup_dirs(&id), zombies_of(&id)), (0, 0, 0), "after kill");
}
