//! The state machine through HTTP: overlapping operations, and operations whose runtime call
//! fails.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;
use stasis_runtime::SandboxStatus;
use stasis_types::SandboxState;
use std::time::Duration;

/// Long enough for a request to arrive while a runtime call is under way, on a loaded machine.
const SLOW: Duration = Duration::from_millis(500);

#[tokio::test]
async fn concurrent_pause_and_kill_end_consistently() {
    for kill_first in [false, true] {
        let h = Harness::start().await;
        let id = h.create_base(K1).await;
        h.runtime.set_delay(SLOW);
        let pause_path = format!("/sandboxes/{id}/pause");
        // The second starts once the first holds the sandbox, so the order does not depend on
        // how fast a loaded machine delivers requests.
        let first = if kill_first { SandboxState::Killing } else { SandboxState::Pausing };
        let kill = async {
            if !kill_first {
                h.wait_for(&id, first).await;
            }
            h.delete(&format!("/sandboxes/{id}"), K1).await
        };
        let pause = async {
            if kill_first {
                h.wait_for(&id, first).await;
            }
            h.post(&pause_path, K1, json!({})).await
        };
        let ((ps, pv), (ks, kv)) = tokio::join!(pause, kill);
        assert!(!ps.is_server_error() && !ks.is_server_error(), "kill_first={kill_first}: pause {ps} {pv}, kill {ks} {kv}");
        // A kill is never refused for a pause under way: it waits for it.
        assert_eq!(ks, StatusCode::NO_CONTENT, "kill_first={kill_first}: {kv}");
        if kill_first {
            assert!(ps == StatusCode::CONFLICT || ps == StatusCode::NOT_FOUND, "pause of a dying sandbox: {ps} {pv}");
            assert_eq!(pv["code"], ps.as_u16());
        } else {
            assert_eq!(ps, StatusCode::NO_CONTENT, "{pv}");
        }
        assert_eq!(h.state(K1, &id).await, None);
        assert_eq!(h.record_state(&id).await, None);
        assert_eq!(h.runtime_status(&id), None);
    }
}

#[tokio::test]
async fn pause_during_resume_is_409_and_resume_completes() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.runtime.set_delay(SLOW);
    let connect_path = format!("/v2/sandboxes/{id}/connect");
    let connect = h.post(&connect_path, K1, json!({}));
    let pause = async {
        h.wait_for(&id, SandboxState::Resuming).await;
        let during = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
        // A sandbox mid-resume is never 404 either.
        let get = h.get(&format!("/sandboxes/{id}"), K1).await;
        let connect_again = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
        (during, get, connect_again)
    };
    let ((cs, cv), ((ps, pv), (gs, gv), (c2s, c2v))) = tokio::join!(connect, pause);
    assert_eq!(cs, StatusCode::CREATED, "{cv}");
    assert_error(ps, &pv, 409);
    assert_eq!(gs, StatusCode::OK, "{gv}");
    assert_eq!(gv["state"], "running", "a resuming sandbox shows as running");
    // Another connect waits for the resume under way and finds it running.
    assert_eq!(c2s, StatusCode::OK, "{c2v}");
    assert_eq!(h.record_state(&id).await, Some(SandboxState::Running));
    assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Running));
}

#[tokio::test]
async fn double_pause_concurrently_gives_exactly_one_204() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.runtime.set_delay(SLOW);
    let path = format!("/sandboxes/{id}/pause");
    let p = || h.post(&path, K1, json!({}));
    let (a, b, c) = tokio::join!(p(), p(), p());
    let statuses = [a.0, b.0, c.0];
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count(), 1, "{statuses:?}");
    for (s, v) in [a, b, c] {
        if s != StatusCode::NO_CONTENT {
            assert_error(s, &v, 409);
        }
    }
    assert_eq!(h.record_state(&id).await, Some(SandboxState::Paused));
    assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Paused));
}

#[tokio::test]
async fn a_failed_pause_leaves_the_sandbox_running_and_usable() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.runtime.fail("pause", true);
    let (s, v) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
    assert!(s.is_server_error(), "{s} {v}");
    assert_eq!(v["code"], s.as_u16(), "{v}");
    assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"));
    assert_eq!(h.record_state(&id).await, Some(SandboxState::Running));
    assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Running));
    let (s, _) = h.post(&format!("/sandboxes/{id}/timeout"), K1, json!({"timeout": 100})).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
    assert_eq!(s, StatusCode::OK);
    h.runtime.fail("pause", false);
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Paused));
}

#[tokio::test]
async fn a_failed_resume_leaves_the_sandbox_paused_and_resumable() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    assert_eq!(h.pause(K1, &id).await, StatusCode::NO_CONTENT);
    h.runtime.fail("resume", true);
    for path in [format!("/v2/sandboxes/{id}/connect"), format!("/sandboxes/{id}/resume")] {
        let (s, v) = h.post(&path, K1, json!({})).await;
        assert!(s.is_server_error(), "{s} {v}");
        assert_eq!(h.state(K1, &id).await.as_deref(), Some("paused"));
        assert_eq!(h.record_state(&id).await, Some(SandboxState::Paused));
        assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Paused));
    }
    h.runtime.fail("resume", false);
    let (s, v) = h.post(&format!("/v2/sandboxes/{id}/connect"), K1, json!({})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(h.runtime_status(&id), Some(SandboxStatus::Running));
}

