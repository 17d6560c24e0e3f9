//! Load: `STASIS_LOAD_CLIENTS` (default 50) concurrent clients against one real server, each
//! repeating the life of a sandbox for `STASIS_LOAD_SECS` (default 30; the full run is 120):
//! create, look it up, run a command, write a file, pause (every other time two pauses race),
//! call into the paused sandbox, resume, read the file back, read envd's log, list, kill, and
//! look it up once more.
//!
//! Every answer is checked against what the API documents for that moment: 201, 200 and 204
//! where the call must succeed, 409 for the second of two pauses, 502 "The sandbox was not
//! found" for envd traffic to a paused sandbox, 404 for a killed one. Anything else fails the
//! test — a 5xx above all, but also a lost file, wrong output, a changed access token, or a
//! sandbox, directory or mount left behind at the end. The server has no rate limit, so a 429
//! would be a failure too.
//!
//! The server logs at `trace`; neither the API key nor any envd access token a client was
//! given may appear in its log, nor in the envd log of any sandbox (read from inside it).
//!
//! The table of latencies (count, errors, p50, p95, max per operation) is written to stderr
//! directly, so it shows in the test log without `--nocapture`. 2 cores serve 50 clients here:
//! runc and CRIU queue, so the timeouts below are generous, but finite.
//!
//!     STASIS_LOAD_SECS=120 cargo test -p stasis --test load -- --nocapture

mod common;

use reqwest::Method;
use serde_json::{json, Value};
use stasis_sdk::{CommandOptions, ConnectionConfig, Sandbox};
use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request may take this long (a create queued behind 49 others on 2 cores takes seconds).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the clients may take past the load's end to finish the iteration they are in.
const DRAIN: Duration = Duration::from_secs(900);
/// Sandbox lifetime: longer than any iteration, so no sandbox times out under the test.
const SANDBOX_TIMEOUT_SECS: u64 = 1800;
/// Where envd logs inside a sandbox (stasis-envd's `--log` default).
const ENVD_LOG: &str = "/var/log/stasis-envd.log";

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Create,
    Get,
    Exec,
    Write,
    Pause,
    SecondPause,
    ExecPaused,
    Connect,
    Read,
    List,
    Kill,
    GetKilled,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "create (201)",
            Op::Get => "get (200)",
            Op::Exec => "run command (envd)",
            Op::Write => "write file (envd)",
            Op::Pause => "pause (204, racing: 204+409)",
            Op::SecondPause => "second pause (409)",
            Op::ExecPaused => "command while paused (502)",
            Op::Connect => "connect/resume (201)",
            Op::Read => "read file (envd)",
            Op::List => "list (200)",
            Op::Kill => "kill (204)",
            Op::GetKilled => "get killed (404)",
        }
    }
}

#[derive(Default)]
struct Stats {
    latencies: Vec<Duration>,
    errors: usize,
    server_errors: usize,
}

/// What every client shares: where the server is, and what the clients saw.
struct Load {
    url: String,
    http: reqwest::Client,
    sdk: ConnectionConfig,
    stats: Mutex<BTreeMap<Op, Stats>>,
    failures: Mutex<Vec<String>>,
    /// Every envd access token handed out; none may be logged.
    tokens: Mutex<Vec<String>>,
    iterations: AtomicUsize,
}

/// An answer that was not the documented one.
struct Unexpected {
    message: String,
    /// The HTTP status (or the Connect code's) was a 5xx.
    server_error: bool,
}

impl From<String> for Unexpected {
    fn from(message: String) -> Self {
        Unexpected { message, server_error: false }
    }
}

/// An SDK error as the status the server answered, where there was one.
fn sdk_status(e: &stasis_sdk::Error) -> Option<u16> {
    use stasis_sdk::Error as E;
    match e {
        E::Api { status, .. } => Some(*status),
        E::SandboxNotRunning { .. } => Some(502),
        E::Envd(c) => Some(c.code.http_status()),
        E::NotFound { .. } => Some(404),
        E::Conflict { .. } => Some(409),
        E::InvalidArgument { .. } => Some(400),
        E::Auth { .. } => Some(401),
        E::RateLimit { .. } => Some(429),
        E::NotEnoughSpace { .. } => Some(507),
        _ => None,
    }
}

