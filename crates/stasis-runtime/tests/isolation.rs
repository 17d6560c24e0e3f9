//! What code inside a sandbox cannot do (root only). Each check fails if the sandbox can.

mod common;

use stasis_runtime::{ExecOutput, Limits, Runtime, RuncRuntime, SandboxId, SandboxSpec};
use std::path::PathBuf;
use std::time::Duration;

async fn sh(rt: &RuncRuntime, id: &SandboxId, cmd: &str) -> ExecOutput {
    common::sh_within(rt, id, cmd, Duration::from_secs(120)).await
}

async fn new_sandbox(rt: &RuncRuntime, limits: Limits) -> SandboxId {
    let id = SandboxId::generate();
    rt.create(&id, SandboxSpec { template: "base".into(), limits, env: Default::default(), network: Default::default() }).await.unwrap();
    id
}

/// Call a raw syscall by number from python inside the sandbox; prints "<ret> <errno>".
fn syscall_script(nr: u32) -> String {
    format!("python3 -c 'import ctypes; l = ctypes.CDLL(None, use_errno=True); r = l.syscall({nr}, 0, 0, 0, 0, 0); print(r, ctypes.get_errno())'")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_is_contained() {
    let rt = common::open_runtime(&PathBuf::from("/var/lib/stasis-test-isolation"), None).await;
    let a = new_sandbox(&rt, Limits { memory_mib: 128, pids: 64, ..Limits::default() }).await;
    let b = new_sandbox(&rt, Limits::default()).await;

    // Processes: only its own (envd and what it runs), not the host's, not another sandbox's.
    sh(&rt, &b, "nohup sleep 1000 >/dev/null 2>&1 &").await;
    let ps = sh(&rt, &a, "ps -eo comm=").await.stdout_str();
    let comms: Vec<&str> = ps.lines().map(str::trim).collect();
    assert!(comms.iter().all(|c| ["stasis-envd", "sh", "ps"].contains(c)), "sandbox a sees {comms:?}");
    assert!(!comms.contains(&"sleep"), "a sees b's process");

    // Files: each sandbox has its own root; the host's data dir is not there.
    sh(&rt, &b, "echo secret > /root/b-only").await;
    assert_ne!(sh(&rt, &a, "cat /root/b-only").await.exit_code, 0, "a reads b's file");
    assert_ne!(sh(&rt, &a, "ls /var/lib/stasis-test-isolation").await.exit_code, 0, "a sees the host's data dir");

    // Network: the sandbox has its own link out, but no host address is reachable through it
    // (tests/network.rs covers egress, other sandboxes and the policy).
    let host = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = host.local_addr().unwrap().port();
    let out = sh(&rt, &a, &format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\"")).await;
    assert_ne!(out.exit_code, 0, "a reached a host port on loopback");
    for addr in common::host_ipv4_addresses() {
        let out = sh(&rt, &a, &format!("python3 -c \"import socket; socket.create_connection(('{addr}', {port}), 2)\"")).await;
        assert_ne!(out.exit_code, 0, "a reached a host port on {addr}");
    }

    // Root inside is host uid 100000; privileged calls are refused even to it.
    for (name, nr) in [("kexec_load", 246), ("bpf", 321), ("perf_event_open", 298), ("keyctl", 250), ("init_module", 175)] {
        let out = sh(&rt, &a, &syscall_script(nr)).await.stdout_str();
        assert_eq!(out.trim(), "-1 1", "{name} must fail with EPERM, got {out:?}");
    }
    assert_ne!(sh(&rt, &a, "mount -t tmpfs none /mnt").await.exit_code, 0, "mount");
    // ptrace of a host pid: host pids do not exist inside.
    let out = sh(&rt, &a, &format!("kill -0 {} 2>&1", std::process::id())).await;
    assert_ne!(out.exit_code, 0, "the test process's host pid is visible inside");

    // A fork bomb stops at the pids limit; the sandbox survives it.
    let out = sh(&rt, &a, "python3 -c \"
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print('stopped', n, e.errno)
\"").await;
    let text = out.stdout_str();
    let forked: usize = text.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
    assert!(text.starts_with("stopped") && forked < 64, "fork bomb: {text:?} {}", String::from_utf8_lossy(&out.stderr));
    sh(&rt, &a, "pkill sleep; pkill -f 'import os, time'; true").await;

    // A memory hog is killed inside its own cgroup; the sandbox and its neighbour go on.
    let out = sh(&rt, &a, "python3 -c 'a = bytearray(512 << 20); print(len(a))'").await;
    assert_ne!(out.exit_code, 0, "a 512 MiB allocation in a 128 MiB sandbox must not succeed");
    assert_eq!(sh(&rt, &a, "echo alive").await.stdout_str(), "alive\n", "sandbox a survives its OOM");
    assert_eq!(sh(&rt, &b, "echo alive").await.stdout_str(), "alive\n", "sandbox b is not affected");

    rt.kill(&a).await.unwrap();
    rt.kill(&b).await.unwrap();
}
