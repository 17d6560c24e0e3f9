//! Sandbox traffic through the proxy: header and host routing, streaming, upgrades, 502
//! bodies, connections closed on pause, and auto-resume.

use crate::common::*;
use crate::upstream::{read_head, Upstream};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use stasis_lifecycle::LifecycleConfig;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PORT: u16 = 8080;

fn to_sandbox(h: &Harness, method: Method, path: &str, id: &str, port: u16) -> RequestBuilder {
    h.req(method, path, None).header("E2b-Sandbox-Id", id).header("E2b-Sandbox-Port", port.to_string())
}

#[track_caller]
fn assert_unreachable(status: StatusCode, body: &Value, id: &str, message: &str) {
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body, &json!({"sandboxId": id, "message": message, "code": 502}));
}

const NOT_FOUND: &str = "The sandbox was not found";
const PORT_CLOSED: &str = "The sandbox is running but port is not open";

#[tokio::test]
async fn header_routed_requests_reach_the_sandbox_port() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);

    let resp = to_sandbox(&h, Method::GET, "/hello?x=1&y=%20", &id, PORT).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-upstream"], "yes");
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("GET /hello?x=1&y=%20\n"), "{text}");

    // Sandbox traffic (file uploads) is streamed, not held to the control plane's 1 MiB.
    let body = "payload ".repeat(400_000);
    let resp = to_sandbox(&h, Method::POST, "/echo", &id, PORT).body(body.clone()).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.contains(&format!("body={body}\n")), "request body did not pass through intact");

    // The 1.x SDKs' {sandboxID}-{clientID} in the header.
    let resp = to_sandbox(&h, Method::GET, "/old", &format!("{id}-6532622b"), PORT).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // No API key is needed for sandbox traffic, and a control-plane path is still sandbox traffic.
    let resp = to_sandbox(&h, Method::GET, "/health", &id, PORT).send().await.unwrap();
    assert!(resp.text().await.unwrap().starts_with("GET /health\n"));
}

#[tokio::test]
async fn host_routed_requests_reach_the_sandbox_port() {
    let cfg = LifecycleConfig { domain: Some("stasis.test".into()), ..Default::default() };
    let h = Harness::with_config(cfg).await;
    let up = Upstream::start().await;
    let (status, v) = h.post("/v2/sandboxes", K1, json!({"templateID": "base"})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(v["domain"], "stasis.test");
    let id = v["sandboxID"].as_str().unwrap().to_owned();
    h.expose(&id, PORT, up.addr);

    let resp = h.req(Method::GET, "/via-host", None).header("host", format!("{PORT}-{id}.stasis.test")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("GET /via-host\n"), "{text}");
    let resp = h.req(Method::GET, "/via-host", None).header("host", format!("{PORT}-{id}-6532622b.stasis.test")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let (s, v) = split(h.req(Method::GET, "/", None).header("host", format!("9999-{id}.stasis.test")).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, PORT_CLOSED);
    let (s, v) = split(h.req(Method::GET, "/", None).header("host", "8080-aaaaaaaaaaaaaaaaaaaa.stasis.test").send().await.unwrap()).await;
    assert_unreachable(s, &v, "aaaaaaaaaaaaaaaaaaaa", NOT_FOUND);
    // Other hosts under the domain are the control plane.
    let (s, v) = split(h.req(Method::GET, &format!("/sandboxes/{id}"), Some(K1)).header("host", "api.stasis.test").send().await.unwrap()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["sandboxID"], id.as_str());
}

#[tokio::test]
async fn unreachable_sandboxes_answer_502_in_e2b_shape() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;

    // Running, nothing listening on the port.
    let (s, v) = split(to_sandbox(&h, Method::GET, "/", &id, PORT).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, PORT_CLOSED);
    // Exposed, but the listener is gone.
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    h.expose(&id, 7000, gone);
    let (s, v) = split(to_sandbox(&h, Method::GET, "/", &id, 7000).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, PORT_CLOSED);

    h.expose(&id, PORT, up.addr);
    assert_eq!(to_sandbox(&h, Method::GET, "/", &id, PORT).send().await.unwrap().status(), StatusCode::OK);
    // Paused.
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let (s, v) = split(to_sandbox(&h, Method::GET, "/", &id, PORT).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, NOT_FOUND);
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"), "traffic resumed a sandbox without autoResume");
    // Killed.
    assert_eq!(h.delete(&format!("/sandboxes/{id}"), K1).await.0, StatusCode::NO_CONTENT);
    let (s, v) = split(to_sandbox(&h, Method::GET, "/", &id, PORT).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, NOT_FOUND);
    // Unknown, and not even an id.
    for bad in ["aaaaaaaaaaaaaaaaaaaa", "nope"] {
        let (s, v) = split(to_sandbox(&h, Method::GET, "/", bad, PORT).send().await.unwrap()).await;
        assert_unreachable(s, &v, bad, NOT_FOUND);
    }
}

#[tokio::test]
async fn streaming_responses_arrive_incrementally() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let mut resp = to_sandbox(&h, Method::GET, "/stream", &id, PORT).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let first = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.expect("the first chunk was held back").unwrap().unwrap();
    assert_eq!(&first[..], b"first\n");
    up.release.notify_one();
    let mut rest = Vec::new();
    while let Some(c) = tokio::time::timeout(Duration::from_secs(5), resp.chunk()).await.unwrap().unwrap() {
        rest.extend_from_slice(&c);
    }
    assert_eq!(rest, b"second\n");
}

