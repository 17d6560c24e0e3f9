use super::convert;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::state::AppState;
use crate::extract::Path;
use axum::extract::State;
use stasis_types::wire::SandboxMetric;

/// `GET /sandboxes/{id}/metrics`: the current sample from the sandbox's cgroup (none while paused).
#[utoipa::path(get, path = "/sandboxes/{id}/metrics", params(("id" = String, Path)),
    responses((status = 200, body = Vec<SandboxMetric>), (status = 404, body = stasis_types::wire::ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, owner: Owner, Path(id): Path<String>) -> Result<axum::Json<Vec<SandboxMetric>>, ApiError> {
    Ok(axum::Json(state.lifecycle.metrics(&owner.0, convert::sandbox_id_from_path(&id)).await?))
}
