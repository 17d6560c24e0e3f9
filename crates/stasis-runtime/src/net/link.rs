//! A sandbox's veth pair, made with iproute2: `eth0` inside the sandbox's network namespace, the
//! host end named after the runtime and the slot. The host end dies with the namespace, so a
//! dead or checkpointed sandbox leaves no link behind.
//!
//! iproute2 rather than a netlink crate: one `ip -batch` per side, the same commands an operator
//! would type to inspect it, and no extra dependency; it costs a few ms per create or resume.

use super::lease::{Slot, PREFIX_LEN};
use crate::RuntimeError;

/// Run `ip -batch -` (inside the network namespace of `pid` when given) with `script`.
async fn ip_batch(netns_pid: Option<i32>, script: &str) -> Result<(), RuntimeError> {
    let netns = netns_pid.map(|pid| format!("--net=/proc/{pid}/ns/net"));
    let argv: Vec<&str> = match &netns {
        Some(arg) => vec!["nsenter", arg, "ip", "-batch", "-"],
        None => vec!["ip", "-batch", "-"],
    };
    super::script::run(&argv, script, "network setup (ip -batch)", "iproute2").await
}

pub fn exists(host_if: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(host_if).exists()
}

/// Give the sandbox whose init is `pid` its `eth0`, its address and a default route through the
/// host end. Idempotent: a pair that exists already (a restarted server taking over a running
/// sandbox, or an interrupted attempt) is completed, not recreated, so open connections live on.
/// `restored`: the sandbox was just restored, so the restore hook's address on `lo` goes too.
pub async fn plumb(pid: i32, host_if: &str, slot: Slot, mtu: u32, restored: bool) -> Result<(), RuntimeError> {
    let created = !exists(host_if);
    let mut host = String::new();
    if created {
        host.push_str(&format!("link add {host_if} mtu {mtu} type veth peer name eth0 netns {pid}\n"));
    }
    host.push_str(&format!("addr replace {}/{PREFIX_LEN} dev {host_if}\nlink set {host_if} up\n", slot.host));
    let inside = format!(
        "addr replace {}/{PREFIX_LEN} dev eth0\n\
         link set eth0 up\n\
         route replace default via {}\n",
        slot.sandbox, slot.host
    );
    let configured = match ip_batch(None, &host).await {
        Ok(()) => ip_batch(Some(pid), &inside).await,
        Err(e) => Err(e),
    };
    if configured.is_err() && created {
        let _ = remove(host_if).await;
    }
    if configured.is_ok() && restored {
        drop_restore_address(pid, slot).await;
    }
    configured
}

/// Remove what the restore hook put on `lo` (the address now lives on `eth0`); absent is fine.
async fn drop_restore_address(pid: i32, slot: Slot) {
    let _ = ip_batch(Some(pid), &format!("addr del {}/32 dev lo\n", slot.sandbox)).await;
}

/// Delete the pair (from the host end). Absent already is fine.
pub async fn remove(host_if: &str) -> Result<(), RuntimeError> {
    if !exists(host_if) {
        return Ok(());
    }
    match ip_batch(None, &format!("link del {host_if}\n")).await {
        Err(_) if !exists(host_if) => Ok(()), // gone meanwhile, with its namespace
        other => other,
    }
}

/// The MTU of the host's default route's device, so sandboxes never fragment; 1500 if unknown.
pub fn uplink_mtu() -> u32 {
    let Ok(routes) = std::fs::read_to_string("/proc/net/route") else { return 1500 };
    routes
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && f[1] == "00000000").then(|| f[0].to_owned())
        })
        .find_map(|dev| std::fs::read_to_string(format!("/sys/class/net/{dev}/mtu")).ok()?.trim().parse().ok())
        .unwrap_or(1500)
}
