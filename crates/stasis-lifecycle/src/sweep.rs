//! The background sweep: timeouts (kill, or pause with auto-pause), retention of paused
//! sandboxes, and retries of kills that failed half-way.

use crate::Lifecycle;
use stasis_store::{ListQuery, OnTimeout};
use stasis_types::SandboxState;
use tokio::task::JoinHandle;

impl Lifecycle {
    /// One pass; returns how many sandboxes it acted on.
    pub async fn sweep_once(&self) -> usize {
        let now = self.now();
        let mut acted = 0;
        match self.store.expired(now).await {
            Ok(expired) => {
                for rec in expired {
                    let result = match rec.on_timeout {
                        OnTimeout::Pause => self.pause(None, &rec.id).await.map(drop),
                        OnTimeout::Kill => self.kill_as_read(&rec).await,
                    };
                    match result {
                        Ok(()) => acted += 1,
                        Err(e) => tracing::warn!(id = %rec.id, %e, "timeout action failed"),
                    }
                }
            }
            Err(e) => tracing::error!(%e, "listing expired sandboxes"),
        }
        let retention = chrono::Duration::from_std(self.cfg.retention).unwrap_or(chrono::Duration::MAX);
        match self.store.retention_due(now - retention).await {
            Ok(due) => {
                for rec in due {
                    match self.kill_as_read(&rec).await {
                        Ok(()) => {
                            tracing::info!(id = %rec.id, "paused sandbox reached its retention limit; deleted");
                            acted += 1;
                        }
                        Err(e) => tracing::warn!(id = %rec.id, %e, "retention delete failed"),
                    }
                }
            }
            Err(e) => tracing::error!(%e, "listing retention-due sandboxes"),
        }
        let stuck = ListQuery { states: vec![SandboxState::Killing], limit: 1000, ..Default::default() };
        if let Ok(page) = self.store.list(&stuck).await {
            for rec in page.items {
                if now - rec.state_since > chrono::Duration::seconds(30) && self.finish_kill(&rec.id).await.is_ok() {
                    acted += 1;
                }
            }
        }
        acted
    }

    pub fn spawn_sweeper(&self) -> JoinHandle<()> {
        let lc = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(lc.cfg.sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                lc.sweep_once().await;
            }
        })
    }
}
