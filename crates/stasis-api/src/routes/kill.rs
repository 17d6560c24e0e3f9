use super::{convert, detached};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::state::AppState;
use crate::extract::Path;
use axum::extract::State;
use axum::http::StatusCode;

/// `DELETE /sandboxes/{id}`: running or paused; 204, or 404 (the SDK's `kill()` → false).
#[utoipa::path(delete, path = "/sandboxes/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = stasis_types::wire::ErrorBody)))]
pub async fn kill(State(state): State<AppState>, owner: Owner, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let (lc, id) = (state.lifecycle.clone(), convert::sandbox_id_from_path(&id).to_owned());
    detached(async move { lc.kill(Some(&owner.0), &id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}
