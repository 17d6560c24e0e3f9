//! One error type for every route, producing E2B's `{"code", "message"}` body. JS SDKs read
//! `code` from the body (not the HTTP status) to tell 404 and 409 apart, so both always agree.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use stasis_lifecycle::LifecycleError;
use stasis_types::wire::ErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<LifecycleError> for ApiError {
    fn from(e: LifecycleError) -> Self {
        match e {
            LifecycleError::NotFound(id) => ApiError::NotFound(format!("sandbox {id} not found")),
            LifecycleError::Conflict(m) => ApiError::Conflict(m),
            LifecycleError::InvalidInput(m) => ApiError::BadRequest(m),
            LifecycleError::NotRunning(id) => ApiError::Conflict(format!("sandbox {id} is not running")),
            LifecycleError::PortNotOpen(id, port) => ApiError::BadRequest(format!("port {port} of sandbox {id} is not open")),
            LifecycleError::GuestUnresponsive(m) => ApiError::Unavailable(format!("the sandbox's agent did not answer: {m}")),
            e @ (LifecycleError::Runtime(_) | LifecycleError::Store(_)) => ApiError::Internal(e.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(%status, error = %self, "request failed");
        }
        let body = ErrorBody { code: status.as_u16(), message: self.to_string(), error_code: None };
        (status, axum::Json(body)).into_response()
    }
}
