//! The one place configuration is read: flags, with environment variables as fallbacks.

use anyhow::Context;
use clap::Args;
use stasis_runtime::RuntimeConfig;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct Config {
    /// Where templates, sandboxes and checkpoints live.
    #[arg(long, env = "STASIS_DATA_DIR", default_value = "/var/lib/stasis", global = true)]
    pub data_dir: PathBuf,
    /// The envd binary put into every sandbox; default: `stasis-envd` next to this binary.
    #[arg(long, env = "STASIS_ENVD_BINARY", global = true)]
    pub envd_binary: Option<PathBuf>,
    /// Debian mirror for template builds; default: the one this machine's apt uses.
    #[arg(long, env = "STASIS_DEBIAN_MIRROR", global = true)]
    pub debian_mirror: Option<String>,
}

impl Config {
    pub fn runtime_config(&self) -> anyhow::Result<RuntimeConfig> {
        let envd = match &self.envd_binary {
            Some(p) => p.clone(),
            None => std::env::current_exe().context("locate the stasis binary")?.with_file_name("stasis-envd"),
        };
        let mut cfg = RuntimeConfig::with_data_dir(self.data_dir.clone(), envd);
        cfg.debian_mirror = self.debian_mirror.clone();
        Ok(cfg)
    }
}
