//! Integration tests of the runc+CRIU runtime: real runc, real CRIU, real overlayfs. Root only.
//!
//! All tests share one runtime (one data directory may only be driven by one runtime at a time);
//! the data dir is `$STASIS_TEST_DATA_DIR` or /var/lib/stasis-test, and the envd binary is
//! `$STASIS_ENVD_BINARY` or the `stasis-envd` built next to this test.

mod common;

use stasis_runtime::{ExecRequest, Limits, Runtime, RuncRuntime, RuntimeError, SandboxId, SandboxSpec, SandboxStatus};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
use tokio::sync::OnceCell;

static RUNTIME: OnceCell<Arc<RuncRuntime>> = OnceCell::const_new();

fn data_dir() -> PathBuf {
    std::env::var_os("STASIS_TEST_DATA_DIR").map(PathBuf::from).unwrap_or_else(|| "/var/lib/stasis-test".into())
}

async fn runtime() -> Arc<RuncRuntime> {
    RUNTIME.get_or_init(|| async { common::open_runtime(&data_dir(), None).await }).await.clone()
}

fn spec(memory_mib: u64) -> SandboxSpec {
    SandboxSpec { template: "base".into(), limits: Limits { memory_mib, ..Limits::default() }, env: Default::default(), network: Default::default() }
}

fn sh(cmd: &str) -> ExecRequest {
    let mut r = ExecRequest::new(["/bin/sh", "-c", cmd]);
    r.timeout = Some(Duration::from_secs(60));
    r
}

async fn run(rt: &RuncRuntime, id: &SandboxId, cmd: &str) -> String {
    let out = rt.exec(id, sh(cmd)).await.unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"));
    assert_eq!(out.exit_code, 0, "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout_str()
}

/// Start `script` as a detached background python process inside the sandbox.
async fn spawn_python(rt: &RuncRuntime, id: &SandboxId, script: &str) {
    let mut req = ExecRequest::new(["/bin/sh", "-c", "nohup python3 -c \"$0\" >/dev/null 2>&1 &", script]);
    req.timeout = Some(Duration::from_secs(30));
    let out = rt.exec(id, req).await.unwrap();
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
}

/// A worker holding `mib` MiB of touched memory, counting every 20 ms into a log file, and
/// answering on 127.0.0.1:`port` with "<count> <sha256 of its memory>".
fn worker(mib: usize, port: u16, log: &str) -> String {
    format!(
        r#"
import hashlib, os, socket, time
blob = bytearray(os.urandom(1 << 20)) * {mib}
digest = hashlib.sha256(blob).hexdigest()
open('/tmp/worker.pid', 'w').write(str(os.getpid()))
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', {port})); srv.listen(16); srv.setblocking(False)
n = 0
while True:
    n += 1
    with open('{log}', 'a') as f:
        f.write(f'{{n}}\n')
    try:
        c, _ = srv.accept()
        c.setblocking(True)
        c.sendall(f'{{n}} {{hashlib.sha256(blob).hexdigest() == digest}} {{os.getpid()}}\n'.encode())
        c.close()
    except BlockingIOError:
        pass
    time.sleep(0.02)
"#
    )
}

#[derive(Debug)]
struct Answer {
    count: u64,
    memory_intact: bool,
    pid: u32,
}

/// Ask the worker through `connect(port)`, retrying while it starts.
async fn ask(rt: &RuncRuntime, id: &SandboxId, port: u16) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match rt.connect(id, port).await {
            Ok(mut s) => {
                let mut text = String::new();
                tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut text)).await.unwrap().unwrap();
                let parts: Vec<&str> = text.split_whitespace().collect();
                if parts.len() == 3 {
                    return Answer { count: parts[0].parse().unwrap(), memory_intact: parts[1] == "True", pid: parts[2].parse().unwrap() };
                }
            }
            Err(RuntimeError::PortNotOpen(..)) => {}
            Err(e) => panic!("connect: {e}"),
        }
        assert!(Instant::now() < deadline, "worker on port {port} never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Host processes whose cgroup is this sandbox's.
fn processes_of(id: &SandboxId) -> Vec<u32> {
    let needle = format!("/stasis/{id}");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(&needle)))
        .collect()
}

fn leftovers(id: &SandboxId) -> Vec<String> {
    let mut found = Vec::new();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(mountinfo.lines().filter(|l| l.contains(id.as_str())).map(|l| format!("mount: {l}")));
    for controller in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let p = controller.path().join("stasis").join(id.as_str());
        if p.exists() {
            found.push(format!("cgroup: {}", p.display()));
        }
    }
    found.extend(processes_of(id).into_iter().map(|p| format!("process: {p}")));
    let dir = data_dir().join("sandboxes").join(id.as_str());
    if dir.exists() {
        found.push(format!("directory: {}", dir.display()));
    }
    found
}

