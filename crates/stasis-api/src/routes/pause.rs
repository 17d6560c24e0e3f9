use super::{convert, detached};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use stasis_types::wire::PauseRequest;

/// `POST /sandboxes/{id}/pause`: 204 once the checkpoint is on disk; 409 when already paused
/// (the SDK's `pause()` → false); 404 when unknown.
#[utoipa::path(post, path = "/sandboxes/{id}/pause", params(("id" = String, Path)), request_body = PauseRequest,
    responses((status = 204), (status = 404, body = stasis_types::wire::ErrorBody), (status = 409, body = stasis_types::wire::ErrorBody)))]
pub async fn pause(State(state): State<AppState>, owner: Owner, Path(id): Path<String>, Json(_body): Json<PauseRequest>) -> Result<StatusCode, ApiError> {
    let (lc, id) = (state.lifecycle.clone(), convert::sandbox_id_from_path(&id).to_owned());
    detached(async move { lc.pause(Some(&owner.0), &id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
