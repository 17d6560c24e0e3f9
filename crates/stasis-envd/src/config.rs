//! envd's configuration: flags and environment, read in one place.

use clap::Parser;
use std::net::IpAddr;
use std::collections::BTreeMap;
use std::path::PathBuf;

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Every setting of envd. Flags win over `STASIS_ENVD_*` variables; no other module reads the
/// environment.
#[derive(Debug, Clone, Parser)]
#[command(name = "stasis-envd", version, about = "Stasis in-sandbox agent (E2B envd protocol)", args_override_self = true)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "STASIS_ENVD_ADDR", default_value = "0.0.0.0")]
    pub addr: IpAddr,
    /// TCP port to listen on.
    #[arg(long, env = "STASIS_ENVD_PORT", default_value_t = stasis_proto::ENVD_PORT)]
    pub port: u16,
    /// Access token required in `X-Access-Token` from the start (otherwise only after `POST /init`).
    #[arg(long, env = "STASIS_ENVD_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// User that requests without `Authorization: Basic` act as.
    #[arg(long, env = "STASIS_ENVD_DEFAULT_USER", default_value = "user")]
    pub default_user: String,
    /// Working directory of processes that do not ask for one (default: the user's home).
    #[arg(long, env = "STASIS_ENVD_DEFAULT_WORKDIR")]
    pub default_workdir: Option<PathBuf>,
    /// Log file inside the sandbox; `off` disables logging.
    #[arg(long, env = "STASIS_ENVD_LOG", default_value = "/var/log/stasis-envd.log")]
    pub log: String,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "STASIS_ENVD_LOG_FILTER", default_value = "info")]
    pub log_filter: String,
    /// Keep the inherited stdin/stdout/stderr instead of re-opening them on `/dev/null`
    /// (debugging on a host only: CRIU cannot checkpoint a sandbox whose init holds host files).
    #[arg(long, env = "STASIS_ENVD_KEEP_STDIO")]
    pub keep_stdio: bool,
    /// Largest Connect message accepted, in bytes.
    #[arg(long, env = "STASIS_ENVD_MAX_MESSAGE_BYTES", default_value_t = 8 << 20)]
    pub max_message_bytes: usize,
    /// Exited processes remembered for `Connect` replay.
    #[arg(long, env = "STASIS_ENVD_EXITED_KEEP", default_value_t = 256)]
    pub exited_keep: usize,
    /// Output bytes a process stream may fall behind; past that, output waits up to 5 s for
    /// the client, then its stream is ended with `resource_exhausted`.
    #[arg(long, env = "STASIS_ENVD_SUBSCRIBER_BUFFER_BYTES", default_value_t = 16 << 20)]
    pub subscriber_buffer_bytes: usize,
    /// Events a `CreateWatcher` watcher buffers between two `GetWatcherEvents` calls.
    #[arg(long, env = "STASIS_ENVD_WATCHER_EVENTS", default_value_t = 10_000)]
    pub watcher_events: usize,
    /// The rest of envd's own environment (what the runtime put in the OCI spec), inherited by
    /// processes below the variables of `/init` and of each request.
    #[arg(skip)]
    pub inherited_env: BTreeMap<String, String>,
    /// `PATH` given to processes (layer 1 of their environment).
    #[arg(long = "process-path", env = "PATH", default_value = DEFAULT_PATH, hide_env_values = true)]
    pub path: String,
}

/// Variables of envd's environment that are not passed on: envd's own settings, and what is
/// per user or per shell (set for each process instead).
const NOT_INHERITED: [&str; 9] = ["PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "OLDPWD", "SHLVL", "_"];

impl Config {
    /// Parse flags and environment; this is the only reader of envd's environment.
    pub fn load() -> Self {
        let mut config = Config::parse();
        config.inherited_env = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| !k.starts_with("STASIS_ENVD_") && !NOT_INHERITED.contains(&k.as_str()))
            .collect();
        config
    }

    /// Check the values that clap cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_message_bytes < 1024 {
            return Err("--max-message-bytes must be at least 1024".into());
        }
        if self.default_user.is_empty() {
            return Err("--default-user must not be empty".into());
        }
        Ok(())
    }
}
