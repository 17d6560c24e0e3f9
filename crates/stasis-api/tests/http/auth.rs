//! X-API-KEY on every sandbox route, and one key's sandboxes invisible to another.

use crate::common::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn sandbox_routes(id: &str) -> Vec<(Method, String)> {
    vec![
        (Method::POST, "/v2/sandboxes".into()),
        (Method::POST, "/sandboxes".into()),
        (Method::GET, "/v2/sandboxes".into()),
        (Method::GET, "/sandboxes".into()),
        (Method::GET, format!("/sandboxes/{id}")),
        (Method::DELETE, format!("/sandboxes/{id}")),
        (Method::POST, format!("/sandboxes/{id}/pause")),
        (Method::POST, format!("/sandboxes/{id}/resume")),
        (Method::POST, format!("/sandboxes/{id}/connect")),
        (Method::POST, format!("/v2/sandboxes/{id}/connect")),
        (Method::POST, format!("/sandboxes/{id}/timeout")),
        (Method::POST, format!("/sandboxes/{id}/refreshes")),
        (Method::GET, format!("/sandboxes/{id}/metrics")),
        (Method::GET, "/usage".into()),
    ]
}

#[tokio::test]
async fn missing_or_wrong_key_is_401_everywhere_but_health() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    for (method, path) in sandbox_routes(&id) {
        for key in [None, Some("wrong"), Some("")] {
            let mut b = h.req(method.clone(), &path, key);
            if method == Method::POST {
                b = b.json(&json!({"templateID": "base", "timeout": 10}));
            }
            let (status, v) = split(b.send().await.unwrap()).await;
            assert_error(status, &v, 401);
            assert!(v.to_string().contains("401"), "{method} {path}");
        }
    }
    // Nothing was done on the sandbox's behalf.
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
    let (_, list) = h.get("/v2/sandboxes", K1).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "an unauthenticated create went through: {list}");
    let resp = h.req(Method::GET, "/health", None).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_key_cannot_see_or_touch_another_keys_sandboxes() {
    let h = Harness::start().await;
    let mine = h.create(K1, json!({"templateID": "base", "metadata": {"who": "k1"}})).await;
    let paused = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &paused).await, StatusCode::NO_CONTENT);
    let theirs = h.create_base(K2).await;

    for id in [&mine, &paused] {
        let (s, v) = h.get(&format!("/sandboxes/{id}"), K2).await;
        assert_error(s, &v, 404);
        let (s, v) = h.post(&format!("/sandboxes/{id}/pause"), K2, json!({})).await;
        assert_error(s, &v, 404);
        let (s, v) = h.post(&format!("/v2/sandboxes/{id}/connect"), K2, json!({})).await;
        assert_error(s, &v, 404);
        let (s, v) = h.post(&format!("/sandboxes/{id}/resume"), K2, json!({})).await;
        assert_error(s, &v, 404);
        let (s, v) = h.post(&format!("/sandboxes/{id}/timeout"), K2, json!({"timeout": 1})).await;
        assert_error(s, &v, 404);
        let (s, v) = h.get(&format!("/sandboxes/{id}/metrics"), K2).await;
        assert_error(s, &v, 404);
        let (s, v) = h.delete(&format!("/sandboxes/{id}"), K2).await;
        assert_error(s, &v, 404);
    }
    for path in ["/v2/sandboxes", "/sandboxes", "/v2/sandboxes?state=paused", "/v2/sandboxes?metadata=who%3Dk1"] {
        let (s, v) = h.get(path, K2).await;
        assert_eq!(s, StatusCode::OK);
        let ids: Vec<&str> = v.as_array().unwrap().iter().map(|x| x["sandboxID"].as_str().unwrap()).collect();
        assert!(!ids.contains(&mine.as_str()) && !ids.contains(&paused.as_str()), "{path}: {v}");
    }
    // Untouched, and the owner still drives them.
    assert_eq!(h.state(K1, &mine).await.as_deref(), Some("running"));
    assert_eq!(h.state(K1, &paused).await.as_deref(), Some("paused"));
    assert_eq!(parse_time(&h.get(&format!("/sandboxes/{mine}"), K1).await.1["endAt"]), t0() + secs(300));
    assert_eq!(h.state(K2, &theirs).await.as_deref(), Some("running"));
    assert_eq!(h.delete(&format!("/sandboxes/{mine}"), K1).await.0, StatusCode::NO_CONTENT);
}
