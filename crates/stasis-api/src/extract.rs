//! Request extractors whose failures are E2B-shaped 400s instead of axum's plain-text ones.

use crate::error::ApiError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Largest control-plane request body (sandbox traffic is streamed and not limited here).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// JSON body; an empty body reads as `{}` (the SDKs send none for some POSTs).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("request body over {MAX_BODY_BYTES} bytes"))
            } else {
                ApiError::BadRequest(format!("unreadable body: {e}"))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}" } else { &bytes };
        serde_json::from_slice(bytes).map(Json).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// Path parameters; one that does not decode (`/sandboxes/%FF`) is a 400 like any bad input.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(t)) => Ok(Path(t)),
            Err(e) if e.status().is_client_error() => Err(ApiError::BadRequest(format!("invalid path: {}", e.body_text()))),
            Err(e) => Err(ApiError::Internal(e.body_text())),
        }
    }
}
