use super::convert;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use stasis_types::wire::TimeoutRequest;

/// `POST /sandboxes/{id}/timeout`: `end = now + timeout` (may shorten it).
#[utoipa::path(post, path = "/sandboxes/{id}/timeout", params(("id" = String, Path)), request_body = TimeoutRequest,
    responses((status = 204), (status = 400, body = stasis_types::wire::ErrorBody), (status = 404, body = stasis_types::wire::ErrorBody)))]
pub async fn set_timeout(State(state): State<AppState>, owner: Owner, Path(id): Path<String>, Json(body): Json<TimeoutRequest>) -> Result<StatusCode, ApiError> {
    state.lifecycle.set_timeout(&owner.0, convert::sandbox_id_from_path(&id), body.timeout).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct Refresh {
    duration: Option<u64>,
}

/// `POST /sandboxes/{id}/refreshes` (legacy keep-alive): `end = now + duration`.
#[utoipa::path(post, path = "/sandboxes/{id}/refreshes", params(("id" = String, Path)), request_body = Refresh,
    responses((status = 204), (status = 400, body = stasis_types::wire::ErrorBody), (status = 404, body = stasis_types::wire::ErrorBody)))]
pub async fn refresh(State(state): State<AppState>, owner: Owner, Path(id): Path<String>, Json(body): Json<Refresh>) -> Result<StatusCode, ApiError> {
    let secs = body.duration.unwrap_or(state.lifecycle.config().default_timeout.as_secs());
    state.lifecycle.set_timeout(&owner.0, convert::sandbox_id_from_path(&id), secs).await?;
    Ok(StatusCode::NO_CONTENT)
}
