//! Every control-plane route with its status codes and E2B's field names.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::HashSet;

const SANDBOX_KEYS: [&str; 5] = ["templateID", "sandboxID", "clientID", "envdVersion", "envdAccessToken"];

#[tokio::test]
async fn create_answers_201_with_e2b_fields_on_both_routes() {
    let h = Harness::start().await;
    for (route, secure) in [("/v2/sandboxes", None), ("/v2/sandboxes", Some(false)), ("/sandboxes", Some(true))] {
        let mut body = json!({"templateID": "base", "metadata": {"a": "1"}, "envVars": {"X": "y"}});
        if let Some(secure) = secure {
            body["secure"] = json!(secure);
        }
        let (status, v) = h.post(route, K1, body).await;
        assert_eq!(status, StatusCode::CREATED, "{route}: {v}");
        for key in SANDBOX_KEYS {
            assert!(v[key].is_string(), "{route}: {key} missing in {v}");
        }
        assert_eq!(v["templateID"], "base");
        assert_eq!(v["clientID"], "6532622b");
        let id = v["sandboxID"].as_str().unwrap();
        assert_eq!(id.len(), 20);
        let version = v["envdVersion"].as_str().unwrap();
        let parts: Vec<u64> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert!(parts.len() == 3 && (parts[0], parts[1]) >= (0, 1), "envdVersion {version}");
        assert!(v["envdAccessToken"].as_str().unwrap().len() >= 16);
        assert_eq!(h.runtime_status(id), Some(stasis_runtime::SandboxStatus::Running));
    }
    // The legacy route gives envd a token only when asked (the 1.x SDKs never send one).
    let (status, v) = h.post("/sandboxes", K1, json!({"templateID": "base"})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for key in &SANDBOX_KEYS[..4] {
        assert!(v[key].is_string(), "{key} missing in {v}");
    }
    assert!(v.get("envdAccessToken").is_none(), "{v}");
    // The second template the fake knows also works.
    h.create(K1, json!({"templateID": "code-interpreter-v1"})).await;
}

#[tokio::test]
async fn get_answers_detail_and_404() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 60, "metadata": {"team": "x"}})).await;
    let (status, v) = h.get(&format!("/sandboxes/{id}"), K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for key in ["templateID", "sandboxID", "clientID", "startedAt", "endAt", "cpuCount", "memoryMB", "diskSizeMB", "state", "envdVersion", "metadata"] {
        assert!(!v[key].is_null(), "{key} missing in {v}");
    }
    assert_eq!(v["sandboxID"], id.as_str());
    assert_eq!(v["state"], "running");
    assert_eq!(v["metadata"]["team"], "x");
    assert_eq!(parse_time(&v["startedAt"]), t0());
    assert_eq!(parse_time(&v["endAt"]), t0() + secs(60));
    assert_eq!(v["lifecycle"]["onTimeout"], "kill");
    // The 1.x SDKs address it as {sandboxID}-{clientID}.
    let (status, v) = h.get(&format!("/sandboxes/{id}-6532622b"), K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["sandboxID"], id.as_str());

    let (status, v) = h.get("/sandboxes/aaaaaaaaaaaaaaaaaaaa", K1).await;
    assert_error(status, &v, 404);
    let (status, v) = h.get("/sandboxes/not-an-id", K1).await;
    assert_error(status, &v, 404);
}

