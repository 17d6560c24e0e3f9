//! The operations: create, pause, connect/resume, kill, timeout, and the read-only queries.

use crate::{Lifecycle, LifecycleError};
use rand::Rng;
use stasis_runtime::{Limits, RuntimeError, SandboxId, SandboxSpec};
use stasis_store::{Changes, ListQuery, OnTimeout, Page, SandboxRecord, StoreError};
use stasis_types::wire::{Metadata, SandboxMetric};
use stasis_types::SandboxState;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a create asks for, already parsed from the wire.
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub template: String,
    pub timeout_secs: Option<u64>,
    pub on_timeout: Option<OnTimeout>,
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: bool,
    pub metadata: Metadata,
    pub env_vars: BTreeMap<String, String>,
    pub allow_internet_access: Option<bool>,
    pub network: Option<serde_json::Value>,
    /// Protect envd with an access token (the v2 API always does; legacy creates only when
    /// asked, and the 1.x SDKs never send a token).
    pub secure: bool,
}

/// Outcome of connect/resume.
pub struct Resumed {
    pub record: SandboxRecord,
    /// True when the sandbox was paused and is now restored (201), false when it was running (200).
    pub resumed: bool,
}

const MAX_METADATA_ENTRIES: usize = 64;
const MAX_ENV_VARS: usize = 512;
/// How long kill waits for an operation under way on the same sandbox.
const KILL_WAITS_FOR: Duration = Duration::from_secs(60);

fn ms(d: chrono::Duration) -> i64 {
    d.num_milliseconds().max(0)
}

fn check_maps(req: &CreateRequest) -> Result<(), LifecycleError> {
    if req.metadata.len() > MAX_METADATA_ENTRIES {
        return Err(LifecycleError::InvalidInput(format!("at most {MAX_METADATA_ENTRIES} metadata entries")));
    }
    if req.env_vars.len() > MAX_ENV_VARS {
        return Err(LifecycleError::InvalidInput(format!("at most {MAX_ENV_VARS} environment variables")));
    }
    for k in req.env_vars.keys() {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(LifecycleError::InvalidInput(format!("invalid environment variable name {k:?}")));
        }
    }
    Ok(())
}

impl Lifecycle {
    pub async fn create(&self, owner: &str, req: CreateRequest) -> Result<SandboxRecord, LifecycleError> {
        let timeout = self.timeout(req.timeout_secs)?;
        check_maps(&req)?;
        let network = crate::network::egress_policy(req.allow_internet_access, req.network.as_ref())?;
        if req.template.is_empty() {
            return Err(LifecycleError::InvalidInput("templateID is required".into()));
        }
        let id = SandboxId::generate();
        let now = self.now();
        let limits: Limits = self.cfg.limits.clone();
        let rec = SandboxRecord {
            id: id.to_string(),
            owner: owner.to_owned(),
            template: req.template.clone(),
            alias: None,
            state: SandboxState::Creating,
            cpu_count: limits.cpu_count,
            memory_mb: limits.memory_mib,
            disk_size_mb: self.cfg.disk_size_mb,
            metadata: req.metadata.clone(),
            env_vars: req.env_vars.clone(),
            envd_access_token: if req.secure { hex::encode(rand::rng().random::<[u8; 16]>()) } else { String::new() },
            envd_version: stasis_proto::ENVD_VERSION.to_owned(),
            on_timeout: req.on_timeout.unwrap_or(OnTimeout::Kill),
            auto_pause_memory: req.auto_pause_memory.unwrap_or(true),
            auto_resume: req.auto_resume,
            allow_internet_access: req.allow_internet_access,
            network: req.network.clone(),
            created_at: now,
            started_at: now,
            end_at: now + timeout,
            state_since: now,
            running_ms: 0,
            paused_ms: 0,
        };
        self.store.insert(&rec).await?;
        let spec = SandboxSpec { template: req.template.clone(), limits, env: BTreeMap::new(), network };
        let started = match self.runtime.create(&id, spec).await {
            Ok(()) => {
                let token = Some(rec.envd_access_token.as_str()).filter(|t| !t.is_empty());
                self.guest.init(&id, token, &rec.env_vars).await.map_err(|e| LifecycleError::GuestUnresponsive(e.0))
            }
            Err(e) => Err(e.into()),
        };
        if let Err(err) = started {
            // Nothing of a failed create may remain: not the container, not the record.
            if let Err(e) = self.runtime.kill(&id).await {
                if !matches!(e, RuntimeError::NotFound(_)) {
                    tracing::error!(%id, %e, "cleanup of a failed create");
                }
            }
            let _ = self.store.delete(&rec.id, self.now()).await;
            return Err(err);
        }
        let now = self.now();
        let changes = Changes { started_at: Some(now), end_at: Some(now + timeout), ..Default::default() };
        let rec = self.store.transition(&rec.id, SandboxState::Creating, SandboxState::Running, changes, now).await?;
        tracing::info!(id = %rec.id, template = %rec.template, "created");
        Ok(rec)
    }

