//! Sandbox networking: each sandbox gets a veth pair into its own network namespace, an address
//! from a range Stasis owns, a default route and DNS; the host NATs it to the outside and filters
//! what it may reach (never the host, never another sandbox; the rest per its egress policy).
//!
//! A checkpoint does not carry the namespace's links: the pair is deleted before a pause (the
//! host end is released while paused) and made again, with the same addresses, after a resume.

mod firewall;
mod lease;
mod link;
pub mod policy;
pub mod restore_hook;
mod script;

use crate::error::IoContext;
use crate::RuntimeError;
use firewall::Firewall;
use ipnet::Ipv4Net;
use lease::Leases;
pub use lease::Slot;
use policy::EgressPolicy;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkConfig {
    /// Sandbox addresses come from here, a /30 per sandbox. Must not overlap the host's networks.
    pub range: Ipv4Net,
    /// Name servers written to each new sandbox's /etc/resolv.conf.
    pub dns: Vec<Ipv4Addr>,
    /// Where address leases live (shared by every Stasis process on the host).
    pub lease_dir: PathBuf,
}

impl Default for NetworkConfig {
    /// 10.234.0.0/16 (16,384 sandboxes) and the host's own name servers.
    fn default() -> Self {
        NetworkConfig { range: "10.234.0.0/16".parse().expect("valid range"), dns: host_name_servers(), lease_dir: "/run/stasis/net".into() }
    }
}

/// The IPv4 name servers of the host's /etc/resolv.conf that a sandbox can reach (loopback ones,
/// such as a local stub resolver, are not reachable from a sandbox's namespace).
pub fn host_name_servers() -> Vec<Ipv4Addr> {
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<Ipv4Addr>().ok())
        .filter(|a| !a.is_loopback() && !a.is_unspecified())
        .collect()
}

pub struct Network {
    cfg: NetworkConfig,
    leases: Leases,
    firewall: Firewall,
    mtu: u32,
}

impl Network {
    /// Take over the host side for the runtime tagged `tag`: IP forwarding on, its nftables table
    /// made afresh (sandboxes still running get their rules back through [`Network::connect`]).
    pub async fn open(cfg: NetworkConfig, tag: &str) -> Result<Network, RuntimeError> {
        if cfg.range.prefix_len() > 29 {
            return Err(RuntimeError::InvalidRequest(format!("sandbox network {} is too small (at most /29)", cfg.range)));
        }
        let forward = Path::new("/proc/sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(forward).map(|s| s.trim() != "1").unwrap_or(true) {
            std::fs::write(forward, "1\n").ctx(|| "turn on IPv4 forwarding (sandboxes reach the outside through the host)".into())?;
        }
        let leases = Leases::open(&cfg.lease_dir, cfg.range)?;
        let firewall = Firewall::new(tag, cfg.range, cfg.dns.clone());
        firewall.reset().await?;
        Ok(Network { leases, firewall, mtu: link::uplink_mtu(), cfg })
    }

    pub fn config(&self) -> &NetworkConfig {
        &self.cfg
    }

    /// The runtime's nftables table (`inet <name>`).
    pub fn table(&self) -> &str {
        self.firewall.table()
    }

    /// The host end of slot `index`'s link.
    pub fn host_if(&self, index: u32) -> String {
        self.firewall.host_if(index)
    }

    pub fn slot(&self, index: u32) -> Slot {
        lease::slot(self.cfg.range, index)
    }

    /// A slot for the sandbox whose directory is `owner`.
    pub fn acquire(&self, owner: &Path) -> Result<Slot, RuntimeError> {
        self.leases.acquire(owner)
    }

    /// Keep `index` for `owner` if it can (a paused sandbox after the host rebooted); else false.
    pub fn reclaim(&self, index: u32, owner: &Path) -> Result<bool, RuntimeError> {
        self.leases.reclaim(index, owner)
    }

    pub fn release(&self, index: u32, owner: &Path) {
        self.leases.release(index, owner)
    }

    /// /etc/resolv.conf for a new sandbox.
    pub fn resolv_conf(&self) -> String {
        self.cfg.dns.iter().map(|a| format!("nameserver {a}\n")).collect()
    }

    /// Give the running sandbox whose init is `pid` its link in slot `index`, with `policy`.
    /// `strict` (create, update): a domain that does not resolve fails the call instead of being
    /// skipped. `restored`: right after a restore (see [`restore_hook`]).
    pub async fn connect(&self, pid: i32, index: u32, policy: &EgressPolicy, strict: bool, restored: bool) -> Result<(), RuntimeError> {
        let resolved = policy.resolve(strict).await?;
        let host_if = self.host_if(index);
        // Independent: the rules key on the link's name, and until they are in place the
        // table's catch-all rejects the link's traffic.
        let (ruled, plumbed) = tokio::join!(self.firewall.set(index, &resolved), link::plumb(pid, &host_if, self.slot(index), self.mtu, restored));
        if let Err(e) = ruled.and(plumbed) {
            let _ = self.firewall.remove(index).await;
            let _ = link::remove(&host_if).await;
            return Err(e);
        }
        Ok(())
    }

    /// Replace the rules of a connected sandbox.
    pub async fn apply(&self, index: u32, policy: &EgressPolicy) -> Result<(), RuntimeError> {
        let resolved = policy.resolve(true).await?;
        self.firewall.set(index, &resolved).await
    }

    /// Remove the link and the rules of slot `index` (the lease stays).
    pub async fn disconnect(&self, index: u32) -> Result<(), RuntimeError> {
        link::remove(&self.host_if(index)).await?;
        self.firewall.remove(index).await
    }
}
