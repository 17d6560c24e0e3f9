//! What the SDK puts on the wire, checked against a recording mock server: E2B's environment
//! variables, REST paths and bodies, the list query's encoding, the sandbox headers
//! (`E2b-Sandbox-Id`, `E2b-Sandbox-Port`, `X-Access-Token`) and envd's Connect headers.
//! The behaviour behind those requests is tested against the real server in
//! `crates/stasis/tests/sdk.rs`.

use stasis_proto::connect::{encode_end_stream, encode_message};
use stasis_proto::process::{EndEvent, ProcessEvent, ProcessEventResponse, StartEvent};
use stasis_sdk::{CommandOptions, ListOptions, Sandbox, SandboxOptions, SandboxState};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn answer(method: &str, target: &str) -> (u16, &'static str, Vec<u8>) {
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("POST", "/v2/sandboxes") => (
            201,
            "application/json",
            br#"{"templateID":"base","sandboxID":"sbx1","clientID":"c","envdVersion":"0.6.4","envdAccessToken":"tok"}"#.to_vec(),
        ),
        ("GET", "/v2/sandboxes") => (200, "application/json", b"[]".to_vec()),
        ("POST", "/process.Process/Start") => {
            let mut body = encode_message(&ProcessEventResponse { event: ProcessEvent::Start(StartEvent { pid: 7 }) });
            body.extend(encode_message(&ProcessEventResponse {
                event: ProcessEvent::End(EndEvent { exit_code: 0, exited: true, status: "exit status 0".into(), error: None }),
            }));
            body.extend(encode_end_stream(None));
            (200, "application/connect+json", body)
        }
        ("GET", "/files") => (200, "application/octet-stream", b"data".to_vec()),
        _ => (404, "application/json", br#"{"code":404,"message":"no such route in the mock"}"#.to_vec()),
    }
}

/// A one-request-per-connection HTTP/1.1 server that records what it is sent.
async fn mock() -> (String, Arc<Mutex<Vec<Recorded>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let sink = sink.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let mut lines = head.split("\r\n");
                let mut first = lines.next().unwrap().split(' ');
                let (method, target) = (first.next().unwrap().to_owned(), first.next().unwrap().to_owned());
                let headers: Vec<(String, String)> =
                    lines.filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map_or(0, |(_, v)| v.parse().unwrap());
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let (status, ctype, reply) = answer(&method, &target);
                sink.lock().unwrap().push(Recorded { method, target, headers, body });
                let head = format!("HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", reply.len());
                sock.write_all(head.as_bytes()).await.unwrap();
                sock.write_all(&reply).await.unwrap();
            });
        }
    });
    (url, log)
}

// One test: it sets process-wide environment variables.
#[tokio::test]
async fn requests_match_what_the_official_sdks_send() {
    let (url, log) = mock().await;
    std::env::set_var("E2B_API_KEY", "env-key");
    std::env::set_var("E2B_API_URL", &url);
    std::env::set_var("E2B_SANDBOX_URL", &url);

    let sbx = Sandbox::create(SandboxOptions::new().metadata("a", "b").env("X", "1")).await.unwrap();
    assert_eq!((sbx.sandbox_id(), sbx.envd_version()), ("sbx1", "0.6.4"));
    let out = sbx.commands().run_with("echo hi", CommandOptions::new().user("root")).await.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(sbx.files().read("/tmp/x y").await.unwrap(), b"data");
    let mut pages = Sandbox::list(ListOptions::new().state(SandboxState::Paused).state(SandboxState::Running).metadata("k 1", "v&=").limit(5));
    assert!(pages.next_items().await.unwrap().is_empty());
    assert!(!pages.has_next(), "no x-next-token, no next page");

    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 4, "{log:#?}");

    let create = &log[0];
    assert_eq!((create.method.as_str(), create.target.as_str()), ("POST", "/v2/sandboxes"));
    assert_eq!(create.header("x-api-key"), Some("env-key"), "E2B_API_KEY is sent as X-API-KEY");
    let body: serde_json::Value = serde_json::from_slice(&create.body).unwrap();
    assert_eq!(body["templateID"], "base");
    assert_eq!(body["timeout"], 300, "default timeout, seconds");
    assert_eq!(body["metadata"]["a"], "b");
    assert_eq!(body["envVars"]["X"], "1");

    let start = &log[1];
    assert_eq!((start.method.as_str(), start.target.as_str()), ("POST", "/process.Process/Start"));
    assert_eq!(start.header("e2b-sandbox-id"), Some("sbx1"));
    assert_eq!(start.header("e2b-sandbox-port"), Some("49983"));
    assert_eq!(start.header("x-access-token"), Some("tok"));
    assert_eq!(start.header("x-api-key"), None, "the API key stays on the control plane");
    assert_eq!(start.header("content-type"), Some("application/connect+json"));
    assert_eq!(start.header("connect-protocol-version"), Some("1"));
    assert_eq!(start.header("connect-timeout-ms"), Some("60000"), "E2B's 60 s command default");
    assert_eq!(start.header("keepalive-ping-interval"), Some("50"));
    assert_eq!(start.header("authorization"), Some("Basic cm9vdDo="), "base64(\"root:\")");
    assert_eq!(start.body[0], 0, "one data envelope");
    let msg: serde_json::Value = serde_json::from_slice(&start.body[5..]).unwrap();
    assert_eq!(msg["process"]["cmd"], "/bin/bash");
    assert_eq!(msg["process"]["args"], serde_json::json!(["-l", "-c", "echo hi"]));
    assert_eq!(msg["stdin"], false);

    let read = &log[2];
    assert_eq!((read.method.as_str(), read.target.as_str()), ("GET", "/files?path=%2Ftmp%2Fx+y"));
    assert_eq!((read.header("e2b-sandbox-port"), read.header("x-access-token")), (Some("49983"), Some("tok")));

    let list = &log[3];
    let query: Vec<(String, String)> =
        form_urlencoded::parse(list.target.split_once('?').unwrap().1.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.clone());
    assert_eq!(get("state").as_deref(), Some("paused,running"));
    assert_eq!(get("limit").as_deref(), Some("5"));
    let metadata: Vec<(String, String)> =
        form_urlencoded::parse(get("metadata").unwrap().as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(metadata, vec![("k 1".to_owned(), "v&=".to_owned())], "metadata decodes twice, as the server reads it");
}
