use crate::auth::Owner;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use stasis_types::wire::UsageReport;

/// `GET /usage`: running and paused time of the caller's sandboxes, live and deleted. Only
/// running time counts towards CPU and memory usage: paused sandboxes are free.
#[utoipa::path(get, path = "/usage", responses((status = 200, body = UsageReport), (status = 401, body = stasis_types::wire::ErrorBody)))]
pub async fn usage(State(state): State<AppState>, owner: Owner) -> Result<axum::Json<UsageReport>, ApiError> {
    Ok(axum::Json(state.lifecycle.usage(&owner.0).await?))
}
