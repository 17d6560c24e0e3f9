//! Auth, `/init`, signed URLs, plain routes and bad input against a real envd.

mod common;

use common::*;
use serde_json::{json, Value};
use stasis_proto::connect::encode_envelope;

const TOKEN: &str = "secret-token";

#[tokio::test]
async fn access_token_guards_everything_but_health() {
    let envd = Envd::start_with(&["--access-token", TOKEN]).await;
    let anon = Client { token: None, ..envd.client.clone() };
    let wrong = Client { token: Some("nope".into()), ..envd.client.clone() };

    let r = anon.http.get(anon.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for c in [&anon, &wrong] {
        let (st, body) = c.unary("process.Process/List", json!({})).await;
        assert_eq!((st, body["code"].as_str()), (401, Some("unauthenticated")));
        let (events, end) = c.run("echo hi").await;
        assert!(events.is_empty());
        assert_eq!(end["error"]["code"], "unauthenticated");
        for path in ["/envs", "/metrics", "/files?path=/etc/hostname"] {
            let r = c.req(reqwest::Method::GET, path).send().await.unwrap();
            assert_eq!(r.status(), 401, "{path}");
            let b: Value = r.json().await.unwrap();
            assert_eq!(b["code"], 401);
        }
        let r = c.req(reqwest::Method::POST, "/init").json(&json!({"accessToken": "stolen"})).send().await.unwrap();
        assert_eq!(r.status(), 401, "init needs the current token");
    }
    let (st, _) = envd.unary("process.Process/List", json!({})).await;
    assert_eq!(st, 200);
    let (events, _) = envd.run("echo hi").await;
    assert_eq!(output(&events, "stdout"), "hi\n");
}

fn sign(path: &str, op: &str, user: &str, token: &str, exp: Option<i64>) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let raw = match exp {
        Some(e) => format!("{path}:{op}:{user}:{token}:{e}"),
        None => format!("{path}:{op}:{user}:{token}"),
    };
    format!("v1_{}", base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(raw)).trim_end_matches('='))
}

#[tokio::test]
async fn signed_file_urls() {
    let envd = Envd::start_with(&["--access-token", TOKEN]).await;
    let anon = Client { token: None, ..envd.client.clone() };
    let path = "/etc/hostname";
    let expected = std::fs::read(path).unwrap();

    let sig = sign(path, "read", "", TOKEN, None);
    let r = anon.req(reqwest::Method::GET, "/files").query(&[("path", path), ("signature", &sig)]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), expected);

    let sig = sign(path, "read", "root", TOKEN, None);
    let r = anon
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", path), ("username", "root"), ("signature", &sig)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Signed for read, used for write; wrong user; expired.
    let r = anon
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", "/tmp/stasis-signed"), ("signature", &sign("/tmp/stasis-signed", "read", "", TOKEN, None))])
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = anon
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", path), ("username", "root"), ("signature", &sign(path, "read", "", TOKEN, None))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let past = 1_000_000_000i64;
    let r = anon
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", path), ("signature", &sign(path, "read", "", TOKEN, Some(past))), ("signature_expiration", &past.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let future = 4_000_000_000i64;
    let r = anon
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", path), ("signature", &sign(path, "read", "", TOKEN, Some(future))), ("signature_expiration", &future.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Signed write with the right operation.
    let dest = "/tmp/stasis-envd-signed-upload";
    let r = anon
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", dest), ("username", "root"), ("signature", &sign(dest, "write", "root", TOKEN, None))])
        .header("Content-Type", "application/octet-stream")
        .body("signed")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(std::fs::read_to_string(dest).unwrap(), "signed");
    std::fs::remove_file(dest).unwrap();
}

