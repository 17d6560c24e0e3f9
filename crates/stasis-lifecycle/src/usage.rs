//! Usage accounting: running time is billed, paused time is not.

use crate::{Lifecycle, LifecycleError};
use stasis_types::wire::{SandboxUsage, UsageReport};
use stasis_types::SandboxState;

impl Lifecycle {
    pub async fn usage(&self, owner: &str) -> Result<UsageReport, LifecycleError> {
        let now = self.now();
        let rows = self.store.usage(Some(owner)).await?;
        let mut report = UsageReport { running_seconds: 0.0, paused_seconds: 0.0, cpu_seconds: 0.0, memory_gib_seconds: 0.0, sandboxes: vec![] };
        let live: std::collections::HashMap<String, stasis_store::SandboxRecord> = self
            .store
            .all()
            .await?
            .into_iter()
            .filter(|r| r.owner == owner)
            .map(|r| (r.id.clone(), r))
            .collect();
        for row in rows {
            let (mut running_ms, mut paused_ms) = (row.running_ms, row.paused_ms);
            // Add the stretch under way.
            if let Some(rec) = live.get(&row.sandbox_id) {
                let since = (now - rec.state_since).num_milliseconds().max(0);
                match rec.state {
                    SandboxState::Running => running_ms += (now - rec.started_at).num_milliseconds().max(0),
                    SandboxState::Pausing => running_ms += (rec.state_since - rec.started_at).num_milliseconds().max(0),
                    SandboxState::Paused => paused_ms += since,
                    _ => {}
                }
            }
            let running = running_ms as f64 / 1000.0;
            report.running_seconds += running;
            report.paused_seconds += paused_ms as f64 / 1000.0;
            report.cpu_seconds += running * row.cpu_count as f64;
            report.memory_gib_seconds += running * row.memory_mb as f64 / 1024.0;
            report.sandboxes.push(SandboxUsage {
                sandbox_id: row.sandbox_id,
                state: row.state.map(|s| s.public_name().to_owned()).unwrap_or_else(|| "deleted".into()),
                running_seconds: running,
                paused_seconds: paused_ms as f64 / 1000.0,
                cpu_count: row.cpu_count,
                memory_mb: row.memory_mb,
            });
        }
        Ok(report)
    }
}
