//! Sandbox traffic: everything the SDKs send to envd (49983), the code interpreter (49999) or
//! any other port inside a sandbox.
//!
//! A request is sandbox traffic when it carries `E2b-Sandbox-Id` (+ `E2b-Sandbox-Port`), or when
//! its Host is `{port}-{sandboxId}.{domain}`. It is forwarded over a fresh connection opened by
//! the runtime inside the sandbox's network namespace; streaming bodies and WebSocket upgrades
//! pass through. When the sandbox pauses, the lifecycle cancels its token and every connection
//! through here is closed before the checkpoint.

use crate::routes::sandbox_id_from_path;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use stasis_lifecycle::LifecycleError;

/// Which sandbox and port a request is for, if it is sandbox traffic.
pub fn target(headers: &HeaderMap, domain: Option<&str>) -> Option<(String, Option<u16>)> {
    if let Some(id) = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok()) {
        let port = headers.get("e2b-sandbox-port").and_then(|v| v.to_str().ok()).and_then(|p| p.parse().ok());
        return Some((sandbox_id_from_path(id).to_owned(), port));
    }
    let domain = domain?;
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let label = host.strip_suffix(domain)?.strip_suffix('.')?;
    let (port, id) = label.split_once('-')?;
    let port: u16 = port.parse().ok()?;
    Some((sandbox_id_from_path(id).to_owned(), Some(port)))
}

pub async fn dispatch(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match target(req.headers(), state.domain.as_deref()) {
        Some((id, Some(port))) => forward(state, id, port, req).await,
        Some((id, None)) => unreachable_response(&id, StatusCode::BAD_REQUEST, "E2b-Sandbox-Port is missing or not a port number"),
        None => next.run(req).await,
    }
}

/// E2B's shape for sandbox traffic that cannot be delivered; the SDKs match on `message`.
fn unreachable_response(id: &str, status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({ "sandboxId": id, "message": message, "code": status.as_u16() });
    (status, axum::Json(body)).into_response()
}

const NOT_FOUND: &str = "The sandbox was not found";
/// envd's port in every sandbox (`stasis_proto::ENVD_PORT`; this crate does not depend on it).
const ENVD_PORT: u16 = 49983;
const PORT_CLOSED: &str = "The sandbox is running but port is not open";

/// envd's `GET /health` is how the SDKs ask whether a sandbox runs, and they ask it as soon as a
/// stream breaks. So it does not wake an auto-resume sandbox: the pause that broke the stream
/// would otherwise be undone at once by its own probe.
fn wakes_the_sandbox(port: u16, req: &Request) -> bool {
    !(port == ENVD_PORT && req.method() == axum::http::Method::GET && req.uri().path() == "/health")
}

async fn forward(state: AppState, id: String, port: u16, mut req: Request) -> Response {
    let route = match state.lifecycle.route(&id, wakes_the_sandbox(port, &req)).await {
        Ok(r) => r,
        Err(LifecycleError::NotFound(_) | LifecycleError::NotRunning(_)) => return unreachable_response(&id, StatusCode::BAD_GATEWAY, NOT_FOUND),
        Err(LifecycleError::Conflict(m)) => return unreachable_response(&id, StatusCode::CONFLICT, &m),
        Err(e) => {
            tracing::warn!(%id, %e, "routing sandbox traffic");
            return unreachable_response(&id, StatusCode::BAD_GATEWAY, NOT_FOUND);
        }
    };
    let stream = match state.lifecycle.runtime().connect(&route.id, port).await {
        Ok(s) => s,
        Err(stasis_runtime::RuntimeError::PortNotOpen(..)) => return unreachable_response(&id, StatusCode::BAD_GATEWAY, PORT_CLOSED),
        Err(e) => {
            tracing::debug!(%id, %e, "connect into sandbox");
            return unreachable_response(&id, StatusCode::BAD_GATEWAY, NOT_FOUND);
        }
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
        Ok(x) => x,
        Err(_) => return unreachable_response(&id, StatusCode::BAD_GATEWAY, PORT_CLOSED),
    };
    let closed = route.closed.clone();
    tokio::spawn(async move {
        // Dropping the connection on pause ends the response stream, which makes the server
        // abort its side: the client sees the disconnect that E2B documents.
        tokio::select! {
            _ = conn.with_upgrades() => {}
            _ = closed.cancelled() => {}
        }
    });
    let client_upgrade = req.headers().contains_key(header::UPGRADE).then(|| hyper::upgrade::on(&mut req));
    let mut resp = match sender.send_request(req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%id, %e, "forwarding into sandbox");
            // Cut by a pause or kill while waiting for the answer: the sandbox is gone, not
            // its port.
            let message = if route.closed.is_cancelled() { NOT_FOUND } else { PORT_CLOSED };
            return unreachable_response(&id, StatusCode::BAD_GATEWAY, message);
        }
    };
    if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let upstream_upgrade = hyper::upgrade::on(&mut resp);
            let closed = route.closed.clone();
            tokio::spawn(async move {
                let (Ok(client), Ok(upstream)) = (client_upgrade.await, upstream_upgrade.await) else { return };
                let (mut client, mut upstream) = (TokioIo::new(client), TokioIo::new(upstream));
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                    _ = closed.cancelled() => {}
                }
            });
        }
    }
    resp.map(Body::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn headers_and_hosts_select_sandbox_traffic() {
        let mut h = HeaderMap::new();
        assert_eq!(target(&h, Some("stasis.test")), None);
        h.insert(header::HOST, HeaderValue::from_static("49983-abc123-6532622b.stasis.test:3443"));
        assert_eq!(target(&h, Some("stasis.test:3443")), Some(("abc123".into(), Some(49983))));
        h.insert(header::HOST, HeaderValue::from_static("api.stasis.test"));
        assert_eq!(target(&h, Some("stasis.test")), None);
        h.insert("e2b-sandbox-id", HeaderValue::from_static("xyz"));
        h.insert("e2b-sandbox-port", HeaderValue::from_static("49999"));
        assert_eq!(target(&h, None), Some(("xyz".into(), Some(49999))));
        h.insert("e2b-sandbox-port", HeaderValue::from_static("nope"));
        assert_eq!(target(&h, None), Some(("xyz".into(), None)));
    }
}
