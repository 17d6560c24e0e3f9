//! Shared state of the agent, and who a request acts as.

use crate::config::Config;
use crate::process::ProcessManager;
use crate::users::{SandboxUser, UserError};
use crate::watch::WatcherRegistry;
use axum::http::HeaderMap;
use base64::Engine as _;
use stasis_proto::connect::{Code, ConnectError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, RwLock};

/// Settings that `POST /init` may change at run time.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub access_token: Option<String>,
    pub env_vars: BTreeMap<String, String>,
    pub default_user: String,
    pub default_workdir: Option<PathBuf>,
}

pub struct AppState {
    pub config: Config,
    pub runtime: RwLock<Runtime>,
    pub processes: std::sync::Arc<ProcessManager>,
    pub watchers: WatcherRegistry,
    /// Last `/proc/stat` totals, for the CPU figure of `/metrics`.
    pub cpu_sample: Mutex<Option<(u64, u64)>>,
}

impl AppState {
    pub fn new(config: Config) -> Self {
        let runtime = Runtime {
            access_token: config.access_token.clone().filter(|t| !t.is_empty()),
            env_vars: config.inherited_env.clone(),
            default_user: config.default_user.clone(),
            default_workdir: config.default_workdir.clone(),
        };
        Self {
            processes: std::sync::Arc::new(ProcessManager::new(config.exited_keep, config.subscriber_buffer_bytes)),
            watchers: WatcherRegistry::new(config.watcher_events),
            runtime: RwLock::new(runtime),
            cpu_sample: Mutex::new(None),
            config,
        }
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Does `X-Access-Token` match the sandbox's token (or is there none)?
    pub fn token_ok(&self, headers: &HeaderMap) -> bool {
        let rt = self.runtime.read().unwrap_or_else(|p| p.into_inner());
        match &rt.access_token {
            None => true,
            Some(expected) => headers
                .get("x-access-token")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|got| constant_time_eq(got.as_bytes(), expected.as_bytes())),
        }
    }

    /// The user a request acts as: `Authorization: Basic base64("name:")`, else the default.
    pub fn user_from_headers(&self, headers: &HeaderMap) -> Result<SandboxUser, ConnectError> {
        let name = match headers.get("authorization") {
            None => None,
            Some(v) => Some(basic_user(v.to_str().unwrap_or_default()).ok_or_else(|| {
                ConnectError::new(Code::Unauthenticated, "invalid Authorization header: expected Basic base64(\"user:\")")
            })?),
        };
        self.user_named(name.as_deref())
    }

    /// The user called `name`, or the default user.
    pub fn user_named(&self, name: Option<&str>) -> Result<SandboxUser, ConnectError> {
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => self.runtime().default_user,
        };
        SandboxUser::lookup(&name).map_err(|e| match e {
            UserError::Unknown(_) => ConnectError::new(Code::Unauthenticated, format!("invalid user: {e}")),
            UserError::Lookup(..) => ConnectError::internal(e.to_string()),
        })
    }

    /// Check the token and resolve the user of an RPC.
    pub fn authorize(&self, headers: &HeaderMap) -> Result<SandboxUser, ConnectError> {
        if !self.token_ok(headers) {
            return Err(ConnectError::new(Code::Unauthenticated, "missing or invalid access token"));
        }
        self.user_from_headers(headers)
    }
}

/// The user name in `Basic base64("name:password")`.
pub fn basic_user(value: &str) -> Option<String> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once(':').map_or(text.as_str(), |(u, _)| u).to_string())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
