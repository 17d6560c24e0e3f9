//! Timeouts (kill, or pause with auto-pause, a policy that survives resumes) and retention of
//! paused sandboxes, driven by the sweeper with a manual clock.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;
use stasis_lifecycle::LifecycleConfig;
use stasis_runtime::SandboxStatus;
use std::time::Duration;

#[tokio::test]
async fn an_expired_sandbox_is_killed() {
    let h = Harness::start().await;
    let short = h.create(K1, json!({"templateID": "base", "timeout": 10})).await;
    let long = h.create(K1, json!({"templateID": "base", "timeout": 60})).await;
    h.clock.advance(secs(9));
    assert_eq!(h.lifecycle.sweep_once().await, 0);
    assert_eq!(h.state(K1, &short).await.as_deref(), Some("running"));
    h.clock.advance(secs(1));
    assert_eq!(h.lifecycle.sweep_once().await, 1);
    let (s, v) = h.get(&format!("/sandboxes/{short}"), K1).await;
    assert_error(s, &v, 404);
    let (s, v) = h.post(&format!("/v2/sandboxes/{short}/connect"), K1, json!({})).await;
    assert_error(s, &v, 404);
    assert_eq!(h.runtime_status(&short), None);
    assert_eq!(h.state(K1, &long).await.as_deref(), Some("running"));
}

#[tokio::test]
async fn set_timeout_extends_and_shortens_the_deadline_the_sweeper_uses() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 10})).await;
    h.clock.advance(secs(8));
    let (s, _) = h.post(&format!("/sandboxes/{id}/timeout"), K1, json!({"timeout": 100})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    h.clock.advance(secs(50));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"), "setTimeout did not extend");
    // Connect with a shorter timeout does not shorten it either.
    let (s, _) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({"timeout": 1})).await;
    assert_eq!(s, StatusCode::OK);
    h.clock.advance(secs(2));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"), "connect shortened the deadline");
    // setTimeout may shorten.
    let (s, _) = h.post(&format!("/sandboxes/{id}/timeout"), K1, json!({"timeout": 1})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    h.clock.advance(secs(1));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &id).await, None);
}

#[tokio::test]
async fn auto_pause_on_timeout_survives_resumes() {
    let h = Harness::start().await;
    let id = h.create(K1, json!({"templateID": "base", "timeout": 10, "autoPause": true})).await;
    let (_, detail) = h.get(&format!("/sandboxes/{id}"), K1).await;
    assert_eq!(detail["lifecycle"]["onTimeout"], "pause");
    for round in 0..3 {
        h.clock.advance(secs(11));
        assert_eq!(h.lifecycle.sweep_once().await, 1, "round {round}");
        assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"), "round {round}");
        assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Paused));
        // A paused sandbox does not time out again.
        h.clock.advance(secs(3600));
        h.lifecycle.sweep_once().await;
        assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"));
        let (s, v) = if round == 1 {
            h.post(&format!("/sandboxes/{id}/resume"), K1, json!({"timeout": 10})).await
        } else {
            h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({"timeout": 10})).await
        };
        assert_eq!(s, StatusCode::CREATED, "round {round}: {v}");
        let (_, detail) = h.get(&format!("/sandboxes/{id}"), K1).await;
        assert_eq!(detail["lifecycle"]["onTimeout"], "pause", "round {round}: E2B#875");
    }
    // The legacy resume may turn it off explicitly.
    h.clock.advance(secs(11));
    h.lifecycle.sweep_once().await;
    let (s, _) = h.post(&format!("/sandboxes/{id}/resume"), K1, json!({"timeout": 10, "autoPause": false})).await;
    assert_eq!(s, StatusCode::CREATED);
    h.clock.advance(secs(11));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &id).await, None);
}

#[tokio::test]
async fn retention_deletes_old_paused_sandboxes_only() {
    let cfg = LifecycleConfig { retention: Duration::from_secs(3600), ..Default::default() };
    let h = Harness::with_config(cfg).await;
    let old_paused = h.create(K1, json!({"templateID": "base", "autoPause": true, "timeout": 10})).await;
    let running = h.create(K1, json!({"templateID": "base", "timeout": 86400})).await;
    h.clock.advance(secs(11));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &old_paused).await.as_deref(), Some("paused"));
    h.clock.advance(secs(1800));
    let young_paused = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &young_paused).await, StatusCode::NO_CONTENT);
    // Retention counts from creation, not from the pause: resume and pause again changes nothing.
    let (s, _) = h.post(&format!("/v2/sandboxes/{old_paused}/connect"), K1, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h.pause(K1, &old_paused).await, StatusCode::NO_CONTENT);
    h.clock.advance(secs(1789));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &old_paused).await.as_deref(), Some("paused"));
    h.clock.advance(secs(1));
    assert_eq!(h.lifecycle.sweep_once().await, 1);
    let (s, v) = h.post(&format!("/v2/sandboxes/{old_paused}/connect"), K1, json!({})).await;
    assert_error(s, &v, 404);
    let (s, v) = h.get(&format!("/sandboxes/{old_paused}"), K1).await;
    assert_error(s, &v, 404);
    assert_eq!(h.runtime_status(&old_paused), None);
    assert_eq!(h.state(K1, &running).await.as_deref(), Some("running"), "retention applies to paused sandboxes only");
    assert_eq!(h.state(K1, &young_paused).await.as_deref(), Some("paused"));
    let (s, _) = h.post(&format!("/v2/sandboxes/{young_paused}/connect"), K1, json!({})).await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test]
async fn after_a_restart_reconcile_leaves_usable_sandboxes_and_nothing_orphaned() {
    use stasis_runtime::fake::FakeRuntime;
    use stasis_runtime::{Runtime, SandboxId};
    use stasis_store::{MemoryStore, Store};
    use stasis_types::SandboxState;
    use std::sync::Arc;

    // A first server creates, pauses, and dies mid-pause of a third sandbox.
    let store = Arc::new(MemoryStore::new());
    let runtime = Arc::new(FakeRuntime::new());
    let (running, paused, pausing) = {
        let h = Harness::with_parts(LifecycleConfig::default(), store.clone(), runtime.clone()).await;
        let running = h.create_base(K1).await;
        let paused = h.create_base(K1).await;
        let pausing = h.create_base(K1).await;
        assert_eq!(h.pause(K1, &paused).await, StatusCode::NO_CONTENT);
        store.transition(&pausing, SandboxState::Running, SandboxState::Pausing, Default::default(), t0()).await.unwrap();
        runtime.pause(&SandboxId::parse(&pausing).unwrap()).await.unwrap();
        (running, paused, pausing)
    };
    let stray = SandboxId::generate();
    runtime.create(&stray, stasis_runtime::SandboxSpec { template: "base".into(), limits: Default::default(), env: Default::default(), network: Default::default() }).await.unwrap();

    // The next one reconciles before serving.
    let h = Harness::with_parts(LifecycleConfig::default(), store, runtime).await;
    h.lifecycle.reconcile().await.unwrap();
    assert_eq!(h.runtime_status(&stray.to_string()), None);
    assert_eq!(h.state(K1, &running).await.as_deref(), Some("running"));
    assert_eq!(h.state(K1, &pausing).await.as_deref(), Some("paused"));
    let up = crate::upstream::Upstream::start().await;
    h.expose(&running, 8080, up.addr);
    let resp = h.req(reqwest::Method::GET, "/after-restart", None).header("E2b-Sandbox-Id", &running).header("E2b-Sandbox-Port", "8080").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for id in [&paused, &pausing] {
        let (s, v) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, list) = h.get("/v2/sandboxes?state=running", K1).await;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
}
