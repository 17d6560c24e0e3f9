//! Shared by the runtime's integration tests: opening a real runtime over a test data dir.

use stasis_runtime::{ExecOutput, ExecRequest, Runtime, RuncRuntime, RuntimeConfig, SandboxId};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `$STASIS_ENVD_BINARY`, or the `stasis-envd` built next to this test binary.
pub fn envd_binary() -> PathBuf {
    std::env::var_os("STASIS_ENVD_BINARY").map(PathBuf::from).unwrap_or_else(|| {
        // target/debug/deps/<test> -> target/debug/stasis-envd
        std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("stasis-envd")
    })
}

/// The configuration the tests use for a data dir.
pub fn config(data: &Path) -> RuntimeConfig {
    assert!(nix::unistd::geteuid().is_root(), "the runtime tests need root (CI runs them as root)");
    let envd = envd_binary();
    assert!(envd.exists(), "{} is missing: run `cargo build -p stasis-envd` first", envd.display());
    let mut cfg = RuntimeConfig::with_data_dir(data.to_owned(), envd);
    cfg.templates_dir = std::env::var_os("STASIS_TEMPLATES_DIR").map(PathBuf::from).unwrap_or_else(|| "/var/lib/stasis/templates".into());
    cfg
}

/// A runtime over `data`, with templates built into (or reused from) the shared cache
/// (`$STASIS_TEMPLATES_DIR`, default /var/lib/stasis/templates), and no sandbox left over from an
/// interrupted earlier run. `criu` replaces the CRIU binary (to inject failures).
#[allow(dead_code)]
pub async fn open_runtime(data: &Path, criu: Option<PathBuf>) -> Arc<RuncRuntime> {
    let mut cfg = config(data);
    if let Some(c) = criu {
        cfg.criu_binary = c;
    }
    open_runtime_with(cfg).await
}

/// [`open_runtime`] with a configuration of the caller's.
pub async fn open_runtime_with(cfg: RuntimeConfig) -> Arc<RuncRuntime> {
    let rt = RuncRuntime::new(cfg).await.expect("open runtime");
    let store = rt.templates().clone();
    tokio::task::spawn_blocking(move || store.build("base", &|line| eprintln!("{line}"))).await.unwrap().expect("build template base");
    for stale in rt.list().await.expect("list") {
        rt.kill(&stale.id).await.expect("kill a stale sandbox");
    }
    rt
}

/// The host's own IPv4 addresses (from `ip -4 -o addr`), loopback excluded.
#[allow(dead_code)]
pub fn host_ipv4_addresses() -> Vec<String> {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr"]).output().expect("run ip");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3)?.split('/').next().map(str::to_owned))
        .filter(|a| !a.starts_with("127."))
        .collect()
}

/// Run a shell command in a sandbox and wait for it (at most `timeout`).
#[allow(dead_code)]
pub async fn sh_within(rt: &RuncRuntime, id: &SandboxId, cmd: &str, timeout: std::time::Duration) -> ExecOutput {
    let mut req = ExecRequest::new(["/bin/sh", "-c", cmd]);
    req.timeout = Some(timeout);
    rt.exec(id, req).await.unwrap_or_else(|e| panic!("exec {cmd:?}: {e}"))
}

/// A Python service on port 7000 of the sandbox that answers a count and only counts when asked,
/// so a test knows exactly what it must say after pauses and resumes.
#[allow(dead_code)]
pub const COUNTER_SCRIPT: &str =
    "import socket\nn = 0\ns = socket.socket(); s.bind(('127.0.0.1', 7000)); s.listen(8)\nwhile True:\n    c, _ = s.accept(); n += 1; c.sendall(str(n).encode()); c.close()\n";

/// Start [`COUNTER_SCRIPT`] in the background inside a running sandbox.
#[allow(dead_code)]
pub async fn start_counter(rt: &RuncRuntime, id: &SandboxId) {
    let out = rt.exec(id, ExecRequest::new(["/bin/sh", "-c", "nohup python3 -c \"$0\" >/dev/null 2>&1 &", COUNTER_SCRIPT])).await.unwrap();
    assert_eq!(out.exit_code, 0, "start the counter: {}", String::from_utf8_lossy(&out.stderr));
}

/// The counter's next value (retried for up to 30 s while it starts or comes back).
#[allow(dead_code)]
pub async fn counter(rt: &RuncRuntime, id: &SandboxId) -> u64 {
    use tokio::io::AsyncReadExt;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Ok(mut s) = rt.connect(id, 7000).await {
            let mut text = String::new();
            if s.read_to_string(&mut text).await.is_ok() {
                if let Ok(n) = text.trim().parse() {
                    return n;
                }
            }
        }
        assert!(std::time::Instant::now() < deadline, "counter never answered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
