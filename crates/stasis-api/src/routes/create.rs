use super::{convert, detached};
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use stasis_lifecycle::CreateRequest;
use stasis_store::OnTimeout;
use stasis_types::wire::{NewSandbox, Sandbox};

/// `POST /v2/sandboxes`: 201 with the new sandbox; envd always gets an access token.
#[utoipa::path(post, path = "/v2/sandboxes", request_body = NewSandbox,
    responses((status = 201, body = Sandbox), (status = 400, body = stasis_types::wire::ErrorBody), (status = 401, body = stasis_types::wire::ErrorBody)))]
pub async fn create(State(state): State<AppState>, owner: Owner, Json(body): Json<NewSandbox>) -> Result<(StatusCode, axum::Json<Sandbox>), ApiError> {
    create_inner(state, owner, body, true).await
}

/// `POST /sandboxes` (legacy, the 1.x SDKs): envd gets an access token only with `secure: true`,
/// since those SDKs never send one.
#[utoipa::path(post, path = "/sandboxes", request_body = NewSandbox,
    responses((status = 201, body = Sandbox), (status = 400, body = stasis_types::wire::ErrorBody), (status = 401, body = stasis_types::wire::ErrorBody)))]
pub async fn create_legacy(State(state): State<AppState>, owner: Owner, Json(body): Json<NewSandbox>) -> Result<(StatusCode, axum::Json<Sandbox>), ApiError> {
    let secure = body.secure.unwrap_or(false);
    create_inner(state, owner, body, secure).await
}

async fn create_inner(state: AppState, owner: Owner, body: NewSandbox, secure: bool) -> Result<(StatusCode, axum::Json<Sandbox>), ApiError> {
    let req = CreateRequest {
        secure,
        template: body.template_id,
        timeout_secs: body.timeout,
        on_timeout: body.auto_pause.map(|p| if p { OnTimeout::Pause } else { OnTimeout::Kill }),
        auto_pause_memory: body.auto_pause_memory,
        auto_resume: body.auto_resume.is_some_and(|a| a.enabled),
        metadata: body.metadata.unwrap_or_default(),
        env_vars: body.env_vars.unwrap_or_default(),
        allow_internet_access: body.allow_internet_access,
        network: body.network,
    };
    let lc = state.lifecycle.clone();
    let rec = detached(async move { lc.create(&owner.0, req).await }).await?;
    Ok((StatusCode::CREATED, axum::Json(convert::sandbox(&rec, state.domain.as_deref()))))
}
