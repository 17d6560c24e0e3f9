//! E2B's REST request and response bodies, with the exact JSON field names the SDKs use.
//!
//! Required response keys are always serialised (Python raises `KeyError` on a missing one);
//! optional ones are skipped when absent. Unknown request fields are ignored, as E2B does, but
//! a known field of the wrong type is a 400.

use crate::state::PublicState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub type Metadata = BTreeMap<String, String>;

/// Error body of every failed control-plane request. JS reads `code`, not the HTTP status.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: u16,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct AutoResumeConfig {
    pub enabled: bool,
}

/// `POST /sandboxes` and `POST /v2/sandboxes`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    /// Seconds until the sandbox is killed (or paused, with `autoPause`). Default 15 on E2B's
    /// legacy route but every SDK sends it; 300 here when absent.
    pub timeout: Option<u64>,
    pub auto_pause: Option<bool>,
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: Option<AutoResumeConfig>,
    pub secure: Option<bool>,
    #[serde(rename = "allow_internet_access", alias = "allowInternetAccess")]
    pub allow_internet_access: Option<bool>,
    #[schema(value_type = Object)]
    pub network: Option<serde_json::Value>,
    pub metadata: Option<Metadata>,
    pub env_vars: Option<BTreeMap<String, String>>,
    #[schema(value_type = Object)]
    pub mcp: Option<serde_json::Value>,
}

/// Response of create, connect and resume.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub envd_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub auto_resume: bool,
    /// `kill` or `pause`.
    pub on_timeout: String,
}

/// `GET /sandboxes/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxDetail {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub started_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    pub envd_version: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u64,
    pub state: PublicState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    pub metadata: Metadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub network: Option<serde_json::Value>,
    pub lifecycle: Lifecycle,
}

/// An item of `GET /sandboxes` and `GET /v2/sandboxes`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub started_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u64,
    pub state: PublicState,
    pub envd_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub metadata: Metadata,
}

/// `POST /v2/sandboxes/{id}/connect` and `POST /sandboxes/{id}/connect`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct ConnectSandbox {
    pub timeout: Option<u64>,
    pub memory: Option<bool>,
}

/// `POST /sandboxes/{id}/resume` (legacy).
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResumedSandbox {
    pub timeout: Option<u64>,
    pub auto_pause: Option<bool>,
    pub memory: Option<bool>,
}

/// `POST /sandboxes/{id}/pause`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PauseRequest {
    pub memory: Option<bool>,
    pub require_healthy_guest: Option<bool>,
}

/// `POST /sandboxes/{id}/timeout`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TimeoutRequest {
    pub timeout: u64,
}

/// An item of `GET /sandboxes/{id}/metrics`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetric {
    pub timestamp: DateTime<Utc>,
    pub timestamp_unix: i64,
    pub cpu_count: u32,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

/// `GET /usage`: running time is counted only while a sandbox runs; paused time is free.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub running_seconds: f64,
    pub paused_seconds: f64,
    /// Σ running seconds × vCPUs.
    pub cpu_seconds: f64,
    /// Σ running seconds × GiB of memory.
    pub memory_gib_seconds: f64,
    pub sandboxes: Vec<SandboxUsage>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SandboxUsage {
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    pub state: String,
    pub running_seconds: f64,
    pub paused_seconds: f64,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_sandbox_accepts_what_the_sdks_send() {
        let body = r#"{"templateID":"base","timeout":300,"autoPause":true,"autoResume":{"enabled":true},
            "allow_internet_access":true,"metadata":{"a":"b"},"envVars":{"X":"1"},"mcp":null,"somethingNew":1}"#;
        let s: NewSandbox = serde_json::from_str(body).unwrap();
        assert_eq!(s.template_id, "base");
        assert_eq!(s.timeout, Some(300));
        assert_eq!(s.auto_pause, Some(true));
        assert!(s.auto_resume.unwrap().enabled);
        assert_eq!(s.env_vars.unwrap()["X"], "1");
    }

    #[test]
    fn wrong_types_and_negative_timeouts_are_rejected() {
        assert!(serde_json::from_str::<NewSandbox>(r#"{"templateID":"base","timeout":"soon"}"#).is_err());
        assert!(serde_json::from_str::<NewSandbox>(r#"{"templateID":"base","timeout":-1}"#).is_err());
        assert!(serde_json::from_str::<NewSandbox>(r#"{"timeout":1}"#).is_err());
    }

    #[test]
    fn responses_use_e2b_field_names() {
        let s = Sandbox {
            template_id: "t".into(),
            sandbox_id: "i".into(),
            client_id: "c".into(),
            envd_version: "0.4.0".into(),
            alias: None,
            envd_access_token: Some("tok".into()),
            traffic_access_token: None,
            domain: None,
        };
        let v = serde_json::to_value(&s).unwrap();
        for key in ["templateID", "sandboxID", "clientID", "envdVersion", "envdAccessToken"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        assert!(v.get("alias").is_none());
    }
}
