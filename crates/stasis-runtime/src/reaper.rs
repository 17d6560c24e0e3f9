//! Reaping sandbox inits.
//!
//! `runc run --detach` and `runc restore --detach` exit once the container runs, which orphans
//! the container's init. As a child subreaper we inherit it (like containerd's shim) instead of
//! the host's PID 1, which may never reap it, and we reap it: explicitly when we stop a sandbox
//! (so "paused" really means no process left) and from a background sweep when a sandbox dies
//! on its own.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct Reaper {
    inits: Arc<Mutex<HashSet<i32>>>,
}

impl Reaper {
    /// Become a subreaper and start the background sweep.
    pub fn start() -> std::io::Result<Self> {
        nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)?;
        let reaper = Reaper::default();
        let weak: Weak<Mutex<HashSet<i32>>> = Arc::downgrade(&reaper.inits);
        std::thread::Builder::new().name("stasis-reaper".into()).spawn(move || {
            while let Some(inits) = weak.upgrade() {
                let pids: Vec<i32> = inits.lock().expect("reaper lock").iter().copied().collect();
                for pid in pids {
                    if try_reap(pid) {
                        inits.lock().expect("reaper lock").remove(&pid);
                    }
                }
                drop(inits);
                std::thread::sleep(Duration::from_millis(500));
            }
        })?;
        Ok(reaper)
    }

    pub fn track(&self, pid: i32) {
        self.inits.lock().expect("reaper lock").insert(pid);
    }

    /// Wait (bounded) until `pid`, an init we killed, is gone; all the processes of its pid
    /// namespace are gone before it can be reaped.
    pub async fn wait_gone(&self, pid: i32) {
        let inits = self.inits.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !try_reap(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            inits.lock().expect("reaper lock").remove(&pid);
        })
        .await;
    }
}

/// True once `pid` is reaped or is not our child and no longer running.
fn try_reap(pid: i32) -> bool {
    match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
        Ok(WaitStatus::StillAlive) => false,
        Ok(_) => true,
        Err(Errno::ECHILD) => {
            // Adopted by someone else (a sandbox recovered after a restart): it's gone when
            // /proc says so, or is a zombie holding no memory.
            match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                Err(_) => true,
                Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')),
            }
        }
        Err(_) => false,
    }
}
