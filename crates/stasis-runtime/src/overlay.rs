//! The sandbox root: an overlay of the read-only template (lower) and a per-sandbox upper dir.
//!
//! `index=on,nfs_export=on` because CRIU can only dump inotify watches on overlayfs when the
//! overlay can encode file handles (see PLATFORM.md); any sandbox process may hold a watch.

use crate::error::IoContext;
use crate::RuntimeError;
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

/// Not `nosuid`: sudo must work inside. Its setuid bit only ever grants a mapped (unprivileged)
/// host uid, and the data dir is closed to other host users.
pub fn mount_overlay(lower: &Path, upper: &Path, work: &Path, target: &Path) -> Result<(), RuntimeError> {
    for p in [lower, upper, work, target] {
        let s = p.to_string_lossy();
        if s.contains(',') || s.contains(':') {
            return Err(RuntimeError::InvalidRequest(format!("overlay path {s:?} contains ',' or ':'")));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={},index=on,nfs_export=on",
        lower.display(),
        upper.display(),
        work.display()
    );
    // EBUSY: overlayfs refuses an upper dir still held by a lazily detached earlier mount of the
    // same sandbox, which goes away once the last process of that sandbox has exited.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match mount(Some("overlay"), target, Some("overlay"), MsFlags::MS_NODEV, Some(data.as_str())) {
            Err(Errno::EBUSY) if std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(20)),
            other => return other.map_err(std::io::Error::from).ctx(|| format!("mount overlay at {}", target.display())),
        }
    }
}

/// Unmount if mounted; a mount still busy (a straggler holding a file) is detached lazily so the
/// sandbox can always be removed.
pub fn unmount(target: &Path) -> Result<(), RuntimeError> {
    if !is_mountpoint(target)? {
        return Ok(());
    }
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::EBUSY) => {
            tracing::warn!(target = %target.display(), "overlay busy at unmount; detaching it lazily");
            umount2(target, MntFlags::MNT_DETACH)
            .map_err(std::io::Error::from)
            .ctx(|| format!("detach {}", target.display()))
        }
        Err(e) => Err(std::io::Error::from(e)).ctx(|| format!("unmount {}", target.display())),
    }
}

/// True when `path` is the mount point of some mount in our mount namespace.
pub fn is_mountpoint(path: &Path) -> Result<bool, RuntimeError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo".into())?;
    let wanted = path.to_string_lossy();
    Ok(info.lines().any(|line| line.split(' ').nth(4).is_some_and(|mp| unescape_mountinfo(mp) == wanted)))
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}
