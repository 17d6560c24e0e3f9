//! The HTTP face of Stasis: E2B's REST routes, and the proxy that carries SDK traffic into
//! sandboxes, on one port.
//!
//! A request carrying `E2b-Sandbox-Id` (or addressed to `{port}-{sandboxId}.{domain}`) is sandbox
//! traffic and goes through [`proxy`]; everything else is the control plane. Handlers are thin:
//! extract, call one lifecycle operation, map the result.

mod auth;
mod error;
mod extract;
mod metrics;
pub mod openapi;
mod proxy;
mod routes;
mod serve;
mod state;

pub use auth::ApiKeys;
pub use error::ApiError;
pub use serve::{serve, TlsFiles};
pub use state::AppState;

use axum::Router;

/// The whole application: control plane routes behind the sandbox-traffic dispatcher.
pub fn app(state: AppState) -> Router {
    routes::router(state.clone())
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::record))
        .layer(axum::middleware::from_fn_with_state(state, proxy::dispatch))
        .layer(tower_http::propagate_header::PropagateHeaderLayer::new(REQUEST_ID.clone()))
        .layer(tower_http::request_id::SetRequestIdLayer::new(REQUEST_ID.clone(), RandomRequestId))
}

/// 64 random bits per request, for correlating logs with what a client saw.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl tower_http::request_id::MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        let id = hex::encode(rand_bytes());
        axum::http::HeaderValue::from_str(&id).ok().map(tower_http::request_id::RequestId::new)
    }
}

fn rand_bytes() -> [u8; 8] {
    use sha2::Digest;
    // Uniqueness, not secrecy: a hash of time and a counter is enough for a request id.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let digest = sha2::Sha256::digest(format!("{t}:{n}:{}", std::process::id()).as_bytes());
    digest[..8].try_into().expect("8 bytes")
}

static REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");