#[tokio::test]
async fn v2_list_filters_by_state_in_both_styles_and_by_metadata() {
    let h = Harness::start().await;
    let running = h.create(K1, json!({"templateID": "base", "metadata": {"a": "1", "k": "v w"}})).await;
    let paused = h.create(K1, json!({"templateID": "base", "metadata": {"a": "2"}})).await;
    assert_eq!(h.pause(K1, &paused).await, StatusCode::NO_CONTENT);

    let ids = |v: &Value| -> HashSet<String> { v.as_array().unwrap().iter().map(|s| s["sandboxID"].as_str().unwrap().to_owned()).collect() };
    let both: HashSet<String> = [running.clone(), paused.clone()].into();
    for query in ["", "?state=paused&state=running", "?state=paused,running", "?state=paused%2Crunning"] {
        let (status, v) = h.get(&format!("/v2/sandboxes{query}"), K1).await;
        assert_eq!(status, StatusCode::OK, "{query}: {v}");
        assert_eq!(ids(&v), both, "{query}");
    }
    let (_, v) = h.get("/v2/sandboxes?state=paused", K1).await;
    assert_eq!(ids(&v), [paused.clone()].into());
    let listed = &v[0];
    for key in ["templateID", "sandboxID", "clientID", "startedAt", "endAt", "cpuCount", "memoryMB", "diskSizeMB", "state", "envdVersion"] {
        assert!(!listed[key].is_null(), "{key} missing in {listed}");
    }
    assert_eq!(listed["state"], "paused");
    let (_, v) = h.get("/v2/sandboxes?state=running", K1).await;
    assert_eq!(ids(&v), [running.clone()].into());

    // metadata is a form-encoded string inside the query: decoded twice.
    let (status, v) = h.get("/v2/sandboxes?metadata=a%3D1", K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(ids(&v), [running.clone()].into());
    // What the SDKs send for {k: "v w", a: "1"}: each part quoted, form-encoded, URL-encoded.
    let (_, v) = h.get("/v2/sandboxes?metadata=k%3Dv%252520w%26a%3D1", K1).await;
    assert_eq!(ids(&v), [running.clone()].into());
    let (_, v) = h.get("/v2/sandboxes?metadata=a%3D1&state=paused", K1).await;
    assert!(ids(&v).is_empty(), "filters combine with AND: {v}");
    let (_, v) = h.get("/v2/sandboxes?metadata=a%3D3", K1).await;
    assert!(ids(&v).is_empty());
}

#[tokio::test]
async fn v2_list_pages_completely_without_duplicates() {
    let h = Harness::start().await;
    let mut created = HashSet::new();
    for i in 0..8 {
        let id = h.create(K1, json!({"templateID": "base", "metadata": {"n": i.to_string()}})).await;
        if i % 3 == 0 {
            assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
        }
        created.insert(id);
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(t) => format!("/v2/sandboxes?limit=3&nextToken={t}"),
            None => "/v2/sandboxes?limit=3".to_owned(),
        };
        let resp = h.req(Method::GET, &path, Some(K1)).send().await.unwrap();
        let next = resp.headers().get("x-next-token").map(|v| v.to_str().unwrap().to_owned());
        let (status, v) = split(resp).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let items = v.as_array().unwrap();
        pages += 1;
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|s| s["sandboxID"].as_str().unwrap().to_owned()));
        match next.filter(|t| !t.is_empty()) {
            Some(t) => {
                assert_eq!(items.len(), 3, "a page before the last is full");
                token = Some(t);
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8, "duplicates or gaps: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), created);
}

#[tokio::test]
async fn legacy_list_shows_only_running() {
    let h = Harness::start().await;
    let running = h.create_base(K1).await;
    let paused = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &paused).await, StatusCode::NO_CONTENT);
    let (status, v) = h.get("/sandboxes", K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|s| s["sandboxID"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![running.as_str()]);
    assert_eq!(v[0]["state"], "running");
}

#[tokio::test]
async fn pause_answers_204_then_409_and_404() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    // The SDKs send `{}` or nothing at all.
    let resp = h.req(Method::POST, &format!("/sandboxes/{id}/pause"), Some(K1)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"));
    assert_eq!(h.runtime_status(&id), Some(stasis_runtime::SandboxStatus::Paused));
    let (status, v) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
    assert_error(status, &v, 409);
    let (status, v) = h.post("/sandboxes/aaaaaaaaaaaaaaaaaaaa/pause", K1, json!({})).await;
    assert_error(status, &v, 404);
    let (status, v) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({"memory": false, "requireHealthyGuest": false})).await;
    assert_error(status, &v, 409);
}

