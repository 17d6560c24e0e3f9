//! The whole control plane (`stasis_api::app`) on fakes — in-memory store, fake runtime, no
//! guest — answering one request that may be anything: any method, any path and query, any
//! body, with or without a key, as control-plane or as sandbox traffic.
//!
//! Input: a method byte, a flags byte (bits 0-1: the key — valid, another owner's, wrong,
//! none; bit 2: `Content-Type: application/json`; bit 3: `E2b-Sandbox-Id` of the running
//! sandbox, port 49983; bit 4: a `{port}-{id}.{domain}` Host), a path and query up to the first
//! newline (`{run}` and `{paused}` stand for the ids of a running and a paused sandbox of the
//! valid key), then the body. Each input gets a fresh control plane holding those two.
//!
//! Checks: no panic; no 5xx (sandbox traffic may get the documented 502, as no port is open in
//! a fake sandbox); every error (but a HEAD's, which has no body) is E2B's `{"code", "message"}`
//! with `code` equal to the status; no sandbox is left in a transitional state.
#![no_main]

use axum::body::Body;
use axum::http::{header, HeaderValue, Method, Request};
use http_body_util::BodyExt as _;
use libfuzzer_sys::fuzz_target;
use stasis_api::{ApiKeys, AppState};
use stasis_lifecycle::{CreateRequest, Lifecycle, LifecycleConfig, ManualClock, NoopGuest};
use stasis_runtime::fake::FakeRuntime;
use stasis_store::MemoryStore;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt as _;

const KEY: &str = "fuzz-key";
const OTHER_KEY: &str = "other-key";
const DOMAIN: &str = "stasis.test";
const METHODS: [&str; 8] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "TRACE"];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime"))
}

/// Bytes as a path and query: anything outside the characters a URI allows there is
/// percent-encoded, so every input is a request (malformed escapes like `%zz` stay).
fn path_and_query(raw: &[u8]) -> String {
    let mut out = String::from("/");
    let raw = raw.strip_prefix(b"/").unwrap_or(raw);
    for &b in raw {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

struct Plane {
    app: axum::Router,
    lifecycle: Lifecycle,
    running: String,
    paused: String,
}

async fn plane() -> Plane {
    let cfg = LifecycleConfig { domain: Some(DOMAIN.into()), ..Default::default() };
    let clock = Arc::new(ManualClock::new(chrono::DateTime::from_timestamp(1_772_000_000, 0).expect("a valid time")));
    let lifecycle = Lifecycle::new(Arc::new(MemoryStore::new()), Arc::new(FakeRuntime::new()), Arc::new(NoopGuest), clock, cfg);
    let keys = ApiKeys::new([KEY, OTHER_KEY]);
    let owner = keys.owner_of(KEY).expect("the key is known").to_owned();
    let create = || CreateRequest { template: "base".into(), secure: true, ..Default::default() };
    let running = lifecycle.create(&owner, create()).await.expect("create on fakes").id;
    let paused = lifecycle.create(&owner, create()).await.expect("create on fakes").id;
    lifecycle.pause(Some(&owner), &paused).await.expect("pause on fakes");
    let app = stasis_api::app(AppState::new(lifecycle.clone(), keys));
    Plane { app, lifecycle, running, paused }
}

fuzz_target!(|input: &[u8]| {
    let [method, flags, rest @ ..] = input else { return };
    let (raw_path, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    runtime().block_on(async {
        let plane = plane().await;
        let path = path_and_query(raw_path).replace("{run}", &plane.running).replace("{paused}", &plane.paused);
        let method = Method::from_bytes(METHODS[usize::from(*method) % METHODS.len()].as_bytes()).expect("a known method");
        let mut req = Request::builder().method(method.clone()).uri(&path);
        match flags & 3 {
            0 => req = req.header("x-api-key", KEY),
            1 => req = req.header("x-api-key", OTHER_KEY),
            2 => req = req.header("x-api-key", "wrong"),
            _ => {}
        }
        if flags & 4 != 0 {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let sandbox_traffic = flags & 0x18 != 0;
        if flags & 8 != 0 {
            req = req.header("e2b-sandbox-id", plane.running.as_str()).header("e2b-sandbox-port", "49983");
        }
        if flags & 16 != 0 {
            let host = format!("49983-{}.{DOMAIN}", plane.running);
            req = req.header(header::HOST, HeaderValue::from_str(&host).expect("a valid host"));
        }
        let req = req.body(Body::from(body.to_vec())).expect("a valid request");
        let resp = plane.app.clone().oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let bytes = resp.into_body().collect().await.expect("a readable body").to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        let documented_502 = sandbox_traffic && status.as_u16() == 502;
        assert!(!status.is_server_error() || documented_502, "{method} {path} (flags {flags:#x}) answered {status}: {text}");
        // A HEAD answer has no body.
        if (status.is_client_error() || status.is_server_error()) && method != Method::HEAD {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{method} {path}: {status} with a non-JSON body ({e}): {text}"));
            assert_eq!(v["code"].as_u64(), Some(u64::from(status.as_u16())), "{method} {path}: {text}");
            assert!(v["message"].is_string(), "{method} {path}: {text}");
        }
        for rec in plane.lifecycle.all_records().await.expect("records on fakes") {
            assert!(!rec.state.is_transitional(), "{method} {path} left {} {}", rec.id, rec.state);
        }
    });
});