    /// Pause a running sandbox. `owner: None` is the server itself (auto-pause).
    pub async fn pause(&self, owner: Option<&str>, id: &str) -> Result<SandboxRecord, LifecycleError> {
        let rec = self.record(owner, id).await?;
        match rec.state {
            SandboxState::Running => {}
            SandboxState::Paused | SandboxState::Pausing => return Err(LifecycleError::Conflict(format!("sandbox {id} is already paused"))),
            other => return Err(LifecycleError::Conflict(format!("sandbox {id} is {other}; try again when it is done"))),
        }
        let now = self.now();
        self.store.transition(id, SandboxState::Running, SandboxState::Pausing, Changes::default(), now).await?;
        // Clients are disconnected before the checkpoint, as on E2B.
        self.conns.close_all(id);
        let sid = SandboxId::parse(id).map_err(|_| LifecycleError::NotFound(id.to_owned()))?;
        match self.runtime.pause(&sid).await {
            Ok(()) => {
                let now = self.now();
                let changes = Changes { add_running_ms: ms(now - rec.started_at), ..Default::default() };
                let rec = self.store.transition(id, SandboxState::Pausing, SandboxState::Paused, changes, now).await?;
                tracing::info!(%id, "paused");
                Ok(rec)
            }
            Err(RuntimeError::NotFound(_) | RuntimeError::NotRunning(_)) => {
                // It died on its own: there is nothing left to pause or resume.
                tracing::warn!(%id, "sandbox vanished during pause; removing it");
                self.forget(id, SandboxState::Pausing).await;
                Err(LifecycleError::NotFound(id.to_owned()))
            }
            Err(err) => {
                tracing::error!(%id, %err, "pause failed; the sandbox keeps running");
                self.store.transition(id, SandboxState::Pausing, SandboxState::Running, Changes::default(), self.now()).await?;
                Err(err.into())
            }
        }
    }

    /// `connect` (current SDKs) and `resume` (legacy): a running sandbox gets its end time
    /// extended (never shortened), a paused one is restored with `end = now + timeout`.
    pub async fn connect(&self, owner: Option<&str>, id: &str, timeout_secs: Option<u64>) -> Result<Resumed, LifecycleError> {
        self.resume_inner(owner, id, timeout_secs, false, None).await
    }

    /// The legacy `/resume`: 409 when already running; `auto_pause` may change the policy.
    pub async fn resume_legacy(&self, owner: &str, id: &str, timeout_secs: Option<u64>, auto_pause: Option<bool>) -> Result<Resumed, LifecycleError> {
        self.resume_inner(Some(owner), id, timeout_secs, true, auto_pause).await
    }

