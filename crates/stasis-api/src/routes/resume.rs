use super::{convert, detached};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use stasis_types::wire::{ResumedSandbox, Sandbox};

/// `POST /sandboxes/{id}/resume` (legacy, the beta SDK's `Sandbox.resume`): 201, or 409 when
/// the sandbox is already running.
#[utoipa::path(post, path = "/sandboxes/{id}/resume", params(("id" = String, Path)), request_body = ResumedSandbox,
    responses((status = 201, body = Sandbox), (status = 404, body = stasis_types::wire::ErrorBody), (status = 409, body = stasis_types::wire::ErrorBody)))]
pub async fn resume(State(state): State<AppState>, owner: Owner, Path(id): Path<String>, Json(body): Json<ResumedSandbox>) -> Result<(StatusCode, axum::Json<Sandbox>), ApiError> {
    let (lc, id) = (state.lifecycle.clone(), convert::sandbox_id_from_path(&id).to_owned());
    let r = detached(async move { lc.resume_legacy(&owner.0, &id, body.timeout, body.auto_pause).await }).await?;
    Ok((StatusCode::CREATED, axum::Json(convert::sandbox(&r.record, state.domain.as_deref()))))
}