fn sdk_unexpected(e: stasis_sdk::Error) -> Unexpected {
    let status = sdk_status(&e);
    Unexpected { message: format!("{e} (status {status:?})"), server_error: status.is_some_and(|s| s >= 500) }
}

impl Load {
    /// Count one answered call of `op`, `took` long; an unexpected answer also fails the test.
    fn tally<T>(&self, op: Op, took: Duration, result: Result<T, Unexpected>) -> Result<T, String> {
        let mut stats = self.stats.lock().unwrap();
        let s = stats.entry(op).or_default();
        s.latencies.push(took);
        result.map_err(|u| {
            s.errors += 1;
            s.server_errors += usize::from(u.server_error);
            format!("{}: {}", op.name(), u.message)
        })
    }

    /// A control-plane call whose answer must have status `expect`; its JSON body.
    async fn api(&self, op: Op, method: Method, path: &str, body: Option<Value>, expect: u16) -> Result<Value, String> {
        let (result, took) = timed(self.send(method, path, body)).await;
        let result = result.and_then(|(status, body)| {
            if status == expect {
                Ok(body)
            } else {
                Err(Unexpected { message: format!("{status} (expected {expect}): {body}"), server_error: status >= 500 })
            }
        });
        self.tally(op, took, result)
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Result<(u16, Value), Unexpected> {
        let mut req = self.http.request(method, format!("{}{path}", self.url)).header("X-API-KEY", common::KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| format!("no answer: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("{status}, body unreadable: {e}"))?;
        Ok((status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) }))
    }

    fn token(&self, body: &Value) -> Result<String, String> {
        let token = body["envdAccessToken"].as_str().filter(|t| t.len() >= 16).ok_or_else(|| format!("no envdAccessToken in {body}"))?;
        self.tokens.lock().unwrap().push(token.to_owned());
        Ok(token.to_owned())
    }
}

async fn timed<T>(f: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

/// A little deterministic noise, so no two files are alike.
fn noise(seed: u64, len: usize) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

async fn client(load: Arc<Load>, n: usize, until: Instant) {
    let mut i = 0;
    while Instant::now() < until {
        match iteration(&load, n, i).await {
            Ok(()) => {
                load.iterations.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => load.failures.lock().unwrap().push(format!("client {n}, iteration {i}: {e}")),
        }
        i += 1;
    }
}

async fn iteration(load: &Load, n: usize, i: usize) -> Result<(), String> {
    let body = json!({
        "templateID": "base",
        "timeout": SANDBOX_TIMEOUT_SECS,
        "metadata": { "loadclient": n.to_string(), "iteration": i.to_string() },
    });
    let created = load.api(Op::Create, Method::POST, "/v2/sandboxes", Some(body), 201).await?;
    let id = created["sandboxID"].as_str().ok_or_else(|| format!("create answered no sandboxID: {created}"))?.to_owned();
    let token = load.token(&created)?;
    let result = life(load, n, i, &id, &token).await;
    if result.is_err() {
        // Best effort, uncounted: the failure is already recorded, and a sandbox this leaves
        // is reported by the check at the end.
        let _ = load.send(Method::DELETE, &format!("/sandboxes/{id}"), None).await;
    }
    result.map_err(|e| format!("sandbox {id}: {e}"))
}

/// One sandbox from its creation to its end; `Err` at the first answer that is not the
/// documented one.
async fn life(load: &Load, n: usize, i: usize, id: &str, token: &str) -> Result<(), String> {
    let (sbx, took) = timed(Sandbox::attach(id, &load.sdk)).await;
    let sbx = load.tally(Op::Get, took, sbx.map_err(sdk_unexpected))?;

    let (out, took) = timed(sbx.commands().run(&format!("echo $((6 * 7)) client-{n}-{i}"))).await;
    let out = out.map_err(sdk_unexpected).and_then(|o| {
        if o.stdout == format!("42 client-{n}-{i}\n") {
            Ok(())
        } else {
            Err(format!("wrong output {:?}", o.stdout).into())
        }
    });
    load.tally(Op::Exec, took, out)?;

    let path = format!("/home/user/load/{n}-{i}.txt");
    let content = format!("client {n} iteration {i}\n{}\n", noise((n as u64) << 32 | i as u64, 16 << 10));
    let (w, took) = timed(sbx.files().write(&path, content.clone())).await;
    load.tally(Op::Write, took, w.map(drop).map_err(sdk_unexpected))?;

    let pause = format!("/sandboxes/{id}/pause");
    if i % 2 == 1 {
        // Two pauses at once: exactly one does it, the other is told it is already paused.
        let (a, b) = tokio::join!(timed(load.send(Method::POST, &pause, None)), timed(load.send(Method::POST, &pause, None)));
        let mut statuses: Vec<u16> = [&a, &b].iter().filter_map(|(r, _)| r.as_ref().ok().map(|(s, _)| *s)).collect();
        statuses.sort_unstable();
        for (r, took) in [a, b] {
            let r = r.and_then(|(status, body)| {
                if statuses == [204, 409] {
                    Ok(())
                } else {
                    let message = format!("two racing pauses answered {statuses:?}, expected 204 and 409; this one {status}: {body}");
                    Err(Unexpected { message, server_error: status >= 500 })
                }
            });
            load.tally(Op::Pause, took, r)?;
        }
    } else {
        load.api(Op::Pause, Method::POST, &pause, None, 204).await?;
        load.api(Op::SecondPause, Method::POST, &pause, None, 409).await?;
    }
    let info = load.api(Op::Get, Method::GET, &format!("/sandboxes/{id}"), None, 200).await?;
    if info["state"] != "paused" {
        return Err(format!("state after pause: {info}"));
    }

    let (r, took) = timed(sbx.commands().run("true")).await;
    let r = match r {
        Err(stasis_sdk::Error::SandboxNotRunning { message }) if message == "The sandbox was not found" => Ok(()),
        Err(e) => Err(sdk_unexpected(e)),
        Ok(_) => Err("a command ran in a paused sandbox".to_owned().into()),
    };
    load.tally(Op::ExecPaused, took, r)?;

    let body = json!({ "timeout": SANDBOX_TIMEOUT_SECS });
    let resumed = load.api(Op::Connect, Method::POST, &format!("/v2/sandboxes/{id}/connect"), Some(body), 201).await?;
    if load.token(&resumed)? != token {
        return Err("the access token changed across pause/resume".into());
    }

    // The handle made before the pause still works: same id, same token.
    let (back, took) = timed(sbx.files().read_to_string(&path)).await;
    let back = back.map_err(sdk_unexpected).and_then(|b| {
        if b == content {
            Ok(())
        } else {
            Err(format!("file came back as {} bytes, not the {} written", b.len(), content.len()).into())
        }
    });
    load.tally(Op::Read, took, back)?;

    let (log, took) = timed(sbx.commands().run_with(&format!("cat {ENVD_LOG}"), CommandOptions::new().user("root"))).await;
    let log = load.tally(Op::Exec, took, log.map_err(sdk_unexpected))?.stdout;
    if !log.contains("init applied") {
        return Err(format!("envd's log does not look like envd's log: {log:?}"));
    }
    if log.contains(token) || log.contains(common::KEY) {
        return Err(format!("a secret is in envd's log {ENVD_LOG}"));
    }

    let mine = load.api(Op::List, Method::GET, &format!("/v2/sandboxes?metadata=loadclient%3D{n}"), None, 200).await?;
    let listed: Vec<(&str, &str)> = mine
        .as_array()
        .map(|a| a.iter().map(|s| (s["sandboxID"].as_str().unwrap_or(""), s["state"].as_str().unwrap_or(""))).collect())
        .unwrap_or_default();
    if listed != [(id, "running")] {
        return Err(format!("client {n} lists {listed:?}, expected only its running {id}"));
    }
    load.api(Op::List, Method::GET, "/v2/sandboxes?state=running,paused&limit=100", None, 200).await?;

    load.api(Op::Kill, Method::DELETE, &format!("/sandboxes/{id}"), None, 204).await?;
    load.api(Op::GetKilled, Method::GET, &format!("/sandboxes/{id}"), None, 404).await?;
    Ok(())
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn table(stats: &BTreeMap<Op, Stats>) -> String {
    let mut out = String::from("| operation | count | errors | 5xx | p50 ms | p95 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (op, s) in stats {
        let mut l = s.latencies.clone();
        l.sort_unstable();
        let ms = |d: Duration| d.as_millis();
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            op.name(),
            l.len(),
            s.errors,
            s.server_errors,
            ms(percentile(&l, 0.50)),
            ms(percentile(&l, 0.95)),
            ms(*l.last().expect("counted calls"))
        );
    }
    out
}

/// Mount points under `dir` in this (the server's) mount namespace.
fn mounts_under(dir: &std::path::Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_clients_get_only_documented_answers() {
    let secs = env_number("STASIS_LOAD_SECS", 30);
    let clients = env_number("STASIS_LOAD_CLIENTS", 50) as usize;
    assert!(common::template_built("base"), "template base is not built (stasis template build base)");
    let server = common::server_logging("load", "trace");
    let load = Arc::new(Load {
        url: server.url.clone(),
        http: reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().unwrap(),
        sdk: server.config().request_timeout(REQUEST_TIMEOUT),
        stats: Mutex::default(),
        failures: Mutex::default(),
        tokens: Mutex::default(),
        iterations: AtomicUsize::new(0),
    });

    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let tasks: Vec<_> = (0..clients).map(|n| tokio::spawn(client(load.clone(), n, until))).collect();
    let all = async {
        for t in tasks {
            t.await.expect("a client panicked");
        }
    };
    tokio::time::timeout(Duration::from_secs(secs) + DRAIN, all)
        .await
        .unwrap_or_else(|_| panic!("clients still busy {DRAIN:?} after the load's end"));
    let elapsed = started.elapsed();

    let iterations = load.iterations.load(Ordering::Relaxed);
    let report = format!(
        "\nload: {clients} clients, {secs} s of new iterations ({:.0} s in all), {iterations} sandbox lives completed\n{}",
        elapsed.as_secs_f64(),
        table(&load.stats.lock().unwrap())
    );
    // Straight to stderr, past the test harness's capture: the table belongs in every log.
    let _ = std::io::stderr().write_all(report.as_bytes());

    let failures = std::mem::take(&mut *load.failures.lock().unwrap());
    assert!(failures.is_empty(), "{} iterations failed; the first ones:\n{}", failures.len(), failures[..failures.len().min(20)].join("\n"));
    assert!(iterations >= clients, "{iterations} iterations by {clients} clients in {secs} s");

    // Nothing is left: not a record, not a directory, not a mount.
    let (status, left) = load.send(Method::GET, "/v2/sandboxes?state=running,paused&limit=1000", None).await.unwrap_or_else(|u| panic!("{}", u.message));
    assert_eq!((status, left.as_array().map(Vec::len)), (200, Some(0)), "sandboxes left: {left}");
    let dirs: Vec<_> = std::fs::read_dir(server.data.join("sandboxes")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(dirs.is_empty(), "sandbox directories left: {dirs:?}");
    let mounts = mounts_under(&server.data);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");

    // No secret in the server's log, which holds every event at trace level.
    let log = server.log();
    assert!(log.lines().filter(|l| l.contains(" created")).count() >= iterations, "the log at trace level misses creates:\n{}", &log[..log.len().min(2000)]);
    assert!(!log.contains(common::KEY), "the API key is in the server log {}", server.log_path.display());
    let tokens = std::mem::take(&mut *load.tokens.lock().unwrap());
    assert!(tokens.len() >= 2 * iterations);
    let leaked: Vec<&String> = tokens.iter().filter(|t| log.contains(t.as_str())).collect();
    assert!(leaked.is_empty(), "{} access tokens are in the server log {}", leaked.len(), server.log_path.display());
}