#[tokio::test]
async fn a_failed_create_leaves_nothing() {
    let h = Harness::start().await;
    h.runtime.fail("create", true);
    let (s, v) = h.post("/v2/sandboxes", K1, json!({"templateID": "base"})).await;
    assert!(s.is_server_error(), "{s} {v}");
    assert_eq!(v["code"], s.as_u16());
    assert!(h.store_ids().await.is_empty());
    assert!(h.runtime_ids().await.is_empty());
    let (_, list) = h.get("/v2/sandboxes", K1).await;
    assert_eq!(list, json!([]));
    h.runtime.fail("create", false);
    h.create_base(K1).await;
}

#[tokio::test]
async fn kill_of_a_paused_sandbox_whose_kill_fails_is_retried_by_the_sweeper() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.runtime.fail("kill", true);
    let (s, v) = h.delete(&format!("/sandboxes/{id}"), K1).await;
    assert!(s.is_server_error(), "{s} {v}");
    h.runtime.fail("kill", false);
    // It is on its way out: not listed as running, not pausable.
    let (s, _) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    h.clock.advance(secs(31));
    h.lifecycle.sweep_once().await;
    assert_eq!(h.state(K1, &id).await, None);
    assert_eq!(h.runtime_status(&id), None);
}

#[tokio::test]
async fn a_sandbox_being_created_is_visible_busy_and_killable() {
    let h = Harness::start().await;
    h.runtime.set_delay(SLOW);
    let create = h.post("/v2/sandboxes", K1, json!({"templateID": "base"}));
    let meanwhile = async {
        let mut ids = vec![];
        for _ in 0..2500 {
            ids = h.store_ids().await;
            if !ids.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        assert_eq!(ids.len(), 1);
        let id = ids[0].clone();
        assert_eq!(h.state(K1, &id).await.as_deref(), Some("running"), "never 404 while creating");
        let (s, v) = h.post(&format!("/sandboxes/{id}/pause"), K1, json!({})).await;
        assert_error(s, &v, 409);
        let (s, v) = h.delete(&format!("/sandboxes/{id}"), K1).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
        id
    };
    let ((cs, cv), id) = tokio::join!(create, meanwhile);
    assert_eq!(cs, StatusCode::CREATED, "{cv}");
    assert_eq!(cv["sandboxID"], id.as_str());
    assert_eq!(h.state(K1, &id).await, None);
    assert_eq!(h.runtime_status(&id), None);
}

#[tokio::test]
async fn concurrent_kills_give_one_204_and_then_404() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.runtime.set_delay(SLOW);
    let path = format!("/sandboxes/{id}");
    let (a, b) = tokio::join!(h.delete(&path, K1), async {
        h.wait_for(&id, SandboxState::Killing).await;
        h.delete(&path, K1).await
    });
    assert_eq!(a.0, StatusCode::NO_CONTENT, "{}", a.1);
    assert_error(b.0, &b.1, 404);
    assert_eq!(h.runtime_status(&id), None);
}


#[tokio::test]
async fn many_concurrent_creates_and_kills_stay_consistent() {
    let h = Harness::start().await;
    let creates = (0..40).map(|_| h.post("/v2/sandboxes", K1, json!({"templateID": "base"})));
    let results = futures_join_all(creates).await;
    let ids: Vec<String> = results
        .iter()
        .map(|(s, v)| {
            assert_eq!(*s, StatusCode::CREATED, "{v}");
            v["sandboxID"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.iter().collect::<std::collections::HashSet<_>>().len(), 40);
    assert_eq!(h.runtime_ids().await.len(), 40);
    // Half paused, then everything killed at once, twice over.
    let h = &h;
    let pauses = ids.iter().step_by(2).map(|id| async move { h.pause(K1, id).await });
    assert!(futures_join_all(pauses).await.iter().all(|s| *s == StatusCode::NO_CONTENT));
    let kills = ids.iter().chain(ids.iter()).map(|id| async move { h.delete(&format!("/sandboxes/{id}"), K1).await });
    let statuses: Vec<StatusCode> = futures_join_all(kills).await.into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count(), 40, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count(), 40, "{statuses:?}");
    assert!(h.store_ids().await.is_empty());
    assert!(h.runtime_ids().await.is_empty());
    let (_, u) = h.get("/usage", K1).await;
    assert_eq!(u["sandboxes"].as_array().unwrap().len(), 40);
}

/// Run futures concurrently on this task, results in order.
async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = handles.iter().map(|_| None).collect();
    let mut handles: Vec<Option<std::pin::Pin<Box<F>>>> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, h) in out.iter_mut().zip(handles.iter_mut()) {
            if let Some(f) = h {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *slot = Some(v);
                        *h = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(|o| o.expect("every future finished")).collect()
}

#[tokio::test]
async fn a_pause_whose_client_gives_up_still_completes() {
    let h = Harness::start().await;
    let id = h.create_base(K1).await;
    h.runtime.set_delay(SLOW);
    // The client hangs up long before the runtime is done.
    let abandoned = h.req(reqwest::Method::POST, &format!("/sandboxes/{id}/pause"), Some(K1)).timeout(Duration::from_millis(20)).send().await;
    assert!(abandoned.is_err(), "the request should have timed out on the client side");
    h.wait_for(&id, stasis_types::SandboxState::Paused).await;
    h.runtime.set_delay(Duration::ZERO);
    let resp = h.req(reqwest::Method::POST, &format!("/v2/sandboxes/{id}/connect"), Some(K1)).json(&serde_json::json!({})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 201, "the finished pause can be resumed");
}
