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
        Server::start_with(data, port, &[])
    }

    /// [`Server::start`] with more `server` flags.
    fn start_with(data: PathBuf, port: u16, flags: &[&str]) -> Server {
        assert!(nix::unistd::geteuid().is_root(), "the server tests need root (CI runs them as root)");
        // Its log goes to <data dir>.log (appended across restarts), shown when it fails to start.
        let log_path = PathBuf::from(format!("{}.log", data.display()));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).expect("open the server log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_stasis"))
            .args(["--data-dir", data.to_str().unwrap(), "--templates-dir", &templates_dir(), "server", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(flags)
            .env("STASIS_API_KEYS", KEY)
            .env("STASIS_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start stasis server");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(300);
        while reqwest::blocking::get(format!("{url}/health")).is_err() {
            let exited = child.try_wait().unwrap();
            if exited.is_some() || Instant::now() >= deadline {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                panic!("server did not come up ({exited:?}); the end of {}:\n{}", log_path.display(), tail.join("\n"));
            }
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
        // Generous: on 2 busy cores an operation can queue behind another test's recovery.
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let mut req = client.request(method.clone(), format!("{}{path}", self.url)).header("X-API-KEY", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().unwrap_or_else(|e| panic!("{method} {path}: {e}"));
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

/// Wait until no sandbox under `data` is paused in memory (each has had its checkpoint written).
fn wait_for_checkpoints(data: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let parked = || std::fs::read_dir(data.join("sandboxes")).unwrap().flatten().filter(|e| e.path().join("parked").exists()).count();
    while parked() > 0 {
        assert!(Instant::now() < deadline, "{} sandboxes paused in memory were not checkpointed within 120 s", parked());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the server with data dir `data` holds on the host's network: (host-side links, nftables
/// rule chains, address leases). Running sandboxes (and paused ones still in memory) have one of
/// each, paused ones only a lease.
fn host_network(data: &std::path::Path) -> (usize, usize, usize) {
    let tag = std::process::Command::new("sh").arg("-c").arg(format!("printf %s '{}' | sha256sum", data.display())).output().unwrap();
    let tag = String::from_utf8_lossy(&tag.stdout)[..6].to_owned();
    let links = std::fs::read_dir("/sys/class/net").unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(&format!("s{tag}-"))).count();
    let table = std::process::Command::new("nft").args(["list", "table", "inet", &format!("stasis_{tag}")]).output().unwrap();
    let chains = String::from_utf8_lossy(&table.stdout).matches("chain sb").count();
    let owner = data.join("sandboxes");
    let leases = std::fs::read_dir("/run/stasis/net/10.234.0.0-16")
        .map(|d| d.flatten().filter(|e| std::fs::read(e.path()).is_ok_and(|b| b.starts_with(owner.as_os_str().as_encoded_bytes()))).count())
        .unwrap_or(0);
    (links, chains, leases)
}

fn fresh_data_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/var/lib/stasis-test-server-{name}"));
    if dir.exists() {
        // Sandboxes of an interrupted earlier run: a server over the old dir reconciles and
        // then removes them through the API.
        // A port of its own: both tests clean up at the same time, and a shared port let one
        // test's health check reach the other's server (CI: "Address already in use").
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s = Server::start(dir.clone(), port);
        let (_, list) = s.api(reqwest::Method::GET, "/v2/sandboxes", None);
        for sbx in list.as_array().into_iter().flatten() {
            s.api(reqwest::Method::DELETE, &format!("/sandboxes/{}", sbx["sandboxID"].as_str().unwrap()), None);
        }
        drop(s);
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let _ = std::fs::remove_file(format!("{}.log", dir.display()));
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

/// A tiny deterministic generator (the seed is printed, so a failure can be replayed).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// What the last acknowledged operation promised about a sandbox.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Promise {
    Exists,
    Paused,
    Gone,
    /// An operation on it was cut off before its answer: either outcome is right.
    Unknown,
}

/// kill -9 at random moments of create, pause, resume and kill (STASIS_CRASH_ITERATIONS, CI: 20;
/// the full count is 100). After each restart every sandbox is running and reachable or
/// paused and resumable with its file, every acknowledged operation held, and nothing is left on
/// disk or in runc that the server does not list. Pauses stay in memory for 300 ms, so the kill
/// lands before, during or after their checkpoint is written.
#[test]
fn random_crashes_lose_nothing() {
    let iterations: usize = std::env::var("STASIS_CRASH_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(20);
    let seed = std::env::var("STASIS_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("random_crashes_lose_nothing: seed {seed} (STASIS_CRASH_SEED replays it)");
    let mut rng = Lcg(seed);
    let mut data = fresh_data_dir("random");
    // id -> (promise, the create answer or detail (for envd), whether it has our file)
    let mut promises: std::collections::HashMap<String, (Promise, Value, bool)> = Default::default();
    for i in 0..=iterations {
        let server = Server::start_with(data, 3392, &["--pause-in-memory-ms", "300"]);
        // Every sandbox the server lists is usable; every promise held.
        let (status, list) = server.api(reqwest::Method::GET, "/v2/sandboxes?limit=1000", None);
        assert_eq!(status, 200, "{list}");
        let listed: std::collections::HashMap<String, String> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["sandboxID"].as_str().unwrap().to_owned(), s["state"].as_str().unwrap().to_owned()))
            .collect();
        // A create whose answer the crash swallowed may have finished: adopt what is listed.
        for id in listed.keys().filter(|id| !promises.contains_key(*id)).cloned().collect::<Vec<_>>() {
            let (status, detail) = server.api(reqwest::Method::GET, &format!("/sandboxes/{id}"), None);
            assert_eq!(status, 200, "{detail}");
            promises.insert(id, (Promise::Exists, detail, false));
        }
        for (id, (promise, sbx, has_file)) in &promises {
            match promise {
                Promise::Gone => assert!(!listed.contains_key(id), "iteration {i}: {id} was killed (204) but is listed"),
                Promise::Exists => assert!(listed.contains_key(id), "iteration {i}: {id} was created or resumed (2xx) but is gone"),
                Promise::Paused => assert_eq!(listed.get(id).map(String::as_str), Some("paused"), "iteration {i}: acknowledged pause of {id} lost"),
                Promise::Unknown => {}
            }
            if let Some(state) = listed.get(id) {
                if state == "running" && *has_file {
                    let (status, body) = server.envd(sbx, reqwest::Method::GET, FILE, None);
                    assert_eq!((status, body.as_slice()), (200, &b"kept"[..]), "iteration {i}: running {id} unreachable or lost its file");
                } else if state == "running" {
                    assert_eq!(server.envd(sbx, reqwest::Method::GET, "/health", None).0, 204, "iteration {i}: running {id} unreachable");
                }
            }
        }
        let on_disk: std::collections::HashSet<String> = std::fs::read_dir(server.data.join("sandboxes"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let listed_ids: std::collections::HashSet<String> = listed.keys().cloned().collect();
        assert_eq!(on_disk, listed_ids, "iteration {i}: sandbox directories and the server's list differ");
        let running = listed.values().filter(|s| *s == "running").count();
        wait_for_checkpoints(&server.data);
        assert_eq!(host_network(&server.data), (running, running, listed.len()), "iteration {i}: host links, rule chains, leases");
        promises.retain(|id, _| listed.contains_key(id));
        for (id, (p, _, _)) in promises.iter_mut() {
            *p = if listed[id] == "paused" { Promise::Paused } else { Promise::Exists };
        }
        if i == iterations {
            // Resume everything once more to prove the paused ones are usable, then clean up.
            for (id, (_, sbx, has_file)) in &promises {
                if listed[id] == "paused" {
                    assert_eq!(server.api(reqwest::Method::POST, &format!("/v2/sandboxes/{id}/connect"), Some(json!({}))).0, 201);
                    let (status, body) = server.envd(sbx, reqwest::Method::GET, FILE, None);
                    if *has_file {
                        assert_eq!((status, body.as_slice()), (200, &b"kept"[..]), "paused {id} resumed without its file");
                    }
                }
                assert_eq!(server.api(reqwest::Method::DELETE, &format!("/sandboxes/{id}"), None).0, 204);
            }
            break;
        }

        // One operation, interrupted at a random moment by kill -9.
        let ids: Vec<String> = promises.keys().cloned().collect();
        let op = if ids.is_empty() { 0 } else if ids.len() >= 4 { 3 } else { rng.next(4) };
        let target = if ids.is_empty() { String::new() } else { ids[rng.next(ids.len() as u64) as usize].clone() };
        let (method, path, body) = match op {
            0 => (reqwest::Method::POST, "/v2/sandboxes".to_owned(), Some(json!({"templateID": "base", "timeout": 3600}))),
            1 => (reqwest::Method::POST, format!("/sandboxes/{target}/pause"), Some(json!({}))),
            2 => (reqwest::Method::POST, format!("/v2/sandboxes/{target}/connect"), Some(json!({"timeout": 3600}))),
            _ => (reqwest::Method::DELETE, format!("/sandboxes/{target}"), None),
        };
        let url = server.url.clone();
        let worker = std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
            let mut req = client.request(method, format!("{url}{path}")).header("X-API-KEY", KEY);
            if let Some(b) = body {
                req = req.json(&b);
            }
            let resp = req.send().ok()?;
            let status = resp.status().as_u16();
            Some((status, resp.json::<Value>().unwrap_or(Value::Null)))
        });
        let delay = rng.next(600);
        std::thread::sleep(Duration::from_millis(delay));
        // A create that finished gets its file before the crash, so a later check can read it.
        let answered = if worker.is_finished() { worker.join().unwrap() } else { None };
        if let Some((201, sbx)) = &answered {
            if op == 0 {
                let id = sbx["sandboxID"].as_str().unwrap().to_owned();
                assert_eq!(server.envd(sbx, reqwest::Method::POST, FILE, Some(b"kept".to_vec())).0, 200);
                promises.insert(id, (Promise::Exists, sbx.clone(), true));
            }
        }
        match (op, &answered) {
            (1, Some((204, _))) => promises.get_mut(&target).unwrap().0 = Promise::Paused,
            (2, Some((200 | 201, _))) => promises.get_mut(&target).unwrap().0 = Promise::Exists,
            (3, Some((204, _))) => promises.get_mut(&target).unwrap().0 = Promise::Gone,
            // The answer may have been on its way when the server died.
            (1..=3, None) => promises.get_mut(&target).unwrap().0 = Promise::Unknown,
            _ => {}
        }
        eprintln!("iteration {i}: op {op} on {target:?} after {delay} ms, answered: {:?}", answered.as_ref().map(|a| a.0));
        data = server.kill9();
        // A created sandbox whose answer the crash swallowed is not ours to check: the server
        // either finished it (listed next time) or removed it; either is fine.
    }
}
