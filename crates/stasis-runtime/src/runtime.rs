//! The `Runtime` trait: what the control plane needs from a sandbox runtime.
//!
//! Kept free of runc and CRIU so that a microVM runtime (or a remote node) can implement it too.

use crate::net::policy::EgressPolicy;
use crate::{RuntimeError, SandboxId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;

/// cgroup limits of a sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Number of CPUs the sandbox may use (a CFS quota, not pinning).
    pub cpu_count: u32,
    /// Memory limit in MiB; the sandbox is OOM-killed inside its own cgroup above it.
    pub memory_mib: u64,
    /// Maximum number of processes and threads.
    pub pids: u32,
}

impl Default for Limits {
    /// E2B's default sandbox size: 2 vCPUs, 512 MiB.
    fn default() -> Self {
        Limits { cpu_count: 2, memory_mib: 512, pids: 4096 }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), RuntimeError> {
        if !(1..=64).contains(&self.cpu_count) {
            return Err(RuntimeError::InvalidRequest(format!("cpu_count {} is not within 1..=64", self.cpu_count)));
        }
        if !(32..=262_144).contains(&self.memory_mib) {
            return Err(RuntimeError::InvalidRequest(format!("memory_mib {} is not within 32..=262144", self.memory_mib)));
        }
        if !(16..=1_000_000).contains(&self.pids) {
            return Err(RuntimeError::InvalidRequest(format!("pids {} is not within 16..=1000000", self.pids)));
        }
        Ok(())
    }
}

/// What a new sandbox is made of.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxSpec {
    pub template: String,
    pub limits: Limits,
    /// Environment of the sandbox's init (envd), inherited by what it starts.
    pub env: BTreeMap<String, String>,
    /// What it may reach outside.
    #[serde(default)]
    pub network: EgressPolicy,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxStatus {
    Running,
    Paused,
    /// Neither running nor restorable: the container died (OOM of init, say) and there is no
    /// checkpoint. Only `kill` is useful.
    Stopped,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStats {
    /// CPU time used since the sandbox (or its latest resume) started, in nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_used_bytes: u64,
    pub memory_cache_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Bytes in the sandbox's own layer of the file system.
    pub disk_used_bytes: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SandboxInfo {
    pub id: SandboxId,
    pub template: String,
    pub limits: Limits,
    pub status: SandboxStatus,
}

/// A command to run inside a sandbox, waited for.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Defaults to `/`.
    pub cwd: Option<String>,
    /// `uid:gid` inside the sandbox; defaults to root (0:0).
    pub user: Option<(u32, u32)>,
    /// Killed after this long; `None` waits forever.
    pub timeout: Option<Duration>,
}

impl ExecRequest {
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecRequest { argv: argv.into_iter().map(Into::into).collect(), ..Default::default() }
    }
}

#[derive(Clone, Debug)]
pub struct ExecOutput {
    /// Exit code, or 128 + signal number when killed by a signal.
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

#[async_trait]
pub trait Runtime: Send + Sync {
    /// Start a new sandbox with the caller's id (the control plane records it first, so a crash
    /// mid-create can be reconciled); returns once its init is running.
    async fn create(&self, id: &SandboxId, spec: SandboxSpec) -> Result<(), RuntimeError>;

    /// Run a command inside a running sandbox and wait for it.
    async fn exec(&self, id: &SandboxId, req: ExecRequest) -> Result<ExecOutput, RuntimeError>;

    /// Stop the whole process tree so that it can be resumed as it was: checkpointed to disk, or
    /// first kept frozen in memory and checkpointed a little later (the runc runtime's
    /// `park_for`). Either way it is paused from here on. On error the sandbox keeps running.
    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Restore a paused sandbox. On error it stays paused.
    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Remove a sandbox in any state, with everything it left on the host.
    async fn kill(&self, id: &SandboxId) -> Result<(), RuntimeError>;

    /// Replace a sandbox's egress policy: at once when it runs, at resume when it is paused.
    async fn update_network(&self, id: &SandboxId, policy: EgressPolicy) -> Result<(), RuntimeError>;

    /// A TCP stream to `127.0.0.1:port` inside a running sandbox.
    async fn connect(&self, id: &SandboxId, port: u16) -> Result<TcpStream, RuntimeError>;

    async fn info(&self, id: &SandboxId) -> Result<SandboxInfo, RuntimeError>;

    /// Resource usage of a running sandbox, from its cgroup.
    async fn stats(&self, id: &SandboxId) -> Result<SandboxStats, RuntimeError>;

    /// Every sandbox this runtime holds, running or paused (used to reconcile after a restart).
    async fn list(&self) -> Result<Vec<SandboxInfo>, RuntimeError>;
}
