//! The one place configuration is read: flags, with environment variables as fallbacks.

use anyhow::{bail, Context};
use clap::Args;
use stasis_api::TlsFiles;
use stasis_lifecycle::LifecycleConfig;
use stasis_runtime::RuntimeConfig;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct Config {
    /// Where templates, sandboxes, checkpoints and the database live.
    #[arg(long, env = "STASIS_DATA_DIR", default_value = "/var/lib/stasis", global = true)]
    pub data_dir: PathBuf,
    /// Where built templates are kept (shared between data dirs); default: <data-dir>/templates.
    #[arg(long, env = "STASIS_TEMPLATES_DIR", global = true)]
    pub templates_dir: Option<PathBuf>,
    /// The envd binary put into every sandbox; default: `stasis-envd` next to this binary.
    #[arg(long, env = "STASIS_ENVD_BINARY", global = true)]
    pub envd_binary: Option<PathBuf>,
    /// Debian mirror for template builds; default: the one this machine's apt uses.
    #[arg(long, env = "STASIS_DEBIAN_MIRROR", global = true)]
    pub debian_mirror: Option<String>,
    /// IPv4 range sandbox addresses come from (a /30 each); must not overlap the host's networks.
    #[arg(long, env = "STASIS_SANDBOX_NETWORK", default_value = "10.234.0.0/16", global = true)]
    pub sandbox_network: String,
    /// Name servers for sandboxes, comma-separated; default: the host's (/etc/resolv.conf).
    #[arg(long, env = "STASIS_SANDBOX_DNS", value_delimiter = ',', global = true)]
    pub sandbox_dns: Vec<Ipv4Addr>,
    /// Give sandboxes only loopback: no link out, no changes to the host's firewall.
    #[arg(long, env = "STASIS_NO_SANDBOX_NETWORK", global = true)]
    pub no_sandbox_network: bool,
    /// Flush a pause's images to disk before answering (survives a host crash right after the
    /// pause; costs about 0.3 s per GiB). Default: flushed in the background, right after.
    #[arg(long, env = "STASIS_SYNC_PAUSE", global = true)]
    pub sync_pause: bool,
    /// How long a paused sandbox stays frozen in memory before its checkpoint is written and its
    /// memory freed, in ms; a resume before then only thaws it. With `off`, a pause writes the
    /// checkpoint before it answers (as --sync-pause does, which also flushes it).
    #[arg(long, env = "STASIS_PAUSE_IN_MEMORY_MS", default_value = "10000", global = true)]
    pub pause_in_memory_ms: PauseInMemory,
}

/// `--pause-in-memory-ms`: milliseconds, or `off`.
#[derive(Clone, Copy, Debug)]
pub struct PauseInMemory(pub Option<Duration>);

impl std::str::FromStr for PauseInMemory {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "off" {
            return Ok(PauseInMemory(None));
        }
        let ms: u64 = s.parse().map_err(|_| format!("{s:?} is neither a number of milliseconds nor `off`"))?;
        if ms > 24 * 3600 * 1000 {
            return Err("at most a day (86400000 ms): a paused sandbox in memory holds its RAM".into());
        }
        Ok(PauseInMemory(Some(Duration::from_millis(ms))))
    }
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Address to serve the API and the sandbox proxy on.
    #[arg(long, env = "STASIS_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Domain for `{port}-{sandboxId}.{domain}` URLs (returned to SDKs as `domain`).
    #[arg(long, env = "STASIS_DOMAIN")]
    pub domain: Option<String>,
    /// TLS certificate chain (PEM); serves HTTPS when given with --tls-key.
    #[arg(long, env = "STASIS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "STASIS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Comma-separated API keys; without any, one is generated on first start.
    #[arg(long, env = "STASIS_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<String>,
    /// Default sandbox timeout, seconds.
    #[arg(long, env = "STASIS_DEFAULT_TIMEOUT", default_value_t = 300)]
    pub default_timeout: u64,
    /// Largest sandbox timeout accepted, seconds.
    #[arg(long, env = "STASIS_MAX_TIMEOUT", default_value_t = 86_400)]
    pub max_timeout: u64,
    /// Paused sandboxes are deleted this many seconds after their creation (30 days).
    #[arg(long, env = "STASIS_RETENTION", default_value_t = 30 * 86_400)]
    pub retention: u64,
    /// Memory of each sandbox, MiB.
    #[arg(long, env = "STASIS_SANDBOX_MEMORY_MB", default_value_t = 512)]
    pub memory_mb: u64,
    /// vCPUs of each sandbox.
    #[arg(long, env = "STASIS_SANDBOX_CPUS", default_value_t = 2)]
    pub cpus: u32,
}

