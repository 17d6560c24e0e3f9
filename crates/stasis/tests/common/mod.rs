//! A real `stasis server` for the SDK, example, CLI and load tests: one per test binary, started
//! on first use on a free port with its own data dir (`$STASIS_TEST_DATA_DIR-<name>`, default
//! `/var/lib/stasis-test-<name>`), stopped when the test process exits. Its stdout and stderr
//! go to `<data dir>.log`, which [`Server::log`] reads back.
//!
//! The server runs under a small `sh` that holds the read end of a pipe whose write end only
//! this process has: when the test process ends, however it ends, the pipe closes and the
//! shell stops the server. Sandboxes left by an interrupted run are killed through the API of
//! a server over the old data dir before it is removed.

#![allow(dead_code)]

use stasis_sdk::ConnectionConfig;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const KEY: &str = "sdk-test-key";

pub struct Server {
    pub url: String,
    pub data: PathBuf,
    /// The server's stdout and stderr.
    pub log_path: PathBuf,
    child: Mutex<Child>,
    stop: Mutex<Option<ChildStdin>>,
}

pub fn templates_dir() -> String {
    std::env::var("STASIS_TEMPLATES_DIR").unwrap_or_else(|_| "/var/lib/stasis/templates".into())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET /health` over a bare socket: usable from any thread, async or not.
fn healthy(url: &str) -> bool {
    let addr = url.trim_start_matches("http://");
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && (buf[9] == b'2')
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Server {
    fn start(data: &Path, log_filter: &str) -> Server {
        assert!(nix::unistd::geteuid().is_root(), "these tests drive the real server and need root (CI runs them as root)");
        let url = format!("http://127.0.0.1:{}", free_port());
        let log_path = PathBuf::from(format!("{}.log", data.display()));
        let log = std::fs::File::create(&log_path).unwrap_or_else(|e| panic!("create {}: {e}", log_path.display()));
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" </dev/null & pid=$!; cat >/dev/null; kill -TERM $pid; wait $pid"#)
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_stasis"))
            .args(["--data-dir", data.to_str().unwrap(), "--templates-dir", &templates_dir(), "server", "--listen"])
            .arg(url.trim_start_matches("http://"))
            .env("STASIS_API_KEYS", KEY)
            .env("STASIS_LOG", log_filter)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().expect("clone the log file handle"))
            .stderr(log)
            .spawn()
            .expect("start stasis server");
        let stop = child.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(300);
        while !healthy(&url) {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("stasis server exited with {status} before it served; {} ends with:\n{}", log_path.display(), log_tail(&log_path));
            }
            assert!(Instant::now() < deadline, "stasis server did not come up; {} ends with:\n{}", log_path.display(), log_tail(&log_path));
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("stasis server on {url}, log in {}", log_path.display());
        Server { url, data: data.to_owned(), log_path, child: Mutex::new(child), stop: Mutex::new(stop) }
    }

    /// Everything the server has written to stdout and stderr so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    fn stop(&self) {
        self.stop.lock().unwrap().take();
        let _ = self.child.lock().unwrap().wait();
    }

    /// Client configuration for this server (no environment variable read).
    pub fn config(&self) -> ConnectionConfig {
        ConnectionConfig::new(&self.url, KEY)
    }
}

fn kill_all(config: &ConnectionConfig) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let all = stasis_sdk::Sandbox::list(stasis_sdk::ListOptions::new().config(config.clone())).all().await.unwrap();
        for s in all {
            stasis_sdk::Sandbox::kill_by_id(&s.sandbox_id, config).await.unwrap();
        }
    });
}

/// This test binary's server, started on first use, logging warnings and errors.
pub fn server(name: &'static str) -> &'static Server {
    server_logging(name, "warn")
}

/// This test binary's server, started on first use with `STASIS_LOG=log_filter` (a binary
/// has one server: the filter of the first call wins).
pub fn server_logging(name: &'static str, log_filter: &'static str) -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        // In a thread of its own: callers may be on an async runtime, the cleanup needs one.
        std::thread::spawn(move || {
            let base = std::env::var("STASIS_TEST_DATA_DIR").unwrap_or_else(|_| "/var/lib/stasis-test".into());
            let data = PathBuf::from(format!("{base}-{name}"));
            if data.exists() {
                let old = Server::start(&data, "warn");
                kill_all(&old.config());
                old.stop();
                std::fs::remove_dir_all(&data).unwrap();
            }
            Server::start(&data, log_filter)
        })
        .join()
        .expect("start the test server")
    })
}

/// Whether template `name` is built in the shared templates dir (`stasis template list`).
pub fn template_built(name: &str) -> bool {
    let out = Command::new(env!("CARGO_BIN_EXE_stasis"))
        .args(["--templates-dir", &templates_dir(), "template", "list"])
        .output()
        .expect("run stasis template list");
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        let cols: Vec<&str> = l.split('\t').collect();
        cols.first() == Some(&name) && cols.last() == Some(&"built")
    })
}
