//! Talking to the agent inside a sandbox (envd) on behalf of the control plane.
//!
//! After create, envd is told the sandbox's access token and environment (`POST /init`, as E2B's
//! orchestrator does). A resumed envd remembers both: they were checkpointed with it.

use async_trait::async_trait;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use stasis_runtime::{Runtime, RuntimeError, SandboxId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const ENVD_PORT: u16 = 49983;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestError(pub String);

#[async_trait]
pub trait Guest: Send + Sync {
    /// Wait for the agent to listen, then hand it the access token and environment.
    /// `access_token: None` leaves envd open (a sandbox created without `secure`).
    async fn init(&self, id: &SandboxId, access_token: Option<&str>, env_vars: &BTreeMap<String, String>) -> Result<(), GuestError>;
}

/// For tests of the layers above: there is no agent.
pub struct NoopGuest;

#[async_trait]
impl Guest for NoopGuest {
    async fn init(&self, _: &SandboxId, _: Option<&str>, _: &BTreeMap<String, String>) -> Result<(), GuestError> {
        Ok(())
    }
}

pub struct EnvdGuest {
    runtime: Arc<dyn Runtime>,
    ready_timeout: Duration,
}

impl EnvdGuest {
    pub fn new(runtime: Arc<dyn Runtime>, ready_timeout: Duration) -> Self {
        EnvdGuest { runtime, ready_timeout }
    }

    async fn connect(&self, id: &SandboxId) -> Result<tokio::net::TcpStream, GuestError> {
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            match self.runtime.connect(id, ENVD_PORT).await {
                Ok(s) => return Ok(s),
                Err(RuntimeError::PortNotOpen(..)) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(2)).await,
                Err(e) => return Err(GuestError(format!("envd of {id} is not reachable: {e}"))),
            }
        }
    }
}

#[async_trait]
impl Guest for EnvdGuest {
    async fn init(&self, id: &SandboxId, access_token: Option<&str>, env_vars: &BTreeMap<String, String>) -> Result<(), GuestError> {
        let stream = self.connect(id).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| GuestError(format!("envd handshake: {e}")))?;
        tokio::spawn(conn);
        let mut body = serde_json::json!({ "envVars": env_vars });
        if let Some(token) = access_token {
            body["accessToken"] = token.into();
        }
        let req = hyper::Request::post("/init")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("static request parts");
        let resp = tokio::time::timeout(self.ready_timeout, sender.send_request(req))
            .await
            .map_err(|_| GuestError("envd did not answer /init in time".into()))?
            .map_err(|e| GuestError(format!("envd /init: {e}")))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Err(GuestError(format!("envd /init answered {status}: {}", String::from_utf8_lossy(&body))))
    }
}