/// Where the client commands (`stasis sandbox`, `stasis usage`) find the server.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// Server URL; default: E2B_API_URL, then http://127.0.0.1:3000.
    #[arg(long, env = "STASIS_URL", global = true)]
    pub url: Option<String>,
    /// API key; default: E2B_API_KEY, then the key the server generated in <data-dir>/api-key.
    #[arg(long, env = "STASIS_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,
}

pub struct ServerConfig {
    pub runtime: RuntimeConfig,
    pub lifecycle: LifecycleConfig,
    pub listen: SocketAddr,
    pub tls: Option<TlsFiles>,
    pub api_keys: Vec<String>,
}

impl Config {
    pub fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        let envd = match &self.envd_binary {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("locate the stasis binary")?.with_file_name("stasis-envd"),
        };
        let mut cfg = RuntimeConfig::with_data_dir(self.data_dir.clone(), envd);
        if let Some(t) = &self.templates_dir {
            cfg.templates_dir = t.clone();
        }
        cfg.debian_mirror = self.debian_mirror.clone();
        cfg.sync_pause = self.sync_pause;
        cfg.park_for = if self.sync_pause { None } else { self.pause_in_memory_ms.0 };
        cfg.network = if self.no_sandbox_network {
            None
        } else {
            let mut net = stasis_runtime::NetworkConfig {
                range: self.sandbox_network.parse().with_context(|| format!("--sandbox-network {:?} is not an IPv4 CIDR block", self.sandbox_network))?,
                ..Default::default()
            };
            if !self.sandbox_dns.is_empty() {
                net.dns = self.sandbox_dns.clone();
            }
            if net.dns.is_empty() {
                tracing::warn!("no name server for sandboxes: the host's /etc/resolv.conf has only loopback ones; set --sandbox-dns");
            }
            Some(net)
        };
        Ok(cfg)
    }

    /// The SDK's configuration (`E2B_*` variables) with the `STASIS_*` flags over it. A URL
    /// given here carries sandbox traffic too: a Stasis server serves both on one port.
    pub fn client_config(&self, args: &ClientArgs) -> stasis_sdk::ConnectionConfig {
        let mut cfg = stasis_sdk::ConnectionConfig::from_env();
        if let Some(url) = &args.url {
            cfg = cfg.api_url(url).sandbox_url(url);
        }
        let key = match &args.api_key {
            Some(key) => Some(key.clone()),
            None if cfg.has_api_key() => None,
            None => std::fs::read_to_string(self.data_dir.join("api-key")).ok().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()),
        };
        if let Some(key) = key {
            cfg = cfg.api_key(key);
        }
        cfg
    }

    pub fn server_config(&self, args: &ServerArgs) -> anyhow::Result<ServerConfig> {
        if args.default_timeout == 0 || args.default_timeout > args.max_timeout {
            bail!("--default-timeout must be between 1 and --max-timeout ({})", args.max_timeout);
        }
        let mut lifecycle = LifecycleConfig {
            default_timeout: Duration::from_secs(args.default_timeout),
            max_timeout: Duration::from_secs(args.max_timeout),
            retention: Duration::from_secs(args.retention),
            domain: args.domain.clone(),
            ..Default::default()
        };
        lifecycle.limits.memory_mib = args.memory_mb;
        lifecycle.limits.cpu_count = args.cpus;
        lifecycle.limits.validate().context("sandbox size")?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone() }),
            _ => None,
        };
        Ok(ServerConfig {
            runtime: self.runtime_config()?,
            lifecycle,
            listen: args.listen,
            tls,
            api_keys: args.api_keys.iter().map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect(),
        })
    }
}
