//! An in-memory [`Runtime`] for the control plane's tests: no root, no containers.
//!
//! It keeps each sandbox's status and a per-sandbox port table: `connect(port)` reaches a real
//! TCP listener that the test registered with [`FakeRuntime::expose`], so proxy code is tested
//! over real sockets. Failures can be injected per operation.

use crate::net::policy::EgressPolicy;
use crate::runtime::{ExecOutput, ExecRequest, Runtime, SandboxInfo, SandboxSpec, SandboxStats, SandboxStatus};
use crate::{RuntimeError, SandboxId};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::TcpStream;

#[derive(Default)]
pub struct FakeRuntime {
    sandboxes: Mutex<HashMap<SandboxId, (SandboxSpec, SandboxStatus)>>,
    ports: Mutex<HashMap<(SandboxId, u16), SocketAddr>>,
    fail: Mutex<HashSet<&'static str>>,
    /// Every operation sleeps this long (to widen race windows in tests).
    delay: Mutex<Duration>,
    pub known_templates: Vec<String>,
}

impl FakeRuntime {
    pub fn new() -> Self {
        FakeRuntime { known_templates: vec!["base".into(), "code-interpreter-v1".into()], ..Default::default() }
    }

    /// Make `connect(id, port)` reach `addr`.
    pub fn expose(&self, id: &SandboxId, port: u16, addr: SocketAddr) {
        self.ports.lock().unwrap().insert((id.clone(), port), addr);
    }

    /// Make the next calls of `op` ("create", "pause", "resume", "kill") fail until cleared.
    pub fn fail(&self, op: &'static str, on: bool) {
        let mut f = self.fail.lock().unwrap();
        if on {
            f.insert(op);
        } else {
            f.remove(op);
        }
    }

    pub fn set_delay(&self, d: Duration) {
        *self.delay.lock().unwrap() = d;
    }

    /// The egress policy the sandbox has now.
    pub fn network(&self, id: &SandboxId) -> Option<EgressPolicy> {
        self.sandboxes.lock().unwrap().get(id).map(|(spec, _)| spec.network.clone())
    }

    pub fn status(&self, id: &SandboxId) -> Option<SandboxStatus> {
        self.sandboxes.lock().unwrap().get(id).map(|(_, s)| *s)
    }

    /// Simulate a sandbox that died on its own (or a lost checkpoint).
    pub fn forget(&self, id: &SandboxId) {
        self.sandboxes.lock().unwrap().remove(id);
    }

    async fn step(&self, op: &'static str, id: &SandboxId) -> Result<(), RuntimeError> {
        let delay = *self.delay.lock().unwrap();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.fail.lock().unwrap().contains(op) {
            return Err(RuntimeError::Command { what: format!("fake {op} of {id}"), detail: "injected failure".into() });
        }
        Ok(())
    }

    fn set(&self, id: &SandboxId, from: SandboxStatus, to: SandboxStatus, wrong: RuntimeError) -> Result<(), RuntimeError> {
        let mut map = self.sandboxes.lock().unwrap();
        let entry = map.get_mut(id).ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        if entry.1 != from {
            return Err(wrong);
        }
        entry.1 = to;
        Ok(())
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    async fn create(&self, id: &SandboxId, spec: SandboxSpec) -> Result<(), RuntimeError> {
        spec.limits.validate()?;
        spec.network.validate()?;
        if !self.known_templates.contains(&spec.template) {
            return Err(RuntimeError::UnknownTemplate(spec.template.clone(), self.known_templates.join(", ")));
        }
        self.step("create", id).await?;
        let mut map = self.sandboxes.lock().unwrap();
        if map.contains_key(id) {
            return Err(RuntimeError::AlreadyExists(id.clone()));
        }
        map.insert(id.clone(), (spec, SandboxStatus::Running));
        Ok(())
    }

    async fn exec(&self, id: &SandboxId, _req: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        match self.status(id) {
            None => Err(RuntimeError::NotFound(id.clone())),
            Some(SandboxStatus::Running) => Ok(ExecOutput { exit_code: 0, stdout: vec![], stderr: vec![] }),
            Some(_) => Err(RuntimeError::NotRunning(id.clone())),
        }
    }

    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.step("pause", id).await?;
        self.set(id, SandboxStatus::Running, SandboxStatus::Paused, RuntimeError::AlreadyPaused(id.clone()))
    }

    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.step("resume", id).await?;
        self.set(id, SandboxStatus::Paused, SandboxStatus::Running, RuntimeError::NotPaused(id.clone()))
    }

    async fn kill(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        self.step("kill", id).await?;
        self.ports.lock().unwrap().retain(|(sid, _), _| sid != id);
        self.sandboxes.lock().unwrap().remove(id).map(drop).ok_or_else(|| RuntimeError::NotFound(id.clone()))
    }

    async fn update_network(&self, id: &SandboxId, policy: EgressPolicy) -> Result<(), RuntimeError> {
        policy.validate()?;
        let mut map = self.sandboxes.lock().unwrap();
        let (spec, _) = map.get_mut(id).ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        spec.network = policy;
        Ok(())
    }

    async fn connect(&self, id: &SandboxId, port: u16) -> Result<TcpStream, RuntimeError> {
        match self.status(id) {
            None => return Err(RuntimeError::NotFound(id.clone())),
            Some(SandboxStatus::Running) => {}
            Some(_) => return Err(RuntimeError::NotRunning(id.clone())),
        }
        let addr = self.ports.lock().unwrap().get(&(id.clone(), port)).copied();
        let addr = addr.ok_or_else(|| RuntimeError::PortNotOpen(id.clone(), port))?;
        TcpStream::connect(addr).await.map_err(|_| RuntimeError::PortNotOpen(id.clone(), port))
    }

    async fn info(&self, id: &SandboxId) -> Result<SandboxInfo, RuntimeError> {
        let map = self.sandboxes.lock().unwrap();
        let (spec, status) = map.get(id).ok_or_else(|| RuntimeError::NotFound(id.clone()))?;
        Ok(SandboxInfo { id: id.clone(), template: spec.template.clone(), limits: spec.limits.clone(), status: *status })
    }

    async fn stats(&self, id: &SandboxId) -> Result<SandboxStats, RuntimeError> {
        let info = self.info(id).await?;
        if info.status != SandboxStatus::Running {
            return Err(RuntimeError::NotRunning(id.clone()));
        }
        Ok(SandboxStats {
            cpu_usage_ns: 1_000_000,
            memory_used_bytes: 32 << 20,
            memory_cache_bytes: 1 << 20,
            memory_limit_bytes: info.limits.memory_mib << 20,
            disk_used_bytes: 4096,
        })
    }

    async fn list(&self) -> Result<Vec<SandboxInfo>, RuntimeError> {
        let ids: Vec<SandboxId> = self.sandboxes.lock().unwrap().keys().cloned().collect();
        let mut out = Vec::new();
        for id in ids {
            if let Ok(info) = self.info(&id).await {
                out.push(info);
            }
        }
        Ok(out)
    }
}