#[tokio::test]
async fn init_sets_token_env_user_and_workdir() {
    let envd = Envd::start().await;
    let r = envd
        .req(reqwest::Method::POST, "/init")
        .json(&json!({"envVars": {"FOO": "bar"}, "accessToken": TOKEN, "defaultUser": "root", "defaultWorkdir": "/tmp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, _) = envd.unary("process.Process/List", json!({})).await;
    assert_eq!(st, 401, "the token from /init is now required");
    let authed = Client { token: Some(TOKEN.into()), ..envd.client.clone() };
    let envs: Value = authed.req(reqwest::Method::GET, "/envs").send().await.unwrap().json().await.unwrap();
    assert_eq!(envs, json!({"FOO": "bar", "FROM_RUNTIME": "inherited"}));
    let (events, _) = authed.run("echo $FOO $(id -u) $PWD $FROM_RUNTIME").await;
    assert_eq!(output(&events, "stdout"), "bar 0 /tmp inherited\n");
    // Re-init proving the token in the body (no header), as a control plane may after resume.
    let r = envd.req(reqwest::Method::POST, "/init").json(&json!({"accessToken": TOKEN, "envVars": {"FOO": "baz"}})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (events, _) = authed.run("echo $FOO").await;
    assert_eq!(output(&events, "stdout"), "baz\n");
    // An unknown default user is refused.
    let r = authed.req(reqwest::Method::POST, "/init").json(&json!({"defaultUser": "no-such-user-xyz"})).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = authed.req(reqwest::Method::POST, "/init").body("{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn metrics_report_the_machine() {
    let envd = Envd::start().await;
    let m: Value = envd.req(reqwest::Method::GET, "/metrics").send().await.unwrap().json().await.unwrap();
    assert!(m["mem_total"].as_u64().unwrap() > 0);
    assert!(m["mem_used"].as_u64().unwrap() > 0);
    assert!(m["cpu_count"].as_u64().unwrap() >= 1);
    assert!(m["disk_total"].as_u64().unwrap() > 0);
    assert!(m["ts"].as_u64().unwrap() > 1_600_000_000);
}

#[tokio::test]
async fn users_from_basic_auth() {
    let envd = Envd::start().await;
    let (st, r) = envd.unary_as("process.Process/List", json!({}), Some("no-such-user-xyz")).await;
    assert_eq!((st, r["code"].as_str()), (401, Some("unauthenticated")));
    let resp = envd
        .req(reqwest::Method::POST, "/process.Process/List")
        .header("Content-Type", "application/json")
        .header("Authorization", "Bearer abc")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

async fn raw_stream(c: &Client, method: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = c
        .req(reqwest::Method::POST, &format!("/{method}"))
        .header("Content-Type", "application/connect+json")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn end_error(bytes: &[u8]) -> Value {
    let mut dec = stasis_proto::connect::EnvelopeDecoder::new(1 << 20);
    dec.push(bytes);
    let env = dec.next_envelope().unwrap().expect("an envelope");
    assert!(env.is_end_stream(), "expected only an end envelope");
    serde_json::from_slice::<Value>(&env.data).unwrap()["error"].clone()
}

#[tokio::test]
async fn bad_input_gets_connect_errors_and_never_crashes() {
    let envd = Envd::start_with(&["--max-message-bytes", "65536"]).await;
    // Unary: malformed JSON, wrong shapes, wrong types.
    for (method, body) in [
        ("process.Process/List", "{not json"),
        ("process.Process/SendSignal", r#"{"process":"x"}"#),
        ("process.Process/SendSignal", r#"{"process":{"pid":1},"signal":"SIGHUP"}"#),
        ("process.Process/SendInput", r#"{"process":{"pid":1},"input":{"stdin":"!!!"}}"#),
        ("process.Process/SendInput", r#"{"process":{"pid":-4},"input":{"stdin":""}}"#),
        ("filesystem.Filesystem/Stat", r#"{"path":42}"#),
        ("filesystem.Filesystem/ListDir", r#"[1,2,3]"#),
        ("filesystem.Filesystem/ListDir", r#"{"path":"/","depth":"deep"}"#),
    ] {
        let r = envd
            .req(reqwest::Method::POST, &format!("/{method}"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{method} {body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], "invalid_argument", "{method} {body}: {v}");
    }
    // Oversized unary body.
    let big = format!(r#"{{"path":"{}"}}"#, "a".repeat(200_000));
    let r = envd
        .req(reqwest::Method::POST, "/filesystem.Filesystem/Stat")
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "resource_exhausted");
    // An oversized /init (plain HTTP: 413), and streaming bodies that really are over the limit.
    let big_init = format!(r#"{{"envVars":{{"A":"{}"}}}}"#, "a".repeat(200_000));
    let r = envd.req(reqwest::Method::POST, "/init").header("Content-Type", "application/json").body(big_init).send().await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], 413);
    let big_start = encode_envelope(0, start_body(&format!("echo {}", "a".repeat(200_000))).to_string().as_bytes());
    let big_watch = encode_envelope(0, format!(r#"{{"path":"/{}"}}"#, "a".repeat(200_000)).as_bytes());
    for (method, body) in [("process.Process/Start", big_start), ("filesystem.Filesystem/WatchDir", big_watch)] {
        let (st, bytes) = raw_stream(&envd, method, body).await;
        assert_eq!(st, 200, "{method}");
        assert_eq!(end_error(&bytes)["code"], "resource_exhausted", "{method}");
    }

    // Streams: errors in the end envelope with HTTP 200.
    let good = encode_envelope(0, start_body("echo x").to_string().as_bytes());
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (good[..good.len() - 3].to_vec(), "invalid_argument"),             // truncated envelope
        (vec![0, 0, 0], "invalid_argument"),                               // truncated header
        (vec![], "invalid_argument"),                                      // empty body
        ([good.clone(), good.clone()].concat(), "invalid_argument"),       // two messages
        (encode_envelope(0, b"{oops"), "invalid_argument"),                // bad JSON
        (encode_envelope(0, br#"{"process":{"cmd":""}}"#), "invalid_argument"), // no cmd
        (vec![0, 0x7f, 0xff, 0xff, 0xff, 1, 2, 3], "resource_exhausted"),  // declares 2 GiB
        (encode_envelope(1, b"compressed?"), "unimplemented"),             // compressed flag
    ];
    for (body, code) in cases {
        let (st, bytes) = raw_stream(&envd, "process.Process/Start", body.clone()).await;
        assert_eq!(st, 200);
        assert_eq!(end_error(&bytes)["code"], code, "body {body:?}");
    }
    let (st, bytes) = raw_stream(&envd, "process.Process/Connect", encode_envelope(0, br#"{"process":{}}"#)).await;
    assert_eq!(st, 200);
    assert_eq!(end_error(&bytes)["code"], "invalid_argument");
    let (_, bytes) = raw_stream(&envd, "process.Process/StreamInput", vec![0, 0, 0, 0, 2, b'{']).await;
    assert_eq!(end_error(&bytes)["code"], "invalid_argument");
    let (_, bytes) = raw_stream(&envd, "process.Process/StreamInput", encode_envelope(0, br#"{"start":{"process":{"pid":999999}}}"#)).await;
    assert_eq!(end_error(&bytes)["code"], "not_found");

    // Unknown methods.
    let (st, v) = envd.unary("process.Process/Nope", json!({})).await;
    assert_eq!((st, v["code"].as_str()), (404, Some("unimplemented")));

    // Still alive and well.
    let (events, _) = envd.run("echo alive").await;
    assert_eq!(output(&events, "stdout"), "alive\n");
}

#[tokio::test]
async fn cors_for_browsers() {
    let envd = Envd::start_with(&["--access-token", TOKEN]).await;
    let r = envd
        .http
        .request(reqwest::Method::OPTIONS, envd.url("/process.Process/Start"))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type,x-access-token,connect-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "preflight needs no token");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-allow-headers"].to_str().unwrap().contains("x-access-token"));
    let r = envd
        .req(reqwest::Method::POST, "/process.Process/List")
        .header("Origin", "https://app.example")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn early_answers_close_the_connection() {
    let envd = Envd::start().await;
    // StreamInput for an unknown pid is answered before the body ends: the connection must be
    // marked for closing, so a pooling client does not reuse it.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(encode_envelope(0, br#"{"start":{"process":{"pid":999999}}}"#))).await.unwrap();
    let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|i| (i, rx)) }));
    let r = envd
        .req(reqwest::Method::POST, "/process.Process/StreamInput")
        .header("Content-Type", "application/connect+json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["connection"], "close");
    drop(tx);
    // A request read to its end keeps the connection.
    let r = envd.req(reqwest::Method::POST, "/process.Process/List").header("Content-Type", "application/json").body("{}").send().await.unwrap();
    assert!(r.headers().get("connection").is_none());
    // Many requests in a row on the pooled client all succeed.
    for _ in 0..20 {
        let (_, end) = envd.stream("process.Process/Connect", json!({"process": {"pid": 999_999}}), &[]).await;
        assert_eq!(end["error"]["code"], "not_found");
        let (st, _) = envd.unary("process.Process/List", json!({})).await;
        assert_eq!(st, 200);
    }
}
