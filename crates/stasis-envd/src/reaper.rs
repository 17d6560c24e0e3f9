//! The one reaper: every child of envd (and every orphan re-parented to it) is reaped here, and
//! the exit statuses of the processes envd tracks are handed to their waiters by pid.
//!
//! `tokio::process` cannot be used: its `Child::wait` would race this reaper for the status.
//! The reaper thread sleeps in `waitid(WNOWAIT)` until some child is a zombie, then reaps
//! everything under [`SPAWN_LOCK`]. Spawning holds the same lock from `fork` until the waiter is
//! registered, so a child that exits at once is never reaped before its waiter exists, and
//! std's own `waitpid` after a failed `exec` never finds its child already gone.

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::oneshot;

/// Held while a child is forked and its waiter registered, and while the reaper reaps.
pub static SPAWN_LOCK: Mutex<()> = Mutex::new(());
static WAITERS: Mutex<Option<HashMap<i32, oneshot::Sender<WaitStatus>>>> = Mutex::new(None);
static WAKE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Take the spawn lock (see module docs).
pub fn spawn_guard() -> MutexGuard<'static, ()> {
    lock(&SPAWN_LOCK)
}

/// Register interest in `pid`'s exit status. Call with the spawn guard held.
pub fn register(pid: i32, _guard: &MutexGuard<'static, ()>) -> oneshot::Receiver<WaitStatus> {
    let (tx, rx) = oneshot::channel();
    lock(&WAITERS).get_or_insert_with(HashMap::new).insert(pid, tx);
    let (flag, cv) = &WAKE;
    *lock(flag) = true;
    cv.notify_all();
    rx
}

/// Start the reaper thread.
pub fn start() -> std::io::Result<()> {
    std::thread::Builder::new().name("reaper".into()).spawn(reap_forever)?;
    Ok(())
}

fn reap_forever() {
    loop {
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::__WALL) {
            Ok(_) => reap_all(),
            Err(Errno::EINTR) => {}
            Err(Errno::ECHILD) => {
                // No children at all: sleep until a spawn (or, for orphans that `runc exec`
                // re-parents to us, a short timeout).
                let (flag, cv) = &WAKE;
                let mut woken = lock(flag);
                if !*woken {
                    woken = cv.wait_timeout(woken, Duration::from_millis(200)).map(|r| r.0).unwrap_or_else(|p| p.into_inner().0);
                }
                *woken = false;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn reap_all() {
    let _guard = spawn_guard();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
            Ok(WaitStatus::StillAlive) => break,
            Ok(status) => {
                if let Some(pid) = status.pid() {
                    let waiter = lock(&WAITERS).as_mut().and_then(|w| w.remove(&pid.as_raw()));
                    if let Some(tx) = waiter {
                        let _ = tx.send(status);
                    }
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
}
