//! Bad input is a 400 (or 413) with E2B's error body, never a 500, and changes nothing.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn raw_post(h: &Harness, path: &str, body: &'static str) -> (StatusCode, serde_json::Value) {
    let b = h.req(Method::POST, path, Some(K1)).header("content-type", "application/json").body(body);
    split(b.send().await.unwrap()).await
}

#[tokio::test]
async fn bad_create_bodies_are_400() {
    let h = Harness::start().await;
    let bodies: &[&'static str] = &[
        "{",
        "not json",
        "[]",
        "null",
        r#"{"templateID": 5}"#,
        r#"{"timeout": 10}"#,
        r#"{"templateID": ""}"#,
        r#"{"templateID": "base", "timeout": "soon"}"#,
        r#"{"templateID": "base", "timeout": -1}"#,
        r#"{"templateID": "base", "timeout": 0}"#,
        r#"{"templateID": "base", "timeout": 1.5}"#,
        r#"{"templateID": "base", "timeout": 86401}"#,
        r#"{"templateID": "base", "timeout": 18446744073709551615}"#,
        r#"{"templateID": "base", "timeout": 1e40}"#,
        r#"{"templateID": "base", "metadata": {"a": 1}}"#,
        r#"{"templateID": "base", "metadata": []}"#,
        r#"{"templateID": "base", "envVars": {"A": null}}"#,
        r#"{"templateID": "base", "envVars": {"A=B": "x"}}"#,
        r#"{"templateID": "base", "autoPause": "yes"}"#,
        r#"{"templateID": "base", "autoResume": true}"#,
        r#"{"templateID": "nope"}"#,
        r#"{"templateID": "../base"}"#,
    ];
    for route in ["/v2/sandboxes", "/sandboxes"] {
        for body in bodies {
            let (status, v) = raw_post(&h, route, body).await;
            assert_error(status, &v, 400);
            assert!(v.to_string().len() < 4096, "{body}: {v}");
        }
    }
    let (_, list) = h.get("/v2/sandboxes", K1).await;
    assert_eq!(list, json!([]), "a bad create left something behind");
    assert!(h.store_ids().await.is_empty());
    assert!(h.runtime_ids().await.is_empty());
    // Deep nesting in a free-form field is refused, not a stack overflow.
    let deep = format!(r#"{{"templateID": "base", "network": {}{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    let b = h.req(Method::POST, "/v2/sandboxes", Some(K1)).header("content-type", "application/json").body(deep);
    let (status, v) = split(b.send().await.unwrap()).await;
    assert_error(status, &v, 400);
    let many: serde_json::Map<String, serde_json::Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    let (status, v) = h.post("/v2/sandboxes", K1, json!({"templateID": "base", "metadata": many})).await;
    assert_error(status, &v, 400);
    // Unknown keys are ignored, as on E2B.
    let (status, v) = raw_post(&h, "/v2/sandboxes", r#"{"templateID": "base", "somethingNew": {"x": [1]}, "secure": true, "mcp": null}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn bad_timeouts_elsewhere_are_400() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    let timeout = format!("/sandboxes/{id}/timeout");
    for body in ["{}", r#"{"timeout": -5}"#, r#"{"timeout": 0}"#, r#"{"timeout": 86401}"#, r#"{"timeout": "1"}"#, r#"{"timeout": 18446744073709551615}"#, "[", r#"{"timeout": null}"#] {
        let (status, v) = raw_post(&h, &timeout, body).await;
        assert_error(status, &v, 400);
    }
    let connect = format!("/v2/sandboxes/{id}/connect");
    for body in [r#"{"timeout": -5}"#, r#"{"timeout": 0}"#, r#"{"timeout": 86401}"#, r#"{"timeout": "x"}"#, r#"{"memory": "x"}"#, "{{"] {
        let (status, v) = raw_post(&h, &connect, body).await;
        assert_error(status, &v, 400);
    }
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    // A bad timeout does not resume a paused sandbox.
    for path in [connect.clone(), format!("/sandboxes/{id}/resume")] {
        let (status, v) = raw_post(&h, &path, r#"{"timeout": 0}"#).await;
        assert_error(status, &v, 400);
        assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"));
    }
    let (status, v) = raw_post(&h, &format!("/sandboxes/{id}/pause"), r#"{"memory": 3}"#).await;
    assert_error(status, &v, 400);
    // Nothing above changed the end time.
    let detail = h.get(&format!("/sandboxes/{id}"), K1).await.1;
    assert_eq!(parse_time(&detail["endAt"]), t0() + secs(300));
}

#[tokio::test]
async fn bad_list_queries_are_400() {
    let h = Harness::start().await;
    for _ in 0..2 {
        h.create_base(K1).await;
    }
    let resp = h.req(Method::GET, "/v2/sandboxes?limit=1", Some(K1)).send().await.unwrap();
    let token = resp.headers()["x-next-token"].to_str().unwrap().to_owned();
    for q in [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "limit=1.5",
        "limit=100000",
        "limit=99999999999999999999",
        "state=gone",
        "state=running,nope",
        "nextToken=zzzz",
        "nextToken=%00%ff",
        "nextToken=41",
    ] {
        let (status, v) = h.get(&format!("/v2/sandboxes?{q}"), K1).await;
        assert_error(status, &v, 400);
    }
    let tampered = format!("{}0", token);
    let (status, v) = h.get(&format!("/v2/sandboxes?nextToken={tampered}"), K1).await;
    assert_error(status, &v, 400);
    let (status, v) = h.get(&format!("/v2/sandboxes?limit=5&nextToken={token}"), K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    let big = format!(r#"{{"templateID": "base", "metadata": {{"a": "{}"}}}}"#, "x".repeat((1 << 20) + 10));
    let paths = ["/v2/sandboxes", "/sandboxes", "/sandboxes/{id}/timeout", "/sandboxes/{id}/pause", "/sandboxes/{id}/resume"];
    let more = ["/sandboxes/{id}/connect", "/v2/sandboxes/{id}/connect", "/sandboxes/{id}/refreshes"];
    for path in paths.iter().chain(&more).map(|p| p.replace("{id}", &id)) {
        let b = h.req(Method::POST, &path, Some(K1)).header("content-type", "application/json").body(big.clone());
        let (status, v) = split(b.send().await.unwrap()).await;
        assert_error(status, &v, 413);
    }
    // Chunked, so no Content-Length tells in advance.
    let mut req = format!("POST /v2/sandboxes HTTP/1.1\r\nHost: x\r\nX-API-KEY: {K1}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").into_bytes();
    for piece in big.as_bytes().chunks(64 << 10) {
        req.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        req.extend_from_slice(piece);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let head = raw_exchange(h.addr, &req).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(head.contains(r#""code":413"#), "{head}");
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
    let (_, list) = h.get("/v2/sandboxes", K1).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let h = Harness::start().await;
    let (status, v) = h.get("/nope", K1).await;
    assert_error(status, &v, 404);
    let resp = h.req(Method::PUT, "/sandboxes", Some(K1)).send().await.unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_ne!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn undecodable_paths_are_json_errors() {
    let h = Harness::start().await;
    let cases = [
        ("/sandboxes/%FF", Method::GET),
        ("/sandboxes/%FF", Method::DELETE),
        ("/sandboxes/%FF/pause", Method::POST),
        ("/sandboxes/%FF/timeout", Method::POST),
        ("/sandboxes/%FF/metrics", Method::GET),
        ("/v2/sandboxes/%C3%28/connect", Method::POST),
    ];
    for (path, method) in cases {
        let resp = h.req(method, path, Some(K1)).header("content-type", "application/json").body("{}").send().await.unwrap();
        let (status, v) = split(resp).await;
        assert_error(status, &v, 400);
    }
}

#[tokio::test]
async fn garbage_on_the_socket_does_not_disturb_the_server() {
    let h = Harness::start().await;
    for junk in [&b"GARBAGE\r\n\r\n"[..], b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"] {
        let out = raw_exchange(h.addr, junk).await;
        assert!(out.is_empty() || out.starts_with("HTTP/1.1 4"), "{out}");
    }
    let resp = h.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_method_is_a_json_405() {
    let h = Harness::start().await;
    let (status, body) = split(h.req(Method::PUT, "/v2/sandboxes", Some(K1)).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["code"], 405, "{body}");
}