#[tokio::test]
async fn connect_running_only_extends_and_paused_resumes_with_fresh_end() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 600})).await;
    let connect = format!("/v2/sandboxes/{id}/connect");
    // Running, asking for less than is left: endAt stays.
    let (status, v) = h.post(&connect, K1, json!({"timeout": 10})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for key in SANDBOX_KEYS {
        assert!(v[key].is_string(), "{key} missing in {v}");
    }
    let token = h.get(&format!("/sandboxes/{id}"), K1).await.1["envdAccessToken"].clone();
    assert!(token.is_string());
    assert_eq!(v["envdAccessToken"], token);
    assert_eq!(end_at(&h, &id).await, t0() + secs(600));
    // Running, asking for more: extended to now + timeout.
    h.clock.advance(secs(100));
    let (status, _) = h.post(&connect, K1, json!({"timeout": 1000})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(end_at(&h, &id).await, t0() + secs(1100));
    // Empty body on a running sandbox: default 300 s is less than what is left, nothing changes.
    let resp = h.req(Method::POST, &connect, Some(K1)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(end_at(&h, &id).await, t0() + secs(1100));

    // Paused: resumed, 201, endAt = now + timeout (default 300), even if that is shorter.
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.clock.advance(secs(50));
    let resp = h.req(Method::POST, &connect, Some(K1)).send().await.unwrap();
    let (status, v) = split(resp).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["sandboxID"], id.as_str());
    assert_eq!(v["envdAccessToken"], token, "a resumed envd keeps its token");
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
    assert_eq!(h.runtime_status(&id), Some(stasis_runtime::SandboxStatus::Running));
    assert_eq!(end_at(&h, &id).await, t0() + secs(150 + 300));
    let detail = h.get(&format!("/sandboxes/{id}"), K1).await.1;
    assert_eq!(parse_time(&detail["startedAt"]), t0() + secs(150));

    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let (status, _) = h.post(&connect, K1, json!({"timeout": 30})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(end_at(&h, &id).await, t0() + secs(150 + 30));

    // The legacy path and the 1.x id form reach the same sandbox.
    let (status, v) = h.post(&format!("/sandboxes/{id}-6532622b/connect"), K1, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = h.post("/v2/sandboxes/aaaaaaaaaaaaaaaaaaaa/connect", K1, json!({})).await;
    assert_error(status, &v, 404);
}

#[tokio::test]
async fn legacy_resume_answers_201_or_409() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    let resume = format!("/sandboxes/{id}/resume");
    let (status, v) = h.post(&resume, K1, json!({})).await;
    assert_error(status, &v, 409);
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.clock.advance(secs(10));
    let (status, v) = h.post(&resume, K1, json!({"timeout": 42})).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    for key in SANDBOX_KEYS {
        assert!(v[key].is_string(), "{key} missing in {v}");
    }
    let detail = h.get(&format!("/sandboxes/{id}"), K1).await.1;
    assert_eq!(detail["state"], "running");
    assert_eq!(parse_time(&detail["endAt"]), t0() + secs(52));
    let (status, v) = h.post("/sandboxes/aaaaaaaaaaaaaaaaaaaa/resume", K1, json!({})).await;
    assert_error(status, &v, 404);
}

#[tokio::test]
async fn kill_answers_204_for_running_and_paused_then_404() {
    let h = Harness::start().await;
    let running = h.create_base(K1).await;
    let paused = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &paused).await, StatusCode::NO_CONTENT);
    for id in [&running, &paused] {
        let resp = h.req(Method::DELETE, &format!("/sandboxes/{id}"), Some(K1)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(h.runtime_status(id), None, "the runtime still has {id}");
        assert_eq!(h.record_state(id).await, None);
        let (status, v) = h.delete(&format!("/sandboxes/{id}"), K1).await;
        assert_error(status, &v, 404);
        let (status, v) = h.get(&format!("/sandboxes/{id}"), K1).await;
        assert_error(status, &v, 404);
        let (status, v) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
        assert_error(status, &v, 404);
        let (status, v) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
        assert_error(status, &v, 404);
        let (status, v) = h.post(&format!("/sandboxes/{id}/timeout"), K1, json!({"timeout": 10})).await;
        assert_error(status, &v, 404);
        let (status, v) = h.get(&format!("/sandboxes/{id}/metrics"), K1).await;
        assert_error(status, &v, 404);
    }
}

#[tokio::test]
async fn set_timeout_answers_204_and_can_shorten() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 3600})).await;
    h.clock.advance(secs(5));
    let resp = h.req(Method::POST, &format!("/sandboxes/{id}/timeout"), Some(K1)).json(&json!({"timeout": 20})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let detail = h.get(&format!("/sandboxes/{id}"), K1).await.1;
    assert_eq!(parse_time(&detail["endAt"]), t0() + secs(25));
    let (status, _) = h.post(&format!("/sandboxes/{id}/timeout"), K1, json!({"timeout": 7200})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let detail = h.get(&format!("/sandboxes/{id}"), K1).await.1;
    assert_eq!(parse_time(&detail["endAt"]), t0() + secs(7205));
}

#[tokio::test]
async fn metrics_answer_a_sample_while_running_and_nothing_while_paused() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.clock.advance(secs(2));
    let (status, v) = h.get(&format!("/sandboxes/{id}/metrics"), K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let samples = v.as_array().unwrap();
    assert_eq!(samples.len(), 1, "{v}");
    for key in ["timestamp", "timestampUnix", "cpuCount", "cpuUsedPct", "memUsed", "memTotal", "memCache", "diskUsed", "diskTotal"] {
        assert!(!samples[0][key].is_null(), "{key} missing in {v}");
    }
    assert_eq!(samples[0]["memUsed"], 32 << 20);
    assert_eq!(samples[0]["timestampUnix"], (t0() + secs(2)).timestamp());
    let (status, _) = h.get(&format!("/sandboxes/{id}/metrics?start=0&end=99999999999"), K1).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let (status, v) = h.get(&format!("/sandboxes/{id}/metrics"), K1).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!([]));
}