#[tokio::test]
async fn a_pause_cuts_streaming_responses_in_flight() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    let other = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    h.expose(&other, PORT, up.addr);
    let mut resp = to_sandbox(&h, Method::GET, "/forever", &id, PORT).send().await.unwrap();
    let mut bystander = to_sandbox(&h, Method::GET, "/forever", &other, PORT).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.chunk().await.unwrap().unwrap();
    bystander.chunk().await.unwrap().unwrap();

    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream kept flowing after the pause");
    // The upstream side was closed too, not just the client's.
    for _ in 0..100 {
        if up.ended() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.ended(), 1, "the connection into the sandbox was left open");
    // The other sandbox's stream is untouched.
    for _ in 0..3 {
        assert!(tokio::time::timeout(Duration::from_secs(2), bystander.chunk()).await.unwrap().unwrap().is_some());
    }
}

/// Opens an upgraded connection through the proxy; returns the stream after the 101 head.
async fn upgrade(h: &Harness, id: &str) -> (tokio::net::TcpStream, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nE2b-Sandbox-Id: {id}\r\nE2b-Sandbox-Port: {PORT}\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, rest) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s)).await.unwrap().unwrap();
    (s, head, rest)
}

async fn read_exactly(s: &mut tokio::net::TcpStream, mut have: Vec<u8>, n: usize) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    while have.len() < n {
        let k = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert!(k > 0, "closed early after {:?}", String::from_utf8_lossy(&have));
        have.extend_from_slice(&buf[..k]);
    }
    have
}

#[tokio::test]
async fn upgrades_pass_bytes_both_ways_and_close_on_pause() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let (mut s, head, rest) = upgrade(&h, &id).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.to_ascii_lowercase().contains("upgrade: shout"), "{head}");
    // Server to client without being asked.
    let got = read_exactly(&mut s, rest, 8).await;
    assert_eq!(&got, b"welcome\n");
    // Client to server and back, several times.
    for msg in ["hello\n", "stasis sandboxes\n"] {
        s.write_all(msg.as_bytes()).await.unwrap();
        let got = read_exactly(&mut s, vec![], msg.len()).await;
        assert_eq!(String::from_utf8(got).unwrap(), msg.to_uppercase());
    }

    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the upgraded connection survived the pause");
    for _ in 0..100 {
        if up.ended() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.ended(), 1, "the upstream side of the upgrade was left open");
}

#[tokio::test]
async fn traffic_resumes_a_paused_sandbox_that_asked_for_it() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let auto = h.create(K1, json!({"templateID": "base", "autoResume": {"enabled": true}})).await;
    let manual = h.create(K1, json!({"templateID": "base", "autoResume": {"enabled": false}})).await;
    h.expose(&auto, PORT, up.addr);
    h.expose(&manual, PORT, up.addr);
    let (_, detail) = h.get(&format!("/sandboxes/{auto}"), K1).await;
    assert_eq!(detail["lifecycle"]["autoResume"], true);
    for id in [&auto, &manual] {
        assert_eq!(h.pause(K1, id).await, StatusCode::NO_CONTENT);
    }
    h.clock.advance(secs(100));

    let resp = to_sandbox(&h, Method::GET, "/wake", &auto, PORT).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().starts_with("GET /wake\n"));
    assert_eq!(h.state(K1, &auto).await.as_deref(), Some("running"));
    assert_eq!(h.runtime_status(&auto), Some(stasis_runtime::SandboxStatus::Running));
    let (_, detail) = h.get(&format!("/sandboxes/{auto}"), K1).await;
    assert_eq!(parse_time(&detail["endAt"]), t0() + secs(100 + 300));

    let (s, v) = split(to_sandbox(&h, Method::GET, "/wake", &manual, PORT).send().await.unwrap()).await;
    assert_unreachable(s, &v, &manual, NOT_FOUND);
    assert_eq!(h.state(K1, &manual).await.as_deref(), Some("paused"));
}