    async fn resume_inner(
        &self,
        owner: Option<&str>,
        id: &str,
        timeout_secs: Option<u64>,
        legacy: bool,
        auto_pause: Option<bool>,
    ) -> Result<Resumed, LifecycleError> {
        let timeout = self.timeout(timeout_secs)?;
        // A sandbox being paused (an auto-pause at its timeout, say) is resumed once the pause
        // is done, rather than refused: the caller wants it running either way.
        let rec = self.settled(owner, id, KILL_WAITS_FOR).await?;
        match rec.state {
            SandboxState::Running if legacy => Err(LifecycleError::Conflict(format!("sandbox {id} is already running"))),
            SandboxState::Running => {
                let end = std::cmp::max(rec.end_at, self.now() + timeout);
                let record = self.store.set_end_at(id, SandboxState::Running, end).await?;
                Ok(Resumed { record, resumed: false })
            }
            SandboxState::Paused => {
                let now = self.now();
                self.store.transition(id, SandboxState::Paused, SandboxState::Resuming, Changes::default(), now).await?;
                let sid = SandboxId::parse(id).map_err(|_| LifecycleError::NotFound(id.to_owned()))?;
                match self.runtime.resume(&sid).await {
                    Ok(()) => {
                        let now = self.now();
                        let changes = Changes {
                            started_at: Some(now),
                            end_at: Some(now + timeout),
                            add_paused_ms: ms(now - rec.state_since),
                            on_timeout: auto_pause.map(|p| if p { OnTimeout::Pause } else { OnTimeout::Kill }),
                            ..Default::default()
                        };
                        let record = self.store.transition(id, SandboxState::Resuming, SandboxState::Running, changes, now).await?;
                        tracing::info!(%id, "resumed");
                        Ok(Resumed { record, resumed: true })
                    }
                    Err(RuntimeError::NotFound(_)) => {
                        tracing::error!(%id, "the checkpoint of a paused sandbox is gone; removing it");
                        self.forget(id, SandboxState::Resuming).await;
                        Err(LifecycleError::NotFound(id.to_owned()))
                    }
                    Err(err) => {
                        tracing::error!(%id, %err, "resume failed; the sandbox stays paused");
                        // The paused stretch so far is over (re-entering Paused restarts it).
                        let changes = Changes { add_paused_ms: ms(now - rec.state_since), ..Default::default() };
                        self.store.transition(id, SandboxState::Resuming, SandboxState::Paused, changes, self.now()).await?;
                        Err(err.into())
                    }
                }
            }
            other => Err(LifecycleError::Conflict(format!("sandbox {id} is {other}; try again when it is done"))),
        }
    }

    /// Remove a sandbox in any state. An operation under way is waited for first.
    pub async fn kill(&self, owner: Option<&str>, id: &str) -> Result<(), LifecycleError> {
        let deadline = tokio::time::Instant::now() + KILL_WAITS_FOR;
        loop {
            let rec = self.settled(owner, id, deadline.saturating_duration_since(tokio::time::Instant::now())).await?;
            if rec.state.is_transitional() {
                return Err(LifecycleError::Conflict(format!("sandbox {id} is {}", rec.state)));
            }
            match self.claim_kill(&rec).await {
                Ok(()) => break,
                // Another operation claimed it between our read and our claim: wait for that one
                // too, rather than refusing a kill the caller cannot retry meaningfully.
                Err(StoreError::Conflict { .. }) if tokio::time::Instant::now() < deadline => continue,
                Err(e) => return Err(e.into()),
            }
        }
        self.conns.close_all(id);
        self.finish_kill(id).await
    }

    /// Kill `rec` only if it is still in the state it was read in, without waiting: the
    /// sweeper's timeout and retention actions were decided for that state, and an owner's
    /// pause or resume that claimed the sandbox first wins.
    pub(crate) async fn kill_as_read(&self, rec: &SandboxRecord) -> Result<(), LifecycleError> {
        self.claim_kill(rec).await?;
        self.conns.close_all(&rec.id);
        self.finish_kill(&rec.id).await
    }