#[tokio::test]
async fn usage_counts_running_time_and_not_paused_time() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.clock.advance(secs(10));
    let (_, u) = h.get("/usage", K1).await;
    assert_eq!(u["runningSeconds"], 10.0, "{u}");
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.clock.advance(secs(1000));
    let (status, u) = h.get("/usage", K1).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(u["runningSeconds"], 10.0, "paused time was billed: {u}");
    assert_eq!(u["pausedSeconds"], 1000.0, "{u}");
    let (status, _) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
    assert_eq!(status, StatusCode::CREATED);
    h.clock.advance(secs(5));
    let (_, u) = h.get("/usage", K1).await;
    assert_eq!(u["runningSeconds"], 15.0, "{u}");
    assert_eq!(h.delete(&format!("/sandboxes/{id}"), K1).await.0, StatusCode::NO_CONTENT);
    h.clock.advance(secs(500));
    let (_, u) = h.get("/usage", K1).await;
    assert_eq!(u["runningSeconds"], 15.0, "{u}");
    assert_eq!(u["pausedSeconds"], 1000.0, "{u}");
    // 2 vCPUs and 512 MiB by default.
    assert_eq!(u["cpuSeconds"], 30.0, "{u}");
    assert_eq!(u["memoryGibSeconds"], 7.5, "{u}");
    let rows = u["sandboxes"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{u}");
    assert_eq!(rows[0]["sandboxID"], id.as_str());
    assert_eq!(rows[0]["state"], "deleted");
    assert_eq!(rows[0]["runningSeconds"], 15.0);
    // Another key's usage is its own.
    let (_, u2) = h.get("/usage", K2).await;
    assert_eq!(u2["runningSeconds"], 0.0, "{u2}");
    assert_eq!(u2["sandboxes"], json!([]));
}

