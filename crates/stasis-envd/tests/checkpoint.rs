//! envd survives a CRIU checkpoint/restore (what pause/resume does to a sandbox): the same pids
//! are listed, `Connect` re-attaches to a process's live output, a PTY shell keeps its state,
//! and a polled watcher keeps reporting. Runs CRIU directly on the host (as root); processes run
//! as root because on the host CRIU lacks CAP_SYS_RESOURCE to dump other users' rlimits (inside
//! a sandbox's user namespace it has it). Skipped, loudly, only when `criu` is not installed.

mod common;

use common::*;
use serde_json::json;
use std::process::Command;
use std::time::{Duration, Instant};

fn criu(args: &[&str], dir: &std::path::Path, log: &str) {
    let out = Command::new("criu").args(args).arg("-D").arg(dir).args(["-o", log, "-v2"]).output().expect("run criu");
    let log_text = std::fs::read_to_string(dir.join(log)).unwrap_or_default();
    assert!(out.status.success(), "criu {args:?} failed: {}\n{}", String::from_utf8_lossy(&out.stderr), log_text);
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_ptys_and_watchers_survive_checkpoint_restore() {
    if !Command::new("criu").arg("--version").output().is_ok_and(|o| o.status.success()) {
        println!("SKIPPED: criu is not installed");
        return;
    }
    let mut envd = Envd::start_with(&["--default-user", "root"]).await;
    let pid = envd.pid();
    let watched = scratch("ckpt-watch");

    let mut s = envd
        .open_stream(
            "process.Process/Start",
            json!({"process": {"cmd": "/bin/bash", "args": ["-c", "i=0; while true; do echo tick$i; i=$((i+1)); sleep 0.1; done"]}, "tag": "tick"}),
            &[],
        )
        .await;
    let tick = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    drop(s);
    let mut s = envd
        .open_stream("process.Process/Start", json!({"process": {"cmd": "/bin/bash", "args": ["--norc", "-i"]}, "pty": {"size": {"cols": 80, "rows": 24}}}), &[])
        .await;
    let shell = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    drop(s);
    let (st, r) = envd.unary("process.Process/SendInput", json!({"process": {"pid": shell}, "input": {"pty": "V09SRD1iZWZvcmUtcGF1c2UK"}})).await;
    assert_eq!(st, 200, "{r}");
    let (st, r) = envd.unary("filesystem.Filesystem/CreateWatcher", json!({"path": watched})).await;
    assert_eq!(st, 200, "{r}");
    let watcher = r["watcherId"].as_str().unwrap().to_string();
    let (_, before) = envd.unary("process.Process/List", json!({})).await;

    // Pause: dump the whole tree (client connections are closed, as the proxy's are).
    let images = scratch("ckpt-images");
    criu(&["dump", "-t", &pid.to_string(), "--tcp-close"], &images, "dump.log");
    let status = envd.child.wait().unwrap();
    assert!(!status.success(), "envd was stopped by the dump");
    let start = Instant::now();
    while std::fs::metadata(format!("/proc/{tick}")).is_ok() && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(std::fs::metadata(format!("/proc/{tick}")).is_err(), "processes are gone while paused");

    // Resume.
    criu(&["restore", "--restore-detached", "--tcp-close"], &images, "restore.log");
    let client = Client { http: reqwest::Client::new(), ..envd.client.clone() };
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.http.get(client.url("/health")).send().await.map(|r| r.status().as_u16()).ok() != Some(204) {
        assert!(Instant::now() < deadline, "envd did not answer after restore");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let result = std::panic::AssertUnwindSafe(async {
        let (_, after) = client.unary("process.Process/List", json!({})).await;
        assert_eq!(after, before, "same processes, same pids");

        let mut s = client.open_stream("process.Process/Connect", json!({"process": {"tag": "tick"}}), &[]).await;
        assert_eq!(s.data(5).await["event"]["start"]["pid"], tick);
        let out = b64(&s.data(5).await["event"]["data"]["stdout"]);
        assert!(String::from_utf8_lossy(&out).starts_with("tick"));
        drop(s);

        let mut s = client.open_stream("process.Process/Connect", json!({"process": {"pid": shell}}), &[]).await;
        s.data(5).await;
        let (st, _) = client.unary("process.Process/SendInput", json!({"process": {"pid": shell}, "input": {"pty": "ZWNobyB3b3JkPSRXT1JECg=="}})).await;
        assert_eq!(st, 200);
        let mut out = String::new();
        while !out.contains("word=before-pause") {
            out.push_str(&String::from_utf8_lossy(&b64(&s.data(5).await["event"]["data"]["pty"])));
        }

        std::fs::write(watched.join("after-resume"), "x").unwrap();
        let mut seen = false;
        for _ in 0..50 {
            let (st, r) = client.unary("filesystem.Filesystem/GetWatcherEvents", json!({"watcherId": watcher})).await;
            assert_eq!(st, 200, "{r}");
            seen |= r["events"].as_array().is_some_and(|e| e.iter().any(|e| e["name"] == "after-resume"));
            if seen {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(seen, "watcher reports events after resume");

        // New processes still get their exit status from the reaper.
        let (events, _) = client.run("exit 5").await;
        assert_eq!(end_of(&events)["exitCode"], 5);
    });
    let outcome = futures_util::FutureExt::catch_unwind(result).await;
    for p in [tick as i32, shell as i32, pid as i32] {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
