//! Pauses kept in memory for a while ("parked").
//!
//! Writing a checkpoint costs ~0.2 s plus ~0.85 s per GiB, restoring one ~0.1 s plus 0.7–1.8 s
//! per GiB (CRIU copies every page). A parked pause only freezes the sandbox's cgroup and writes
//! [`PARKED_MARK`]; a resume within [`RuntimeConfig::park_for`] thaws it, in milliseconds whatever
//! its size. After that time the checkpoint is written in the background (`runc checkpoint
//! --leave-running` on the frozen cgroup: CRIU freezes it again before it lets the tasks go),
//! then the container is deleted and its memory freed; from then on it is an ordinary pause.
//!
//! While the host's MemAvailable is below [`RuntimeConfig::park_reserve_bytes`], parked
//! sandboxes are checkpointed at once instead (checked at every pause and create, and every
//! second).
//!
//! Crash safety is that of a pause with a background flush: the frozen container outlives this
//! process, and [`RuncRuntime::recover`] parks it again (its dump starts over). A reboot of the
//! host before the checkpoint is written loses it.
//!
//! [`RuntimeConfig::park_for`]: super::RuntimeConfig::park_for
//! [`RuntimeConfig::park_reserve_bytes`]: super::RuntimeConfig::park_reserve_bytes

use super::{freezer_of, make_durable_in_background, persist_checkpoint, RuncRuntime, Slot, OP_LOCK};
use crate::error::IoContext;
use crate::{overlay, RuntimeError, SandboxId};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// In the sandbox dir while it is parked; written after the freeze, removed before the thaw, so
/// a frozen container without it is one whose pause (or resume) never answered.
pub(super) const PARKED_MARK: &str = "parked";

impl RuncRuntime {
    /// Freeze a running sandbox and call it paused. False when its cgroup did not freeze in
    /// time (it is thawed again and the caller checkpoints it at once instead).
    pub(super) async fn park(&self, id: &SandboxId, slot: &Slot, dump_after: Duration) -> Result<bool, RuntimeError> {
        let started = Instant::now();
        let freezer = freezer_of(id);
        if !freezer.freeze(Duration::from_millis(500)).await {
            freezer.thaw();
            return Ok(false);
        }
        let mark = self.sandbox_dir(id).join(PARKED_MARK);
        if let Err(e) = std::fs::write(&mark, b"") {
            freezer.thaw();
            return Err(RuntimeError::CheckpointFailed { id: id.clone(), detail: format!("write {}: {e}", mark.display()) });
        }
        slot.parked.store(true, Ordering::SeqCst);
        self.schedule_dump(id.clone(), dump_after);
        self.relieve_memory();
        tracing::info!(%id, frozen_ms = started.elapsed().as_millis(), checkpoint_in_ms = dump_after.as_millis(), "sandbox paused in memory");
        Ok(true)
    }