#[tokio::test]
async fn health_openapi_and_prometheus() {
    let h = Harness::start().await;
    let resp = h.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let request_id = resp.headers().get("x-request-id").expect("a request id").to_str().unwrap().to_owned();
    let again = h.req(Method::GET, "/health", Some("wrong")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_ne!(again.headers()["x-request-id"].to_str().unwrap(), request_id);

    let id = h.create_base(K1).await;
    let paused = h.create_base(K2).await;
    assert_eq!(h.pause(K2, &paused).await, StatusCode::NO_CONTENT);
    let _ = h.get(&format!("/sandboxes/{id}"), K1).await;
    let resp = h.req(Method::GET, "/metrics", Some(K1)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    assert!(text.contains("# TYPE stasis_sandboxes gauge"), "{text}");
    assert!(text.lines().any(|l| l == r#"stasis_sandboxes{state="running"} 1"#), "{text}");
    assert!(text.lines().any(|l| l == r#"stasis_sandboxes{state="paused"} 1"#), "{text}");
    assert!(text.contains("# TYPE stasis_http_request_duration_seconds histogram"), "{text}");
    assert!(text.contains(r#"route="/sandboxes/{id}""#), "{text}");

    let (status, doc) = h.get("/openapi.json", K1).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let routes = [
        ("/health", "get"),
        ("/sandboxes", "post"),
        ("/sandboxes", "get"),
        ("/v2/sandboxes", "post"),
        ("/v2/sandboxes", "get"),
        ("/sandboxes/{id}", "get"),
        ("/sandboxes/{id}", "delete"),
        ("/sandboxes/{id}/pause", "post"),
        ("/sandboxes/{id}/resume", "post"),
        ("/sandboxes/{id}/connect", "post"),
        ("/v2/sandboxes/{id}/connect", "post"),
        ("/sandboxes/{id}/timeout", "post"),
        ("/sandboxes/{id}/refreshes", "post"),
        ("/sandboxes/{id}/metrics", "get"),
        ("/usage", "get"),
        ("/metrics", "get"),
    ];
    let missing: Vec<String> =
        routes.iter().filter(|(p, m)| doc["paths"][p][m].is_null()).map(|(p, m)| format!("{} {p}", m.to_uppercase())).collect();
    assert!(missing.is_empty(), "not in /openapi.json: {missing:?}");
}

async fn end_at(h: &Harness, id: &str) -> chrono::DateTime<chrono::Utc> {
    parse_time(&h.get(&format!("/sandboxes/{id}"), K1).await.1["endAt"])
}

/// The main flows again on SQLite, the server's default store: what the fake store lets
/// pass must hold on the real one too.
#[tokio::test]
async fn the_main_flows_hold_on_sqlite() {
    let h = Harness::with_sqlite().await;
    let mut ids = HashSet::new();
    for i in 0..7 {
        ids.insert(h.create(K1, json!({"templateID": "base", "metadata": {"n": i.to_string()}, "timeout": 10 + i})).await);
    }
    let other = h.create_base(K2).await;
    let first = h.create(K1, json!({"templateID": "base", "autoPause": true, "timeout": 5, "metadata": {"first": "yes"}})).await;
    ids.insert(first.clone());

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = token.as_ref().map_or("/v2/sandboxes?limit=3".to_owned(), |t| format!("/v2/sandboxes?limit=3&nextToken={t}"));
        let resp = h.req(Method::GET, &path, Some(K1)).send().await.unwrap();
        let next = resp.headers().get("x-next-token").map(|v| v.to_str().unwrap().to_owned());
        let (status, v) = split(resp).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        seen.extend(v.as_array().unwrap().iter().map(|s| s["sandboxID"].as_str().unwrap().to_owned()));
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), ids);
    let (_, v) = h.get("/v2/sandboxes?metadata=first%3Dyes", K1).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    let (s, v) = h.get(&format!("/sandboxes/{other}"), K1).await;
    assert_error(s, &v, 404);

    // Auto-pause at 5 s, kills at 10..16 s.
    h.clock.advance(secs(5));
    assert_eq!(h.lifecycle.sweep_once().await, 1);
    assert_eq!(h.state(K1, &first).await.as_deref(), Some("paused"));
    h.clock.advance(secs(5));
    assert_eq!(h.lifecycle.sweep_once().await, 1);
    h.clock.advance(secs(100));
    let (s, v) = h.post(&format!("/v2/sandboxes/{first}/connect"), K1, json!({"timeout": 60})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(h.lifecycle.sweep_once().await, 6);
    let (_, v) = h.get("/v2/sandboxes", K1).await;
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    h.clock.advance(secs(10));
    assert_eq!(h.delete(&format!("/sandboxes/{first}"), K1).await.0, StatusCode::NO_CONTENT);

    let (_, u) = h.get("/usage", K1).await;
    // first: 5 s running, 105 s paused, 10 s running; the others ran 10..16 s until 10 s
    // (swept at 10) or 110 s (swept at 110).
    let rows = u["sandboxes"].as_array().unwrap();
    assert_eq!(rows.len(), 8, "{u}");
    let first_row = rows.iter().find(|r| r["sandboxID"] == first.as_str()).unwrap();
    assert_eq!(first_row["runningSeconds"], 15.0, "{u}");
    assert_eq!(first_row["pausedSeconds"], 105.0, "{u}");
    assert_eq!(first_row["state"], "deleted");
    assert_eq!(u["runningSeconds"], 15.0 + 10.0 + 6.0 * 110.0, "{u}");
}

#[tokio::test]
async fn legacy_refresh_sets_the_end_time() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 3600})).await;
    h.clock.advance(secs(10));
    let (s, v) = h.post(&format!("/sandboxes/{id}-6532622b/refreshes"), K1, json!({"duration": 60})).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(end_at(&h, &id).await, t0() + secs(70));
    let resp = h.req(Method::POST, &format!("/sandboxes/{id}/refreshes"), Some(K1)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(end_at(&h, &id).await, t0() + secs(310));
    let (s, v) = h.post(&format!("/sandboxes/{id}/refreshes"), K1, json!({"duration": -1})).await;
    assert_error(s, &v, 400);
    let (s, v) = h.post("/sandboxes/aaaaaaaaaaaaaaaaaaaa/refreshes", K1, json!({"duration": 60})).await;
    assert_error(s, &v, 404);
}

#[tokio::test]
async fn network_is_set_on_create_and_replaced_by_put() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "allow_internet_access": false, "network": {"allowOut": ["1.1.1.1"], "maskRequestHost": "m"}})).await;
    let sid = stasis_runtime::SandboxId::parse(&id).unwrap();
    let policy = h.runtime.network(&sid).unwrap();
    assert_eq!((policy.internet, policy.allow_out.clone()), (false, vec!["1.1.1.1".to_owned()]));
    let (_, v) = h.get(&format!("/sandboxes/{id}"), K1).await;
    assert_eq!(v["allowInternetAccess"], false, "{v}");
    assert_eq!(v["network"]["allowOut"], json!(["1.1.1.1"]), "{v}");

    // PUT replaces the egress fields (omitted = cleared) and keeps the others.
    let path = format!("/sandboxes/{id}/network");
    let (status, v) = h.call(Method::PUT, &path, K1, Some(json!({"denyOut": ["10.0.0.0/8"]}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let policy = h.runtime.network(&sid).unwrap();
    assert_eq!((policy.internet, policy.allow_out.len(), policy.deny_out.clone()), (true, 0, vec!["10.0.0.0/8".to_owned()]));
    let (_, v) = h.get(&format!("/sandboxes/{id}"), K1).await;
    assert!(v["allowInternetAccess"].is_null(), "{v}");
    assert_eq!(v["network"], json!({"denyOut": ["10.0.0.0/8"], "maskRequestHost": "m"}), "{v}");

    // Paused sandboxes take it too (applied on resume).
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    let (status, v) = h.call(Method::PUT, &path, K1, Some(json!({"allow_internet_access": false}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert!(!h.runtime.network(&sid).unwrap().internet);

    // Bad input: a clear 400 that changes nothing; unknown or foreign sandboxes: 404.
    for bad in [
        json!({"denyOut": ["pypi.org"]}),
        json!({"allowOut": "1.1.1.1"}),
        json!({"allowOut": ["*.example.com"]}),
        json!({"allow_internet_access": "no"}),
        json!({"egressProxy": {"address": "p:1"}}),
        json!([1]),
    ] {
        let (status, v) = h.call(Method::PUT, &path, K1, Some(bad.clone())).await;
        assert_error(status, &v, 400);
    }
    assert!(!h.runtime.network(&sid).unwrap().internet, "a refused update changed the policy");
    let (status, v) = h.call(Method::PUT, &path, K2, Some(json!({}))).await;
    assert_error(status, &v, 404);
    let (status, v) = h.call(Method::PUT, "/sandboxes/nope/network", K1, Some(json!({}))).await;
    assert_error(status, &v, 404);
    let (status, v) = h.post("/sandboxes", K1, json!({"templateID": "base", "network": {"denyOut": ["x.com"]}})).await;
    assert_error(status, &v, 400);
}
