use super::convert;
use crate::auth::Owner;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

/// E2B's `SandboxNetworkUpdateConfig` (for the OpenAPI document; the handler reads the body as
/// JSON and the lifecycle validates it, so that an omitted field can clear a setting).
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct NetworkUpdate {
    /// `false` behaves as `denyOut: ["0.0.0.0/0"]`.
    allow_internet_access: Option<bool>,
    /// CIDR blocks, IP addresses or domain names (resolved when applied); wins over `denyOut`.
    #[serde(rename = "allowOut")]
    allow_out: Option<Vec<String>>,
    /// CIDR blocks or IP addresses.
    #[serde(rename = "denyOut")]
    deny_out: Option<Vec<String>>,
}

/// `PUT /sandboxes/{id}/network`: replace the sandbox's egress rules (an omitted field is
/// cleared). A running sandbox gets them at once, a paused one when it resumes.
#[utoipa::path(put, path = "/sandboxes/{id}/network", params(("id" = String, Path)), request_body = NetworkUpdate,
    responses((status = 204), (status = 400, body = stasis_types::wire::ErrorBody), (status = 404, body = stasis_types::wire::ErrorBody),
        (status = 409, body = stasis_types::wire::ErrorBody)))]
pub async fn update_network(
    State(state): State<AppState>,
    owner: Owner,
    Path(id): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> Result<StatusCode, ApiError> {
    state.lifecycle.update_network(&owner.0, convert::sandbox_id_from_path(&id), &body).await?;
    Ok(StatusCode::NO_CONTENT)
}
