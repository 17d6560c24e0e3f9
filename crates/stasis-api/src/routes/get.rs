use super::convert;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::state::AppState;
use crate::extract::Path;
use axum::extract::State;
use stasis_types::wire::SandboxDetail;

/// `GET /sandboxes/{id}`.
#[utoipa::path(get, path = "/sandboxes/{id}", params(("id" = String, Path)),
    responses((status = 200, body = SandboxDetail), (status = 404, body = stasis_types::wire::ErrorBody)))]
pub async fn get(State(state): State<AppState>, owner: Owner, Path(id): Path<String>) -> Result<axum::Json<SandboxDetail>, ApiError> {
    let rec = state.lifecycle.get(&owner.0, convert::sandbox_id_from_path(&id)).await?;
    Ok(axum::Json(convert::detail(&rec, state.domain.as_deref())))
}
