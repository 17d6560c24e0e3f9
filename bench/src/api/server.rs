//! The server under test: a release `stasis server` started by the bench on a free port with
//! its own data dir, or one already running (`--url`).

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

pub struct Server {
    pub url: String,
    pub api_key: String,
    /// The server's data dir, when known: checkpoint sizes and CRIU logs are read there.
    pub data_dir: Option<PathBuf>,
    /// The server's pid, when known: its RSS is read from /proc.
    pub pid: Option<u32>,
    child: Option<Child>,
}

pub struct StartOptions<'a> {
    pub binary: &'a Path,
    pub data_dir: &'a Path,
    pub templates_dir: &'a Path,
    pub memory_mb: u64,
    /// The server's `--pause-in-memory-ms`.
    pub pause_in_memory_ms: u64,
}

impl Server {
    pub fn external(url: String, api_key: String, data_dir: Option<PathBuf>, pid: Option<u32>) -> Self {
        Server { url: url.trim_end_matches('/').to_owned(), api_key, data_dir, pid, child: None }
    }

    /// Start `stasis server` and wait until it answers; its output goes to `<data>/server.log`.
    pub async fn start(o: StartOptions<'_>) -> anyhow::Result<Self> {
        std::fs::create_dir_all(o.data_dir).with_context(|| format!("create {}", o.data_dir.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let api_key = format!("e2b_bench{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_nanos());
        let log = std::fs::File::create(o.data_dir.join("server.log"))?;
        let child = Command::new(o.binary)
            .arg("server")
            .arg("--data-dir")
            .arg(o.data_dir)
            .arg("--templates-dir")
            .arg(o.templates_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--memory-mb")
            .arg(o.memory_mb.to_string())
            .arg("--default-timeout")
            .arg("3600")
            .arg("--pause-in-memory-ms")
            .arg(o.pause_in_memory_ms.to_string())
            .env("STASIS_API_KEYS", &api_key)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("start {}", o.binary.display()))?;
        let pid = child.id();
        let server = Server { url: format!("http://127.0.0.1:{port}"), api_key, data_dir: Some(o.data_dir.to_owned()), pid, child: Some(child) };
        server.wait_ready(o.data_dir).await?;
        Ok(server)
    }

    async fn wait_ready(&self, data_dir: &Path) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = http.get(format!("{}/health", self.url)).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default();
                bail!("the server did not answer within 120 s; its log ends with:\n{}", tail(&log, 20));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stop a server the bench started (SIGTERM, then SIGKILL after 20 s).
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else { return Ok(()) };
        if let Some(pid) = child.id() {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM)?;
        }
        if tokio::time::timeout(Duration::from_secs(20), child.wait()).await.is_err() {
            child.kill().await?;
        }
        Ok(())
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
