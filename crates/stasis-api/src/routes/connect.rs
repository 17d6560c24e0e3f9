use super::{convert, detached};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use stasis_types::wire::{ConnectSandbox, Sandbox};

/// `POST /v2/sandboxes/{id}/connect`: 200 if it was running (its end time extended), 201 if it
/// was paused and is now resumed.
#[utoipa::path(post, path = "/v2/sandboxes/{id}/connect", params(("id" = String, Path)), request_body = ConnectSandbox,
    responses((status = 200, body = Sandbox), (status = 201, body = Sandbox), (status = 404, body = stasis_types::wire::ErrorBody), (status = 409, body = stasis_types::wire::ErrorBody)))]
pub async fn connect(State(state): State<AppState>, owner: Owner, Path(id): Path<String>, Json(body): Json<ConnectSandbox>) -> Result<(StatusCode, axum::Json<Sandbox>), ApiError> {
    let (lc, id) = (state.lifecycle.clone(), convert::sandbox_id_from_path(&id).to_owned());
    let r = detached(async move { lc.connect(Some(&owner.0), &id, body.timeout).await }).await?;
    let status = if r.resumed { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(convert::sandbox(&r.record, state.domain.as_deref()))))
}
