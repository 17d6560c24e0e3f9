//! The real `stasis server` binary with the real runtime (root): restarts, crashes and what a
//! sandbox keeps across them. HTTP-level behaviour on fakes is tested in stasis-api.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    url: String,
    data: PathBuf,
}

const KEY: &str = "server-test-key";

fn templates_dir() -> String {
    std::env::var("STASIS_TEMPLATES_DIR").unwrap_or_else(|_| "/var/lib/stasis/templates".into())
}

impl Server {
    fn start(data: PathBuf, port: u16) -> Server {
        assert!(nix::unistd::geteuid().is_root(), "the server tests need root (CI runs them as root)");
        let child = Command::new(env!("CARGO_BIN_EXE_stasis"))
            .args(["--data-dir", data.to_str().unwrap(), "--templates-dir", &templates_dir(), "server", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("STASIS_API_KEYS", KEY)
            .env("STASIS_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("start stasis server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(300);
        while reqwest::blocking::get(format!("{url}/health")).is_err() {
            assert!(Instant::now() < deadline, "server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        Server { child, url, data }
    }

    /// As a crash would: no chance to clean up.
    fn kill9(mut self) -> PathBuf {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let data = self.data.clone();
        std::mem::forget(self);
        data
    }

    fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::blocking::Client::new();
        let mut req = client.request(method, format!("{}{path}", self.url)).header("X-API-KEY", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A request into the sandbox's envd through the proxy.
    fn envd(&self, sbx: &Value, method: reqwest::Method, path: &str, body: Option<Vec<u8>>) -> (u16, Vec<u8>) {
        let client = reqwest::blocking::Client::new();
        let mut req = client
            .request(method, format!("{}{path}", self.url))
            .header("E2b-Sandbox-Id", sbx["sandboxID"].as_str().unwrap())
            .header("E2b-Sandbox-Port", "49983")
            .header("X-Access-Token", sbx["envdAccessToken"].as_str().unwrap());
        if let Some(b) = body {
            req = req.header("content-type", "application/octet-stream").body(b);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.bytes().unwrap().to_vec())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fresh_data_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/var/lib/stasis-test-server-{name}"));
    if dir.exists() {
        // Sandboxes of an interrupted earlier run: a server over the old dir reconciles and
        // then removes them through the API.
        let s = Server::start(dir.clone(), 3391);
        let (_, list) = s.api(reqwest::Method::GET, "/v2/sandboxes", None);
        for sbx in list.as_array().into_iter().flatten() {
            s.api(reqwest::Method::DELETE, &format!("/sandboxes/{}", sbx["sandboxID"].as_str().unwrap()), None);
        }
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    dir
}

const FILE: &str = "/files?path=/home/user/kept.txt";

#[test]
fn sandboxes_survive_a_server_crash_running_and_paused() {
    let server = Server::start(fresh_data_dir("crash"), 3390);
    let (status, running) = server.api(reqwest::Method::POST, "/v2/sandboxes", Some(json!({"templateID": "base", "timeout": 600})));
    assert_eq!(status, 201, "{running}");
    let (status, paused) = server.api(reqwest::Method::POST, "/v2/sandboxes", Some(json!({"templateID": "base", "timeout": 600})));
    assert_eq!(status, 201, "{paused}");
    for sbx in [&running, &paused] {
        let (status, body) = server.envd(sbx, reqwest::Method::POST, FILE, Some(b"before the crash".to_vec()));
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let pid = paused["sandboxID"].as_str().unwrap().to_owned();
    assert_eq!(server.api(reqwest::Method::POST, &format!("/sandboxes/{pid}/pause"), None).0, 204);

    let data = server.kill9();
    let server = Server::start(data, 3390);

    let rid = running["sandboxID"].as_str().unwrap();
    let (status, info) = server.api(reqwest::Method::GET, &format!("/sandboxes/{rid}"), None);
    assert_eq!((status, info["state"].as_str()), (200, Some("running")), "{info}");
    let (status, body) = server.envd(&running, reqwest::Method::GET, FILE, None);
    assert_eq!((status, body.as_slice()), (200, &b"before the crash"[..]), "running sandbox reachable after restart");

    let (status, info) = server.api(reqwest::Method::GET, &format!("/sandboxes/{pid}"), None);
    assert_eq!((status, info["state"].as_str()), (200, Some("paused")), "{info}");
    assert_eq!(server.envd(&paused, reqwest::Method::GET, FILE, None).0, 502, "paused sandboxes serve nothing");
    let (status, _) = server.api(reqwest::Method::POST, &format!("/v2/sandboxes/{pid}/connect"), Some(json!({})));
    assert_eq!(status, 201, "the acknowledged pause was kept");
    let (status, body) = server.envd(&paused, reqwest::Method::GET, FILE, None);
    assert_eq!((status, body.as_slice()), (200, &b"before the crash"[..]));

    for id in [rid, pid.as_str()] {
        assert_eq!(server.api(reqwest::Method::DELETE, &format!("/sandboxes/{id}"), None).0, 204);
        assert_eq!(server.api(reqwest::Method::DELETE, &format!("/sandboxes/{id}"), None).0, 404);
    }
    let sandboxes = server.data.join("sandboxes");
    assert_eq!(std::fs::read_dir(&sandboxes).unwrap().count(), 0, "nothing left in {}", sandboxes.display());
}
