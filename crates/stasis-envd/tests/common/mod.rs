//! Test harness: a real envd process on a free port, and a small Connect client.
#![allow(dead_code)]

use base64::Engine as _;
use serde_json::{json, Value};
use stasis_proto::connect::{encode_envelope, EnvelopeDecoder, FLAG_END_STREAM};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The unprivileged user the tests act as (created if missing; tests run as root).
pub const TEST_USER: &str = "stasis-envd-test";

static USER: Once = Once::new();

/// Create [`TEST_USER`] with a home directory, once per test binary (idempotent across runs).
pub fn ensure_test_user() {
    USER.call_once(|| {
        let exists = Command::new("id").arg("-u").arg(TEST_USER).stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !exists.is_ok_and(|s| s.success()) {
            let st = Command::new("useradd")
                .args(["--create-home", "--shell", "/bin/bash", TEST_USER])
                .status()
                .expect("useradd");
            assert!(st.success() || user_uid() > 0, "could not create the test user");
        }
    });
}

pub fn user_uid() -> u32 {
    let out = Command::new("id").arg("-u").arg(TEST_USER).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("uid")
}

pub fn user_home() -> String {
    format!("/home/{TEST_USER}")
}

/// A running envd; derefs to a [`Client`] for it.
pub struct Envd {
    pub child: Child,
    pub client: Client,
}

/// Talks to one envd.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    pub http: reqwest::Client,
}

impl std::ops::Deref for Envd {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Envd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Envd {
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// Start envd with extra flags; an `--access-token` flag is remembered for requests.
    pub async fn start_with(extra: &[&str]) -> Self {
        ensure_test_user();
        let fixed = extra.windows(2).find(|w| w[0] == "--port").map(|w| w[1].parse::<u16>().expect("port"));
        let port = fixed.unwrap_or_else(free_port);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_stasis-envd"));
        cmd.args(["--addr", "127.0.0.1", "--log", "off", "--default-user", TEST_USER]);
        if fixed.is_none() {
            cmd.args(["--port", &port.to_string()]);
        }
        // A clean environment, as runc gives the sandbox's init, plus one inherited variable.
        let child = cmd
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("FROM_RUNTIME", "inherited")
            .spawn()
            .expect("start envd");
        let token = extra.windows(2).find(|w| w[0] == "--access-token").map(|w| w[1].to_string());
        let client = Client { base: format!("http://127.0.0.1:{port}"), token, http: reqwest::Client::new() };
        let envd = Envd { child, client };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(r) = envd.http.get(format!("{}/health", envd.base)).send().await {
                assert_eq!(r.status(), 204);
                break;
            }
            assert!(Instant::now() < deadline, "envd did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        envd
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Client {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = &self.token {
            r = r.header("X-Access-Token", t);
        }
        r
    }

    /// A unary call: (HTTP status, JSON body).
    pub async fn unary(&self, method: &str, body: Value) -> (u16, Value) {
        self.unary_as(method, body, None).await
    }

    pub async fn unary_as(&self, method: &str, body: Value, user: Option<&str>) -> (u16, Value) {
        let mut r = self
            .req(reqwest::Method::POST, &format!("/{method}"))
            .header("Content-Type", "application/json")
            .header("Connect-Protocol-Version", "1")
            .body(body.to_string());
        if let Some(u) = user {
            r = r.header("Authorization", basic(u));
        }
        let resp = r.send().await.expect("unary request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Open a server stream; returns the live reader.
    pub async fn open_stream(&self, method: &str, body: Value, headers: &[(&str, &str)]) -> Stream {
        let mut r = self
            .req(reqwest::Method::POST, &format!("/{method}"))
            .header("Content-Type", "application/connect+json")
            .header("Connect-Protocol-Version", "1")
            .body(encode_envelope(0, body.to_string().as_bytes()));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        let resp = r.send().await.expect("stream request");
        assert_eq!(resp.status(), 200, "streams answer 200 even for errors");
        assert_eq!(resp.headers()["content-type"], "application/connect+json");
        Stream { resp, dec: EnvelopeDecoder::new(64 << 20), ended: false }
    }

    /// Run a stream to its end: (messages, end-stream payload).
    pub async fn stream(&self, method: &str, body: Value, headers: &[(&str, &str)]) -> (Vec<Value>, Value) {
        let mut s = self.open_stream(method, body, headers).await;
        let mut msgs = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(30), s.next()).await.expect("stream stalled") {
                Some(Msg::Data(v)) => msgs.push(v),
                Some(Msg::End(v)) => return (msgs, v),
                None => panic!("stream closed without an end envelope; got {msgs:?}"),
            }
        }
    }

    /// Start a command through `bash -l -c`, like the SDKs; returns (events, end payload).
    pub async fn run(&self, cmd: &str) -> (Vec<Value>, Value) {
        self.stream("process.Process/Start", start_body(cmd), &[]).await
    }
}

pub fn start_body(cmd: &str) -> Value {
    json!({"process": {"cmd": "/bin/bash", "args": ["-l", "-c", cmd], "envs": {}}, "stdin": false})
}

pub fn basic(user: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:")))
}

pub enum Msg {
    Data(Value),
    End(Value),
}

pub struct Stream {
    pub resp: reqwest::Response,
    dec: EnvelopeDecoder,
    ended: bool,
}

impl Stream {
    pub async fn next(&mut self) -> Option<Msg> {
        if self.ended {
            return None;
        }
        loop {
            if let Some(env) = self.dec.next_envelope().expect("valid envelopes") {
                let v: Value = serde_json::from_slice(&env.data).expect("json envelope");
                if env.flags & FLAG_END_STREAM != 0 {
                    self.ended = true;
                    return Some(Msg::End(v));
                }
                return Some(Msg::Data(v));
            }
            match self.resp.chunk().await.expect("read stream") {
                Some(c) => self.dec.push(&c),
                None => return None,
            }
        }
    }

    /// Next data message within `secs`, panicking on end or timeout.
    pub async fn data(&mut self, secs: u64) -> Value {
        match tokio::time::timeout(Duration::from_secs(secs), self.next()).await.expect("timed out waiting for a message") {
            Some(Msg::Data(v)) => v,
            Some(Msg::End(v)) => panic!("stream ended early: {v}"),
            None => panic!("stream closed"),
        }
    }

    /// Read until the end envelope, collecting data messages.
    pub async fn rest(&mut self, secs: u64) -> (Vec<Value>, Value) {
        let mut msgs = Vec::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(secs), self.next()).await.expect("timed out waiting for the end") {
                Some(Msg::Data(v)) => msgs.push(v),
                Some(Msg::End(v)) => return (msgs, v),
                None => panic!("stream closed without end"),
            }
        }
    }
}

/// Decode a base64 `bytes` value.
pub fn b64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(v.as_str().expect("base64 string")).expect("base64")
}

/// Concatenate the given output kind (`stdout`, `stderr`, `pty`) of process events.
pub fn output(events: &[Value], kind: &str) -> String {
    let mut out = Vec::new();
    for e in events {
        if let Some(d) = e["event"]["data"].get(kind) {
            out.extend(b64(d));
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn end_of(events: &[Value]) -> &Value {
    let last = events.last().expect("events");
    assert!(last["event"].get("end").is_some(), "last event is not end: {last}");
    &last["event"]["end"]
}

/// A fresh directory for one test, world-writable parent so the test user can be given access.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stasis-envd-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
