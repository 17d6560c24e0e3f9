//! A whole control plane on fakes, served on a real socket: `MemoryStore`, `FakeRuntime`,
//! `NoopGuest` and a `ManualClock`, so time moves only when a test says so.

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use stasis_api::{ApiKeys, AppState};
use stasis_lifecycle::{Lifecycle, LifecycleConfig, ManualClock, NoopGuest};
use stasis_runtime::fake::FakeRuntime;
use stasis_runtime::{SandboxId, SandboxStatus};
use stasis_store::{MemoryStore, SqliteStore, Store};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

pub const K1: &str = "k1";
pub const K2: &str = "k2";

pub struct Harness {
    pub base: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub lifecycle: Lifecycle,
    pub runtime: Arc<FakeRuntime>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
    server: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A start time on a whole millisecond, as the store keeps times.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

pub fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with_config(LifecycleConfig::default()).await
    }

    pub async fn with_config(cfg: LifecycleConfig) -> Harness {
        Harness::with_parts(cfg, Arc::new(MemoryStore::new()), Arc::new(FakeRuntime::new())).await
    }

    /// The same, on the embedded database the server uses by default.
    pub async fn with_sqlite() -> Harness {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        Harness::with_parts(LifecycleConfig::default(), store, Arc::new(FakeRuntime::new())).await
    }

    pub async fn with_parts(cfg: LifecycleConfig, store: Arc<dyn Store>, runtime: Arc<FakeRuntime>) -> Harness {
        let clock = Arc::new(ManualClock::new(t0()));
        let lifecycle = Lifecycle::new(store.clone(), runtime.clone(), Arc::new(NoopGuest), clock.clone(), cfg);
        let app = stasis_api::app(AppState::new(lifecycle.clone(), ApiKeys::new([K1, K2])));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            stasis_api::serve(listener, app, None).await.unwrap();
        });
        // No connection pooling surprises: tests that cut connections must not affect others.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Harness { base: format!("http://{addr}"), addr, client, lifecycle, runtime, store, clock, server }
    }

    pub fn req(&self, method: Method, path: &str, key: Option<&str>) -> RequestBuilder {
        let mut b = self.client.request(method, format!("{}{}", self.base, path));
        if let Some(k) = key {
            b = b.header("X-API-KEY", k);
        }
        b
    }

    pub async fn call(&self, method: Method, path: &str, key: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut b = self.req(method, path, Some(key));
        if let Some(body) = body {
            b = b.json(&body);
        }
        split(b.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, key, None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, key, Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, key, None).await
    }

    /// Create through the current route; panics unless it answers 201.
    pub async fn create(&self, key: &str, body: Value) -> String {
        let (status, v) = self.post("/v2/sandboxes", key, body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        v["sandboxID"].as_str().unwrap().to_owned()
    }

    pub async fn create_base(&self, key: &str) -> String {
        self.create(key, serde_json::json!({"templateID": "base"})).await
    }

    pub async fn pause(&self, key: &str, id: &str) -> StatusCode {
        self.post(&format!("/sandboxes/{id}/pause"), key, serde_json::json!({})).await.0
    }

    pub async fn state(&self, key: &str, id: &str) -> Option<String> {
        let (status, v) = self.get(&format!("/sandboxes/{id}"), key).await;
        match status {
            StatusCode::OK => Some(v["state"].as_str().unwrap().to_owned()),
            StatusCode::NOT_FOUND => None,
            other => panic!("GET /sandboxes/{id}: {other} {v}"),
        }
    }

    pub fn runtime_status(&self, id: &str) -> Option<SandboxStatus> {
        self.runtime.status(&SandboxId::parse(id).unwrap())
    }

    pub async fn record_state(&self, id: &str) -> Option<stasis_types::SandboxState> {
        self.store.get(id).await.unwrap().map(|r| r.state)
    }

    pub fn expose(&self, id: &str, port: u16, addr: SocketAddr) {
        self.runtime.expose(&SandboxId::parse(id).unwrap(), port, addr);
    }
}

/// Status and JSON body (`Null` when the body is empty or not JSON).
pub async fn split(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// An E2B error body with this code and a message.
#[track_caller]
pub fn assert_error(status: StatusCode, body: &Value, want: u16) {
    assert_eq!(status.as_u16(), want, "{body}");
    assert_eq!(body["code"], want, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

pub fn parse_time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

impl Harness {
    pub async fn store_ids(&self) -> Vec<String> {
        self.store.all().await.unwrap().into_iter().map(|r| r.id).collect()
    }

    pub async fn runtime_ids(&self) -> Vec<String> {
        use stasis_runtime::Runtime;
        self.runtime.list().await.unwrap().into_iter().map(|i| i.id.to_string()).collect()
    }
}

/// Send raw bytes (ignoring a server that stops reading early) and read what comes back until
/// the server closes or goes quiet.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(std::time::Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Harness {
    /// Poll the store until `id` is in `state`, so a test can order requests by what the
    /// server did rather than by sleeps a loaded machine may overrun.
    pub async fn wait_for(&self, id: &str, state: stasis_types::SandboxState) {
        for _ in 0..2500 {
            if self.record_state(id).await == Some(state) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("{id} never became {state}");
    }
}