#[tokio::test]
async fn envd_health_probes_do_not_wake_a_paused_sandbox() {
    // The SDKs probe envd's /health whenever a stream breaks, as the pause itself breaks them.
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create(K1, json!({"templateID": "base", "autoResume": {"enabled": true}})).await;
    let envd = 49983;
    h.expose(&id, envd, up.addr);
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);

    let (s, v) = split(to_sandbox(&h, Method::GET, "/health", &id, envd).send().await.unwrap()).await;
    assert_unreachable(s, &v, &id, NOT_FOUND);
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"), "a health probe resumed the sandbox");
    // Anything else for envd is use, and wakes it.
    let resp = to_sandbox(&h, Method::GET, "/files?path=/x", &id, envd).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
    let resp = to_sandbox(&h, Method::GET, "/health", &id, envd).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "a running sandbox's health probe goes through");
}

#[tokio::test]
async fn concurrent_traffic_auto_resumes_once() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create(K1, json!({"templateID": "base", "autoResume": {"enabled": true}})).await;
    h.expose(&id, PORT, up.addr);
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.runtime.set_delay(Duration::from_millis(200));
    let send = || async { to_sandbox(&h, Method::GET, "/many", &id, PORT).send().await.unwrap().status() };
    let (a, b, c, d) = tokio::join!(send(), send(), send(), send());
    assert_eq!([a, b, c, d], [StatusCode::OK; 4]);
    assert_eq!(h.runtime_status(&id), Some(stasis_runtime::SandboxStatus::Running));
}

#[tokio::test]
async fn a_kill_cuts_streaming_responses_in_flight() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let mut resp = to_sandbox(&h, Method::GET, "/forever", &id, PORT).send().await.unwrap();
    resp.chunk().await.unwrap().unwrap();
    assert_eq!(h.delete(&format!("/sandboxes/{id}"), K1).await.0, StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the stream kept flowing after the kill");
}

#[tokio::test]
async fn bytes_sent_right_after_an_upgrade_request_are_not_lost() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: localhost\r\nE2b-Sandbox-Id: {id}\r\nE2b-Sandbox-Port: {PORT}\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nearly\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, rest) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s)).await.unwrap().unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let got = read_exactly(&mut s, rest, 14).await;
    assert_eq!(String::from_utf8(got).unwrap(), "welcome\nEARLY\n");
}

#[tokio::test]
async fn a_client_that_goes_away_closes_the_connection_into_the_sandbox() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let mut resp = to_sandbox(&h, Method::GET, "/forever", &id, PORT).send().await.unwrap();
    resp.chunk().await.unwrap().unwrap();
    drop(resp);
    for _ in 0..150 {
        if up.ended() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.ended(), 1, "the upstream connection outlived its client");
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
}

#[tokio::test]
async fn traffic_during_a_pause_resumes_an_auto_resume_sandbox_afterwards() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create(K1, json!({"templateID": "base", "autoResume": {"enabled": true}})).await;
    h.expose(&id, PORT, up.addr);
    h.runtime.set_delay(Duration::from_millis(500));
    let pause_path = format!("/sandboxes/{id}/pause");
    let (pause, traffic) = tokio::join!(h.post(&pause_path, K1, json!({})), async {
        h.wait_for(&id, stasis_types::SandboxState::Pausing).await;
        split(to_sandbox(&h, Method::GET, "/during-pause", &id, PORT).send().await.unwrap()).await
    });
    assert_eq!(pause.0, StatusCode::NO_CONTENT, "{}", pause.1);
    assert_eq!(traffic.0, StatusCode::OK, "{}", traffic.1);
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
}

#[tokio::test]
async fn a_request_waiting_for_its_answer_when_the_sandbox_pauses_is_told_it_is_gone() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let req = to_sandbox(&h, Method::GET, "/hang", &id, PORT).send();
    let (resp, pause) = tokio::join!(req, async {
        while up.accepted.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        h.pause(K1, &id).await
    });
    assert_eq!(pause, StatusCode::NO_CONTENT);
    // Either the connection is dropped, or the E2B answer for a sandbox that is not there;
    // not "port is not open", which would send the SDK looking for a closed port.
    if let Ok(resp) = resp {
        let (s, v) = split(resp).await;
        assert_unreachable(s, &v, &id, NOT_FOUND);
    }
    for _ in 0..150 {
        if up.ended() >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(up.ended(), 1, "the connection into the sandbox was left open");
}

#[tokio::test]
async fn expect_100_continue_uploads_pass_through() {
    let h = Harness::start().await;
    let up = Upstream::start().await;
    let id = h.create_base(K1).await;
    h.expose(&id, PORT, up.addr);
    let mut s = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nE2b-Sandbox-Id: {id}\r\nE2b-Sandbox-Port: {PORT}\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (interim, rest) = tokio::time::timeout(Duration::from_secs(5), read_head(&mut s)).await.expect("no 100 Continue").unwrap();
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    assert!(rest.is_empty());
    s.write_all(b"hello").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await.unwrap().unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains("body=hello\n"), "{out}");
}
