//! Prometheus metrics of the control plane: requests by route and status with latency, and
//! sandboxes by state (read from the store at scrape time, so it is never stale).

use crate::state::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntGaugeVec, Opts, Registry, TextEncoder};
use std::time::Instant;

pub struct Metrics {
    registry: Registry,
    requests: HistogramVec,
    sandboxes: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = HistogramVec::new(
            HistogramOpts::new("stasis_http_request_duration_seconds", "Control-plane requests by route, method and status")
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["route", "method", "status"],
        )
        .expect("valid histogram");
        let sandboxes = IntGaugeVec::new(Opts::new("stasis_sandboxes", "Sandboxes by state"), &["state"]).expect("valid gauge");
        registry.register(Box::new(requests.clone())).expect("register");
        registry.register(Box::new(sandboxes.clone())).expect("register");
        Metrics { registry, requests, sandboxes }
    }

    pub async fn render(&self, state: &AppState) -> String {
        if let Ok(all) = state.lifecycle.all_records().await {
            for s in stasis_types::SandboxState::ALL {
                self.sandboxes.with_label_values(&[s.as_str()]).set(all.iter().filter(|r| r.state == s).count() as i64);
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub async fn record(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    state
        .metrics
        .requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .observe(started.elapsed().as_secs_f64());
    resp
}
