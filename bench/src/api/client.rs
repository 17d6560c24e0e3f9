//! The timed calls, made with one plain HTTP client so that what is measured is the API call
//! itself (the SDK builds a client per lifecycle call, which is its cost, not the server's).
//! Work inside sandboxes (commands) goes through the Rust SDK, as a user's would.

use anyhow::{bail, Context};
use reqwest::StatusCode;
use stasis_sdk::{ConnectionConfig, ListOptions, Sandbox};
use std::time::{Duration, Instant};

/// Sandboxes live this long (seconds): longer than any phase of the bench.
const TIMEOUT_SECS: u64 = 3600;

pub struct Api {
    http: reqwest::Client,
    url: String,
    key: String,
    pub sdk: ConnectionConfig,
}

impl Api {
    pub fn new(url: &str, key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
        let sdk = ConnectionConfig::new(url, key).sandbox_url(url).request_timeout(Duration::from_secs(300));
        Ok(Api { http, url: url.to_owned(), key: key.to_owned(), sdk })
    }

    async fn post(&self, path: &str, body: serde_json::Value, want: StatusCode) -> anyhow::Result<(Duration, serde_json::Value)> {
        let t = Instant::now();
        let resp = self.http.post(format!("{}{path}", self.url)).header("X-API-KEY", &self.key).json(&body).send().await?;
        let status = resp.status();
        let bytes = resp.bytes().await?;
        let took = t.elapsed();
        if status != want {
            bail!("POST {path}: {status} (wanted {want}): {}", String::from_utf8_lossy(&bytes));
        }
        let value = if bytes.is_empty() { serde_json::Value::Null } else { serde_json::from_slice(&bytes)? };
        Ok((took, value))
    }

    /// `POST /v2/sandboxes` until 201; returns the id and how long the call took.
    pub async fn create(&self, template: &str) -> anyhow::Result<(String, Duration)> {
        let body = serde_json::json!({ "templateID": template, "timeout": TIMEOUT_SECS, "secure": true });
        let (took, v) = self.post("/v2/sandboxes", body, StatusCode::CREATED).await?;
        let id = v["sandboxID"].as_str().context("sandboxID in the create answer")?.to_owned();
        Ok((id, took))
    }

    /// `GET /health` of envd through the server's proxy; true on a 2xx.
    pub async fn envd_health(&self, id: &str) -> anyhow::Result<bool> {
        let resp = self
            .http
            .get(format!("{}/health", self.url))
            .header("E2b-Sandbox-Id", id)
            .header("E2b-Sandbox-Port", stasis_proto::ENVD_PORT.to_string())
            .send()
            .await?;
        Ok(resp.status().is_success())
    }

    /// `POST /sandboxes/{id}/pause` until 204.
    pub async fn pause(&self, id: &str) -> anyhow::Result<Duration> {
        Ok(self.post(&format!("/sandboxes/{id}/pause"), serde_json::json!({}), StatusCode::NO_CONTENT).await?.0)
    }

    /// `POST /v2/sandboxes/{id}/connect` of a paused sandbox, until 201 (resumed).
    pub async fn resume(&self, id: &str) -> anyhow::Result<Duration> {
        Ok(self.post(&format!("/v2/sandboxes/{id}/connect"), serde_json::json!({ "timeout": TIMEOUT_SECS }), StatusCode::CREATED).await?.0)
    }

    pub async fn kill(&self, id: &str) -> anyhow::Result<()> {
        let resp = self.http.delete(format!("{}/sandboxes/{id}", self.url)).header("X-API-KEY", &self.key).send().await?;
        if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            bail!("DELETE /sandboxes/{id}: {}", resp.status());
        }
        Ok(())
    }

    /// A handle for running commands in `id` (one `GET /sandboxes/{id}`, not timed).
    pub async fn attach(&self, id: &str) -> anyhow::Result<Sandbox> {
        Ok(Sandbox::attach(id, &self.sdk).await?)
    }

    /// Kill every running or paused sandbox of this API key (left over by an interrupted run).
    pub async fn kill_all(&self) -> anyhow::Result<usize> {
        let all = Sandbox::list(ListOptions::new().config(self.sdk.clone())).all().await?;
        for s in &all {
            self.kill(&s.sandbox_id).await?;
        }
        Ok(all.len())
    }
}