fn checkpoint_bytes(id: &SandboxId) -> u64 {
    let dir = data_dir().join("sandboxes").join(id.as_str()).join("checkpoint");
    walkdir::WalkDir::new(dir).into_iter().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_processes_sockets_and_files_survive_pause_and_resume() {
    let rt = runtime().await;
    let id = SandboxId::generate();
    rt.create(&id, spec(512)).await.unwrap();
    spawn_python(&rt, &id, &worker(100, 7000, "/root/counter.log")).await;
    let mut before = ask(&rt, &id, 7000).await;
    while before.count < 25 {
        before = ask(&rt, &id, 7000).await;
    }
    assert!(before.memory_intact);
    assert!(processes_of(&id).len() >= 2, "envd and the worker should be running");

    rt.pause(&id).await.unwrap();
    assert_eq!(rt.info(&id).await.unwrap().status, SandboxStatus::Paused);
    let left = processes_of(&id);
    for p in &left { eprintln!("LEFT {p}: {}", std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default().lines().take(8).collect::<Vec<_>>().join(" ; ")); }
    assert!(left.is_empty(), "processes left after pause: {left:?}");
    assert!(checkpoint_bytes(&id) > 100 << 20, "images hold the 100 MiB: {} bytes", checkpoint_bytes(&id));
    assert!(matches!(rt.connect(&id, 7000).await, Err(RuntimeError::NotRunning(_))));

    rt.resume(&id).await.unwrap();
    let after = ask(&rt, &id, 7000).await;
    assert_eq!(after.pid, before.pid, "same process, same pid");
    assert!(after.count > before.count, "counter continued: {before:?} -> {after:?}");
    assert!(after.memory_intact, "the 100 MiB came back unchanged");

    let log = run(&rt, &id, "cat /root/counter.log").await;
    let numbers: Vec<u64> = log.lines().map(|l| l.parse().unwrap()).collect();
    let first_bad = numbers.iter().enumerate().find(|(i, n)| **n != *i as u64 + 1).map(|(i, _)| i);
    if let Some(i) = first_bad {
        let window = &numbers[i.saturating_sub(3)..(i + 3).min(numbers.len())];
        panic!("line {} of {} is wrong: around it {window:?} (paused at {before:?}, resumed at {after:?})", i + 1, numbers.len());
    }
    assert!(numbers.len() as u64 >= after.count);
    rt.kill(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cycles_lose_nothing() {
    let rt = runtime().await;
    let id = SandboxId::generate();
    rt.create(&id, spec(256)).await.unwrap();
    spawn_python(&rt, &id, &worker(8, 7001, "/tmp/counter.log")).await;
    let mut last = ask(&rt, &id, 7001).await;
    for cycle in 1..=20 {
        run(&rt, &id, &format!("echo cycle-{cycle} >> /home/user/cycles.txt")).await;
        rt.pause(&id).await.unwrap_or_else(|e| panic!("pause {cycle}: {e}"));
        rt.resume(&id).await.unwrap_or_else(|e| panic!("resume {cycle}: {e}"));
        let now = ask(&rt, &id, 7001).await;
        assert_eq!(now.pid, last.pid);
        assert!(now.count >= last.count && now.memory_intact, "cycle {cycle}: {last:?} -> {now:?}");
        last = now;
    }
    let lines = run(&rt, &id, "cat /home/user/cycles.txt").await;
    let expected: String = (1..=20).map(|c| format!("cycle-{c}\n")).collect();
    assert_eq!(lines, expected);
    rt.kill(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_sandboxes_pause_and_resume_concurrently() {
    let rt = runtime().await;
    let mut ids = Vec::new();
    for i in 0..5u16 {
        let id = SandboxId::generate();
    rt.create(&id, spec(128)).await.unwrap();
        spawn_python(&rt, &id, &worker(4, 7100 + i, "/tmp/counter.log")).await;
        ids.push((id, 7100 + i));
    }
    let mut before = Vec::new();
    for (id, port) in &ids {
        before.push(ask(&rt, id, *port).await);
    }
    let pauses: Vec<_> = ids.iter().map(|(id, _)| { let (rt, id) = (rt.clone(), id.clone()); tokio::spawn(async move { rt.pause(&id).await }) }).collect();
    for p in pauses {
        p.await.unwrap().unwrap();
    }
    let resumes: Vec<_> = ids.iter().map(|(id, _)| { let (rt, id) = (rt.clone(), id.clone()); tokio::spawn(async move { rt.resume(&id).await }) }).collect();
    for r in resumes {
        r.await.unwrap().unwrap();
    }
    for ((id, port), b) in ids.iter().zip(before) {
        let a = ask(&rt, id, *port).await;
        assert!(a.pid == b.pid && a.count >= b.count && a.memory_intact, "{id}: {b:?} -> {a:?}");
        rt.kill(id).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leaves_nothing_behind_from_running_or_paused() {
    let rt = runtime().await;
    let running = SandboxId::generate();
    rt.create(&running, spec(128)).await.unwrap();
    let paused = SandboxId::generate();
    rt.create(&paused, spec(128)).await.unwrap();
    run(&rt, &paused, "echo data > /root/file").await;
    rt.pause(&paused).await.unwrap();
    assert!(!leftovers(&running).is_empty(), "a running sandbox has a mount, cgroup, process and directory");
    for id in [&running, &paused] {
        rt.kill(id).await.unwrap();
        assert_eq!(leftovers(id), Vec::<String>::new(), "after kill of {id}");
        assert!(matches!(rt.info(id).await, Err(RuntimeError::NotFound(_))));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_operations_get_typed_errors() {
    let rt = runtime().await;
    let err = rt.create(&SandboxId::generate(), SandboxSpec { template: "no-such-template".into(), ..spec(128) }).await.unwrap_err();
    assert!(matches!(err, RuntimeError::UnknownTemplate(..)), "{err}");
    assert!(err.to_string().contains("base"), "lists the known templates: {err}");
    let err = rt.create(&SandboxId::generate(), spec(1)).await.unwrap_err();
    assert!(matches!(err, RuntimeError::InvalidRequest(_)), "{err}");

    let id = SandboxId::generate();
    rt.create(&id, spec(128)).await.unwrap();
    assert!(matches!(rt.create(&id, spec(128)).await, Err(RuntimeError::AlreadyExists(_))));
    assert!(matches!(rt.resume(&id).await, Err(RuntimeError::NotPaused(_))));
    let stats = rt.stats(&id).await.unwrap();
    assert!(stats.memory_used_bytes > 0 && stats.memory_limit_bytes == 128 << 20, "{stats:?}");
    assert!(matches!(rt.connect(&id, 9).await, Err(RuntimeError::PortNotOpen(_, 9))));
    assert!(matches!(rt.exec(&id, ExecRequest::new(Vec::<String>::new())).await, Err(RuntimeError::InvalidRequest(_))));
    rt.pause(&id).await.unwrap();
    assert!(matches!(rt.pause(&id).await, Err(RuntimeError::AlreadyPaused(_))));
    assert!(matches!(rt.exec(&id, sh("true")).await, Err(RuntimeError::NotRunning(_))));
    rt.kill(&id).await.unwrap();
    assert!(matches!(rt.resume(&id).await, Err(RuntimeError::NotFound(_))));
    assert!(matches!(rt.pause(&id).await, Err(RuntimeError::NotFound(_))));
    assert!(matches!(rt.kill(&id).await, Err(RuntimeError::NotFound(_))));
    assert!(SandboxId::parse("../../etc").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_inside_is_unprivileged_outside_and_sudo_works() {
    let rt = runtime().await;
    let id = SandboxId::generate();
    rt.create(&id, spec(128)).await.unwrap();
    assert_eq!(run(&rt, &id, "id -u").await.trim(), "0");
    let mut as_user = sh("id -un; sudo -n id -u");
    as_user.user = Some((1000, 1000));
    let out = rt.exec(&id, as_user).await.unwrap();
    assert_eq!(out.stdout_str(), "user\n0\n", "stderr: {}", String::from_utf8_lossy(&out.stderr));
    // Every process of the sandbox runs as a host uid of the id map, never as host root.
    for pid in processes_of(&id) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        let uids: Vec<u32> = uid_line.split_whitespace().skip(1).map(|u| u.parse().unwrap()).collect();
        assert!(uids.iter().all(|&u| u >= 100_000), "pid {pid} has host uids {uids:?}");
    }
    // Privileged calls are refused inside (seccomp and the user namespace).
    let out = rt.exec(&id, sh("mount -t tmpfs none /mnt")).await.unwrap();
    assert_ne!(out.exit_code, 0, "mount must be denied");
    let out = rt.exec(&id, sh("unshare -U true")).await.unwrap();
    assert_ne!(out.exit_code, 0, "nested user namespaces must be denied");
    rt.kill(&id).await.unwrap();
}