    /// Resume a parked sandbox: thaw it. Its link and rules were kept.
    pub(super) fn unpark(&self, id: &SandboxId, slot: &Slot) -> Result<(), RuntimeError> {
        let mark = self.sandbox_dir(id).join(PARKED_MARK);
        match std::fs::remove_file(&mark) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RuntimeError::RestoreFailed { id: id.clone(), detail: format!("remove {}: {e}", mark.display()) }),
        }
        freezer_of(id).thaw();
        slot.parked.store(false, Ordering::SeqCst);
        tracing::info!(%id, "sandbox resumed from memory");
        Ok(())
    }

    /// Write a parked sandbox's checkpoint after `delay`, unless it was resumed or killed first.
    pub(super) fn schedule_dump(&self, id: SandboxId, delay: Duration) {
        let me = self.me.clone();
        let slot = self.slot(&id);
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = slot.dump_now.notified() => {}
            }
            drop(slot);
            let Some(rt) = me.upgrade() else { return };
            let Ok(_permit) = rt.dump_permits.acquire().await else { return };
            rt.dump_parked(&id).await;
        });
    }

    /// Under memory pressure, have every parked sandbox checkpointed now; returns how many.
    pub(super) fn relieve_memory(&self) -> usize {
        let parked: Vec<Arc<Slot>> = self.slots.lock().expect("slots lock").values().filter(|s| s.parked.load(Ordering::SeqCst)).cloned().collect();
        // /proc/meminfo only when there is something to free (this runs every second and at
        // every create).
        if parked.is_empty() || mem_available().is_none_or(|bytes| bytes >= self.cfg.park_reserve_bytes) {
            return 0;
        }
        for slot in &parked {
            slot.dump_now.notify_one();
        }
        parked.len()
    }

    /// Check for memory pressure every second, for the runtime's life.
    pub(super) fn watch_memory(&self) {
        let me = self.me.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let Some(rt) = me.upgrade() else { return };
                let parked = rt.relieve_memory();
                if parked > 0 {
                    tracing::debug!(parked, "memory is short: sandboxes paused in memory are checkpointed now");
                }
            }
        });
    }

    async fn dump_parked(&self, id: &SandboxId) {
        let Some(slot) = self.slots.lock().expect("slots lock").get(id).cloned() else { return };
        let _op = slot.op.write().await;
        if !slot.parked.load(Ordering::SeqCst) {
            return;
        }
        let started = Instant::now();
        match self.dump_parked_locked(id, &slot).await {
            Ok(true) => tracing::info!(%id, total_ms = started.elapsed().as_millis(), "paused sandbox checkpointed; its memory is free"),
            Ok(false) => tracing::info!(%id, "a resume came during the checkpoint: the sandbox stays in memory"),
            // It stays paused in memory: resumable, only not freed (and lost if the host reboots).
            Err(e) => tracing::error!(%id, %e, "could not checkpoint a paused sandbox; it stays frozen in memory"),
        }
    }

    /// Ok(false): the checkpoint was dropped for a waiting resume.
    async fn dump_parked_locked(&self, id: &SandboxId, slot: &Slot) -> Result<bool, RuntimeError> {
        let started = Instant::now();
        let record = self.read_record(id)?;
        let dir = self.sandbox_dir(id);
        let partial = dir.join("checkpoint.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let (images, work) = (partial.join("images"), partial.join("work"));
        for d in [&images, &work] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        if let Err(err) = self.runc.checkpoint(id.as_str(), &images, &work, &dir.join(OP_LOCK), true).await {
            let detail = format!("{err}; criu: {}", Self::dump_log_tail(&work, "dump.log"));
            let _ = std::fs::remove_dir_all(&partial);
            return Err(RuntimeError::CheckpointFailed { id: id.clone(), detail });
        }
        let dumped_ms = started.elapsed().as_millis();
        if slot.resume_waiting.load(Ordering::SeqCst) {
            let _ = std::fs::remove_dir_all(&partial);
            return Ok(false);
        }
        let persisted = {
            let (dir, record, id_map) = (dir.clone(), record.clone(), self.cfg.id_map);
            tokio::task::spawn_blocking(move || persist_checkpoint(&dir, &record, id_map, false)).await.expect("persist task")
        };
        if let Err(e) = persisted {
            let _ = std::fs::remove_dir_all(&partial);
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            return Err(e);
        }
        // The checkpoint is the sandbox from here on: free the memory.
        let pid = slot.live.lock().expect("live lock").as_ref().map(|l| l.pid);
        if let Err(e) = self.runc.delete_force(id.as_str()).await {
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            return Err(e);
        }
        slot.live.lock().expect("live lock").take();
        slot.parked.store(false, Ordering::SeqCst);
        if let Some(pid) = pid {
            self.reaper.wait_gone(pid).await;
        }
        if let Err(e) = self.disconnect_network(&record).await {
            tracing::error!(%id, %e, "could not remove a paused sandbox's egress rules");
        }
        overlay::unmount(&dir.join("bundle/rootfs"))?;
        // Last: recovery treats a mark without a container as this step left undone.
        let _ = std::fs::remove_file(dir.join(PARKED_MARK));
        make_durable_in_background(id.clone(), dir);
        tracing::debug!(%id, dumped_ms, freed_ms = started.elapsed().as_millis(), "parked sandbox's checkpoint steps");
        Ok(true)
    }

    /// After a restart: a container that was parked (frozen or not) is parked again, and its
    /// checkpoint, complete or not, is written afresh.
    pub(super) async fn recover_parked(&self, id: &SandboxId, pid: i32) -> Result<(), RuntimeError> {
        let sdir = self.sandbox_dir(id);
        let freezer = freezer_of(id);
        if !freezer.freeze(Duration::from_secs(5)).await {
            tracing::warn!(%id, "a parked sandbox's cgroup did not freeze again");
        }
        let _ = std::fs::remove_dir_all(sdir.join("checkpoint.partial"));
        let _ = std::fs::remove_dir_all(sdir.join("checkpoint"));
        self.attach(id, pid, false).await?;
        let record = self.read_record(id)?;
        if let Err(e) = self.connect_network(id, pid, &record, false, false).await {
            tracing::error!(%id, %e, "could not reconnect a parked sandbox's network");
        }
        self.slot(id).parked.store(true, Ordering::SeqCst);
        self.schedule_dump(id.clone(), self.cfg.park_for.unwrap_or(Duration::ZERO));
        tracing::warn!(%id, "a sandbox paused in memory by the previous process stays paused; its checkpoint is written again");
        Ok(())
    }
}

/// The host's MemAvailable in bytes.
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo.lines().find_map(|l| l.strip_prefix("MemAvailable:"))?.split_whitespace().next()?.parse().ok()?;
    Some(kib << 10)
}