    /// Move `rec` from the state it was read in to Killing, closing its usage stretch.
    async fn claim_kill(&self, rec: &SandboxRecord) -> Result<(), StoreError> {
        let now = self.now();
        let changes = match rec.state {
            SandboxState::Running => Changes { add_running_ms: ms(now - rec.started_at), ..Default::default() },
            SandboxState::Paused => Changes { add_paused_ms: ms(now - rec.state_since), ..Default::default() },
            _ => Changes::default(),
        };
        self.store.transition(&rec.id, rec.state, SandboxState::Killing, changes, now).await.map(drop)
    }

    /// Remove the container and the record of a sandbox already in `Killing`.
    pub(crate) async fn finish_kill(&self, id: &str) -> Result<(), LifecycleError> {
        if let Ok(sid) = SandboxId::parse(id) {
            match self.runtime.kill(&sid).await {
                Ok(()) | Err(RuntimeError::NotFound(_)) => {}
                Err(err) => {
                    // Stays in Killing; the sweeper retries.
                    tracing::error!(%id, %err, "kill failed; will retry");
                    return Err(err.into());
                }
            }
        }
        self.store.delete(id, self.now()).await?;
        tracing::info!(%id, "killed");
        Ok(())
    }

    /// Drop the record of a sandbox whose runtime side is gone.
    pub(crate) async fn forget(&self, id: &str, from: SandboxState) {
        if self.store.transition(id, from, SandboxState::Killing, Changes::default(), self.now()).await.is_ok() {
            let _ = self.finish_kill(id).await;
        }
    }

    /// `end = now + timeout`, which can also shorten the lifetime.
    pub async fn set_timeout(&self, owner: &str, id: &str, timeout_secs: u64) -> Result<SandboxRecord, LifecycleError> {
        let timeout = self.timeout(Some(timeout_secs))?;
        let rec = self.record(Some(owner), id).await?;
        match rec.state {
            SandboxState::Running | SandboxState::Paused => Ok(self.store.set_end_at(id, rec.state, self.now() + timeout).await?),
            other => Err(LifecycleError::Conflict(format!("sandbox {id} is {other}; try again when it is done"))),
        }
    }

    /// Every record, for the server's own views (metrics).
    pub async fn all_records(&self) -> Result<Vec<SandboxRecord>, LifecycleError> {
        Ok(self.store.all().await?)
    }

    pub async fn get(&self, owner: &str, id: &str) -> Result<SandboxRecord, LifecycleError> {
        self.record(Some(owner), id).await
    }

    pub async fn list(&self, owner: &str, mut query: ListQuery) -> Result<Page, LifecycleError> {
        query.owner = Some(owner.to_owned());
        Ok(self.store.list(&query).await?)
    }

    /// The sandbox's current resource use, as one sample; none while paused.
    pub async fn metrics(&self, owner: &str, id: &str) -> Result<Vec<SandboxMetric>, LifecycleError> {
        let rec = self.record(Some(owner), id).await?;
        if rec.state != SandboxState::Running {
            return Ok(vec![]);
        }
        let sid = SandboxId::parse(id).map_err(|_| LifecycleError::NotFound(id.to_owned()))?;
        let stats = match self.runtime.stats(&sid).await {
            Ok(s) => s,
            Err(RuntimeError::NotRunning(_)) => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let now = self.now();
        let wall_ns = ms(now - rec.started_at).max(1) as f64 * 1e6;
        Ok(vec![SandboxMetric {
            timestamp: now,
            timestamp_unix: now.timestamp(),
            cpu_count: rec.cpu_count,
            cpu_used_pct: (stats.cpu_usage_ns as f64 / (wall_ns * rec.cpu_count.max(1) as f64) * 100.0).min(100.0),
            mem_used: stats.memory_used_bytes,
            mem_total: stats.memory_limit_bytes.min(rec.memory_mb << 20),
            mem_cache: stats.memory_cache_bytes,
            disk_used: stats.disk_used_bytes,
            disk_total: rec.disk_size_mb << 20,
        }])
    }
}
