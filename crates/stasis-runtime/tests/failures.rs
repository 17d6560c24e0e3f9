//! Failures during pause and resume (root only): CRIU failing, the disk filling up. A sandbox
//! always ends in a defined state with its data: running after a failed pause, paused after a
//! failed resume.

mod common;

use stasis_runtime::{ExecRequest, Limits, Runtime, RuncRuntime, RuntimeConfig, RuntimeError, SandboxId, SandboxSpec, SandboxStatus};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A counter holding `mib` MiB that answers on port 7000 with "<count> <memory intact>".
async fn start_worker(rt: &RuncRuntime, id: &SandboxId, mib: usize) {
    let script = format!(
        "import hashlib, os, socket, time\nblob = bytearray(os.urandom(1 << 20)) * {mib}\nd = hashlib.sha256(blob).digest()\nn = 0\ns = socket.socket(); s.bind(('127.0.0.1', 7000)); s.listen(8); s.settimeout(0.02)\nwhile True:\n    n += 1\n    try:\n        c, _ = s.accept(); c.sendall(f'{{n}} {{hashlib.sha256(blob).digest() == d}}'.encode()); c.close()\n    except socket.timeout:\n        pass\n"
    );
    let out = rt.exec(id, ExecRequest::new(["/bin/sh", "-c", "nohup python3 -c \"$0\" >/dev/null 2>&1 &", &script])).await.unwrap();
    assert_eq!(out.exit_code, 0);
}

async fn ask(rt: &RuncRuntime, id: &SandboxId) -> (u64, bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut s) = rt.connect(id, 7000).await {
            let mut text = String::new();
            if s.read_to_string(&mut text).await.is_ok() {
                if let Some((n, ok)) = text.split_once(' ') {
                    return (n.parse().unwrap(), ok == "True");
                }
            }
        }
        assert!(Instant::now() < deadline, "worker never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spec(memory_mib: u64) -> SandboxSpec {
    SandboxSpec { template: "base".into(), limits: Limits { memory_mib, ..Limits::default() }, env: Default::default(), network: Default::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn criu_failing_during_pause_or_resume_leaves_a_usable_sandbox() {
    let dir = PathBuf::from("/var/lib/stasis-test-criu-failure");
    std::fs::create_dir_all(&dir).unwrap();
    let flag = dir.join("fail-criu");
    let _ = std::fs::remove_file(&flag);
    let wrapper = dir.join("criu-wrapper");
    let real = RuntimeConfig::with_data_dir(dir.clone(), common::envd_binary()).criu_binary;
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nif [ -e {} ]; then echo 'injected CRIU failure' >&2; exit 1; fi\nexec {} \"$@\"\n", flag.display(), real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rt = common::open_runtime(&dir.join("data"), Some(wrapper)).await;

    let id = SandboxId::generate();
    rt.create(&id, spec(256)).await.unwrap();
    start_worker(&rt, &id, 16).await;
    let before = ask(&rt, &id).await;

    std::fs::write(&flag, "").unwrap();
    let err = rt.pause(&id).await.unwrap_err();
    assert!(matches!(err, RuntimeError::CheckpointFailed { .. }), "{err}");
    assert!(err.to_string().contains("injected CRIU failure") || err.to_string().contains("criu"), "the reason is reported: {err}");
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Running);
    let during = ask(&rt, &id).await;
    assert!(during.0 > before.0 && during.1, "still running with its memory: {before:?} -> {during:?}");
    let slot = rt.network_slot(&id).expect("networking is on");
    let link = rt.exec(&id, ExecRequest::new(["ip", "-4", "-o", "addr", "show", "eth0"])).await.unwrap().stdout_str();
    assert!(link.contains(&format!("{}/30", slot.sandbox)), "the network is back after the failed pause: {link:?}");
    std::fs::remove_file(&flag).unwrap();

    rt.pause(&id).await.unwrap();
    std::fs::write(&flag, "").unwrap();
    let err = rt.resume(&id).await.unwrap_err();
    assert!(matches!(err, RuntimeError::RestoreFailed { .. }), "{err}");
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Paused, "a failed resume leaves it paused");
    std::fs::remove_file(&flag).unwrap();
    rt.resume(&id).await.unwrap();
    let after = ask(&rt, &id).await;
    assert!(after.0 > during.0 && after.1, "resumed with its memory: {during:?} -> {after:?}");
    rt.kill(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_pause_and_the_sandbox_keeps_running() {
    let dir = PathBuf::from("/var/lib/stasis-test-disk-full");
    let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
    std::fs::create_dir_all(&dir).unwrap();
    // Room for envd and a sandbox, not for 160 MiB of images.
    let envd_mib = std::fs::metadata(common::envd_binary()).unwrap().len() >> 20;
    let size = format!("size={}m", envd_mib + 80);
    nix::mount::mount(Some("tmpfs"), &dir, Some("tmpfs"), nix::mount::MsFlags::empty(), Some(size.as_str())).unwrap();
    let result = {
        let dir = dir.clone();
        tokio::spawn(async move {
            let rt = common::open_runtime(&dir, None).await;
            let id = SandboxId::generate();
            rt.create(&id, spec(512)).await.unwrap();
            start_worker(&rt, &id, 160).await;
            rt.exec(&id, ExecRequest::new(["/bin/sh", "-c", "echo kept > /root/file"])).await.unwrap();
            let before = ask(&rt, &id).await;
            let err = rt.pause(&id).await.unwrap_err();
            assert!(matches!(err, RuntimeError::CheckpointFailed { .. }), "{err}");
            assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Running);
            let after = ask(&rt, &id).await;
            assert!(after.0 > before.0 && after.1, "still running with its memory: {before:?} -> {after:?}");
            let out = rt.exec(&id, ExecRequest::new(["cat", "/root/file"])).await.unwrap();
            assert_eq!(out.stdout_str(), "kept\n");
            assert!(!dir.join("sandboxes").join(id.as_str()).join("checkpoint.partial").exists(), "no partial images left");
            rt.kill(&id).await.unwrap();
        })
        .await
    };
    let _ = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH);
    result.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_is_flushed_to_disk_before_it_answers_or_right_after() {
    for sync_pause in [true, false] {
        let data = PathBuf::from(format!("/var/lib/stasis-test-durable-{sync_pause}"));
        let mut cfg = common::config(&data);
        cfg.sync_pause = sync_pause;
        let rt = common::open_runtime_with(cfg).await;
        let id = SandboxId::generate();
        rt.create(&id, spec(128)).await.unwrap();
        rt.exec(&id, ExecRequest::new(["/bin/sh", "-c", "echo kept > /root/file"])).await.unwrap();
        rt.pause(&id).await.unwrap();
        let mark = data.join("sandboxes").join(id.as_str()).join("checkpoint/durable");
        if sync_pause {
            assert!(mark.exists(), "sync_pause: flushed before the pause answered");
        } else {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !mark.exists() {
                assert!(std::time::Instant::now() < deadline, "the background flush never marked the checkpoint durable");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        rt.resume(&id).await.unwrap();
        let out = rt.exec(&id, ExecRequest::new(["cat", "/root/file"])).await.unwrap();
        assert_eq!(out.stdout_str(), "kept\n");
        rt.kill(&id).await.unwrap();
    }
}
