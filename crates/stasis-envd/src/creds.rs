//! File operations as the requesting user.
//!
//! envd runs as root, but a request made as `user` must not read or write what `user` cannot.
//! Rather than re-implementing the kernel's permission checks (mode bits, ACLs, sticky
//! directories, search permission on every path component), a file operation runs on a blocking
//! thread whose *filesystem* credentials are switched to the user's for the duration of the
//! operation: `setfsuid`/`setfsgid` and the supplementary groups. On Linux these are per-thread
//! at the syscall level; changing fsuid away from 0 also drops the filesystem capabilities
//! (`CAP_DAC_OVERRIDE`, `CAP_FOWNER`, ...), so the kernel judges the access exactly as for the
//! user. Files created this way are owned by the user, as they would be if the user made them.
//!
//! glibc's `setgroups` wrapper would change the groups of every thread of envd, so the raw
//! syscall is used instead. The credentials are restored when the closure returns or unwinds.
#![allow(unsafe_code)]

use crate::users::SandboxUser;
use nix::unistd::{setfsgid, setfsuid, Gid, Uid};

fn set_thread_groups(groups: &[libc::gid_t]) -> std::io::Result<()> {
    // SAFETY: SYS_setgroups reads `len` gids from a valid, live slice and changes only the
    // calling thread's credentials (unlike glibc's setgroups, which broadcasts to all threads).
    let rc = unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn thread_groups() -> Vec<libc::gid_t> {
    nix::unistd::getgroups().map(|g| g.into_iter().map(Gid::as_raw).collect()).unwrap_or_default()
}

struct Restore {
    groups: Vec<libc::gid_t>,
    uid: Uid,
    gid: Gid,
}

impl Drop for Restore {
    fn drop(&mut self) {
        // fsuid first: getting fsuid 0 back restores the capabilities needed for the rest.
        setfsuid(self.uid);
        setfsgid(self.gid);
        let _ = set_thread_groups(&self.groups);
        // Any change of fsuid makes the kernel mark the whole process non-dumpable, and CRIU
        // then cannot open its /proc/<pid>/ns files: every later pause would fail. envd holds
        // no secret that dumpability would expose to anyone but root, so make it dumpable again.
        let _ = nix::sys::prctl::set_dumpable(true);
    }
}

/// Run `f` with this thread's filesystem credentials set to `user`'s. Call only on a thread
/// that runs nothing else meanwhile (a `spawn_blocking` closure).
pub fn as_user<T>(user: &SandboxUser, f: impl FnOnce() -> T) -> std::io::Result<T> {
    let euid = nix::unistd::geteuid();
    if user.uid == euid.as_raw() || !euid.is_root() {
        // Already that user, or not privileged enough to switch: the kernel checks as envd.
        return Ok(f());
    }
    let _restore = Restore { groups: thread_groups(), uid: euid, gid: nix::unistd::getegid() };
    set_thread_groups(&user.groups)?;
    setfsgid(Gid::from_raw(user.gid));
    setfsuid(Uid::from_raw(user.uid));
    // setfsuid cannot report failure; a second call returns the value now in force.
    if setfsuid(Uid::from_raw(user.uid)).as_raw() != user.uid {
        return Err(std::io::Error::other("could not switch filesystem uid"));
    }
    Ok(f())
}

/// Run a file operation as `user` on the blocking pool.
pub async fn run_as<T, F>(user: &SandboxUser, f: F) -> std::io::Result<T>
where
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    let user = user.clone();
    match tokio::task::spawn_blocking(move || as_user(&user, f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e),
        Err(join) => Err(std::io::Error::other(format!("file operation panicked: {join}"))),
    }
}

/// Run a file operation that reports Connect errors as `user` on the blocking pool.
pub async fn run_as_user<T, F>(user: &SandboxUser, f: F) -> Result<T, stasis_proto::connect::ConnectError>
where
    F: FnOnce() -> Result<T, stasis_proto::connect::ConnectError> + Send + 'static,
    T: Send + 'static,
{
    run_as(user, move || Ok(f()))
        .await
        .map_err(|e| stasis_proto::connect::ConnectError::internal(format!("acting as user: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file operation as another user must leave envd dumpable, or CRIU cannot checkpoint the
    /// sandbox any more (every pause after the first file operation of a resumed sandbox failed).
    #[test]
    fn acting_as_a_user_keeps_the_process_dumpable() {
        if !nix::unistd::geteuid().is_root() {
            panic!("this test needs root (CI runs as root)");
        }
        let user = SandboxUser {
            name: "nobody-in-particular".into(),
            uid: 4242,
            gid: 4242,
            groups: vec![4242],
            home: "/".into(),
            shell: "/bin/sh".into(),
        };
        let during = std::thread::spawn(move || as_user(&user, || std::fs::metadata("/").is_ok()).unwrap()).join().unwrap();
        assert!(during);
        assert!(nix::sys::prctl::get_dumpable().unwrap(), "still dumpable after switching fsuid and back");
    }
}
