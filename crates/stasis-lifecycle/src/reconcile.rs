//! After a restart: make the records and the runtime agree, so that every sandbox is running or
//! paused and usable, and nothing is orphaned on either side.

use crate::{Lifecycle, LifecycleError};
use stasis_runtime::{SandboxId, SandboxStatus};
use stasis_store::Changes;
use stasis_types::SandboxState;
use std::collections::HashMap;

impl Lifecycle {
    pub async fn reconcile(&self) -> Result<(), LifecycleError> {
        let actual: HashMap<String, SandboxStatus> =
            self.runtime.list().await?.into_iter().map(|i| (i.id.to_string(), i.status)).collect();
        let records = self.store.all().await?;
        let now = self.now();
        for rec in &records {
            let status = actual.get(&rec.id).copied();
            let target = match (rec.state, status) {
                (SandboxState::Killing, _) | (SandboxState::Creating, _) => None,
                (_, None) | (_, Some(SandboxStatus::Stopped)) => None,
                (_, Some(SandboxStatus::Running)) => Some(SandboxState::Running),
                (_, Some(SandboxStatus::Paused)) => Some(SandboxState::Paused),
            };
            match target {
                None => {
                    tracing::warn!(id = %rec.id, state = %rec.state, runtime = ?status, "removing a sandbox that cannot be used");
                    if rec.state != SandboxState::Killing {
                        self.store.transition(&rec.id, rec.state, SandboxState::Killing, Changes::default(), now).await?;
                    }
                    let _ = self.finish_kill(&rec.id).await;
                }
                Some(t) if t == rec.state => {}
                Some(t) => {
                    tracing::info!(id = %rec.id, from = %rec.state, to = %t, "completing an interrupted operation");
                    // Pausing/Resuming end where the runtime is; a Running/Paused mismatch (a
                    // crash between runtime and store) goes the same way, through the state
                    // they both allow.
                    let via = match (rec.state, t) {
                        (SandboxState::Running, SandboxState::Paused) => Some(SandboxState::Pausing),
                        (SandboxState::Paused, SandboxState::Running) => Some(SandboxState::Resuming),
                        _ => None,
                    };
                    let mut from = rec.state;
                    if let Some(v) = via {
                        self.store.transition(&rec.id, from, v, Changes::default(), now).await?;
                        from = v;
                    }
                    // Keep usage whole: a rolled-back pause never stopped the sandbox (its running
                    // stretch goes on); a finished one ends the stretch, at the pause's start when
                    // known, else now.
                    let changes = match (rec.state, t) {
                        (SandboxState::Pausing, SandboxState::Running) => Changes { end_at: Some(std::cmp::max(rec.end_at, now)), ..Default::default() },
                        // A resume the owner asked for: its timeout was not recorded yet, so give
                        // the default one (the old end has likely passed while it was paused).
                        (_, SandboxState::Running) => {
                            let fresh = now + chrono::Duration::from_std(self.cfg.default_timeout).unwrap_or(chrono::Duration::zero());
                            Changes { started_at: Some(now), end_at: Some(std::cmp::max(rec.end_at, fresh)), ..Default::default() }
                        }
                        (SandboxState::Pausing, _) => Changes { add_running_ms: (rec.state_since - rec.started_at).num_milliseconds().max(0), ..Default::default() },
                        (SandboxState::Running, _) => Changes { add_running_ms: (now - rec.started_at).num_milliseconds().max(0), ..Default::default() },
                        _ => Changes::default(),
                    };
                    self.store.transition(&rec.id, from, t, changes, now).await?;
                }
            }
        }
        let known: std::collections::HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        for id in actual.keys().filter(|id| !known.contains(id.as_str())) {
            tracing::warn!(%id, "removing a sandbox the store does not know");
            if let Ok(sid) = SandboxId::parse(id) {
                let _ = self.runtime.kill(&sid).await;
            }
        }
        Ok(())
    }
}
