//! One file per endpoint; this file only wires them.

pub(crate) mod connect;
mod convert;
pub(crate) mod create;
pub(crate) mod get;
pub(crate) mod health;
pub(crate) mod kill;
pub(crate) mod list;
pub(crate) mod metrics;
pub(crate) mod pause;
pub(crate) mod resume;
pub(crate) mod network;
pub(crate) mod timeout;
pub(crate) mod usage;

use crate::extract::MAX_BODY_BYTES;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;

pub use convert::sandbox_id_from_path;

/// Run a lifecycle operation to its end even if the client goes away meanwhile: an operation
/// dropped half-way (a pause whose caller timed out) would leave the sandbox mid-transition.
pub(crate) async fn detached<T: Send + 'static>(
    op: impl std::future::Future<Output = Result<T, stasis_lifecycle::LifecycleError>> + Send + 'static,
) -> Result<T, crate::error::ApiError> {
    match tokio::spawn(op).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => Err(crate::error::ApiError::Internal(format!("operation task failed: {e}"))),
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/metrics", get(health::prometheus))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/sandboxes", post(create::create_legacy).get(list::list_running))
        .route("/v2/sandboxes", post(create::create).get(list::list_v2))
        .route("/sandboxes/{id}", get(get::get).delete(kill::kill))
        .route("/sandboxes/{id}/pause", post(pause::pause))
        .route("/sandboxes/{id}/resume", post(resume::resume))
        .route("/sandboxes/{id}/connect", post(connect::connect))
        .route("/v2/sandboxes/{id}/connect", post(connect::connect))
        .route("/sandboxes/{id}/timeout", post(timeout::set_timeout))
        .route("/sandboxes/{id}/network", put(network::update_network))
        .route("/sandboxes/{id}/refreshes", post(timeout::refresh))
        .route("/sandboxes/{id}/metrics", get(metrics::metrics))
        .route("/usage", get(usage::usage))
        .fallback(health::not_found)
        .method_not_allowed_fallback(health::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
