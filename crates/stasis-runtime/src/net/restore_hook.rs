//! A CRIU action script that readies a sandbox's new network namespace before CRIU restores its
//! sockets. A connected UDP socket (a DNS lookup under way, a metrics client) is connected again
//! on restore, which needs a route; a socket bound to the sandbox's address needs that address.
//! The namespace is created by CRIU, and the link is only plumbed after the restore, so without
//! this such a sandbox could never be resumed ("Can't connect inet socket back: Network is
//! unreachable").
//!
//! CRIU runs action scripts in its own (the host's) namespaces; at `post-setup-namespaces` the
//! restored init (`CRTOOLS_INIT_PID`) already lives in the new one, so the script enters it and
//! puts lo up, the sandbox's address on lo and a default route via lo. Plumbing `eth0` afterwards
//! replaces the route and takes the address over. The script refuses to act in the host's own
//! namespace (`STASIS_HOST_NETNS`), so a CRIU that behaved otherwise fails the restore instead
//! of touching the host.

use crate::error::IoContext;
use crate::RuntimeError;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"#!/bin/sh
# Written by Stasis (crates/stasis-runtime/src/net/restore_hook.rs); CRIU action script.
[ "$CRTOOLS_SCRIPT_ACTION" = post-setup-namespaces ] || exit 0
[ -n "$STASIS_RESTORE_ADDR" ] || exit 0
ns=$(readlink "/proc/$CRTOOLS_INIT_PID/ns/net")
if [ -z "$ns" ] || [ "$ns" = "$STASIS_HOST_NETNS" ]; then
    echo "stasis restore hook: the sandbox's network namespace is not ready ($ns)" >&2
    exit 1
fi
printf 'link set lo up\naddr add %s/32 dev lo\nroute add default dev lo\n' "$STASIS_RESTORE_ADDR" |
    exec nsenter --net="/proc/$CRTOOLS_INIT_PID/ns/net" ip -batch -
"#;

/// Write the script (once per start; it is the same for every sandbox) and return its path.
pub fn install(bin_dir: &Path) -> Result<PathBuf, RuntimeError> {
    let path = bin_dir.join("criu-restore-hook");
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, SCRIPT).ctx(|| format!("write {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).ctx(|| format!("chmod {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).ctx(|| format!("rename to {}", path.display()))?;
    Ok(path)
}

/// This process's network namespace, as `readlink /proc/self/ns/net` prints it.
pub fn host_netns() -> Result<String, RuntimeError> {
    let link = std::fs::read_link("/proc/self/ns/net").ctx(|| "read /proc/self/ns/net".into())?;
    Ok(link.to_string_lossy().into_owned())
}
