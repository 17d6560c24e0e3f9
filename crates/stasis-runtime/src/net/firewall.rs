//! The host side of sandbox egress, in nftables: one table per runtime (`inet stasis_<tag>`),
//! rebuilt whole when the runtime starts, with NAT to the outside, no way into the host or into
//! other sandboxes, and one chain of allow/deny rules per sandbox, picked by the host end's
//! name through a verdict map.
//!
//! The `nft` tool rather than a netlink crate: it applies a whole script atomically (a failed
//! update changes nothing), it is the interface nftables documents and keeps stable, and what it
//! loads can be read back with `nft list table`.

use super::policy::ResolvedPolicy;
use crate::RuntimeError;
use ipnet::Ipv4Net;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use tokio::sync::Mutex;

/// Destinations no sandbox may reach, whatever its policy: "this" network, loopback, link-local
/// (cloud metadata services live there), multicast and reserved space.
const ALWAYS_BLOCKED: &[&str] = &["0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/3"];

/// Refused egress fails at once (connect() gets "no route to host") instead of timing out.
const REJECT: &str = "reject with icmpx type admin-prohibited";

pub struct Firewall {
    table: String,
    /// Host ends of this runtime's links start with it (`s<tag>-`).
    if_prefix: String,
    range: Ipv4Net,
    dns: Vec<Ipv4Addr>,
    /// Sandboxes with rules in place: slot index → host end. Also serialises `nft` runs.
    entries: Mutex<BTreeMap<u32, String>>,
}

async fn nft(script: &str) -> Result<(), RuntimeError> {
    super::script::run(&["nft", "-f", "-"], script, "firewall update (nft)", "nftables").await
}

fn set_of(nets: &[Ipv4Net]) -> String {
    let merged = Ipv4Net::aggregate(&nets.to_vec());
    let items: Vec<String> = merged.iter().map(ToString::to_string).collect();
    format!("{{ {} }}", items.join(", "))
}

impl Firewall {
    pub fn new(tag: &str, range: Ipv4Net, dns: Vec<Ipv4Addr>) -> Firewall {
        Firewall {
            table: format!("stasis_{tag}"),
            if_prefix: format!("s{tag}-"),
            range,
            dns,
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn host_if(&self, index: u32) -> String {
        format!("{}{index}", self.if_prefix)
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// (Re)create the runtime's table with no sandbox in it.
    pub async fn reset(&self) -> Result<(), RuntimeError> {
        let mut entries = self.entries.lock().await;
        let (t, p) = (&self.table, &self.if_prefix);
        let blocked: Vec<Ipv4Net> =
            ALWAYS_BLOCKED.iter().map(|s| s.parse().expect("valid net")).chain(std::iter::once(self.range)).collect();
        let script = format!(
            "add table inet {t}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
               map egress {{ type ifname : verdict; }}\n\
               chain forward {{\n\
                 type filter hook forward priority filter; policy accept;\n\
                 iifname \"{p}*\" meta nfproto ipv6 {REJECT}\n\
                 iifname \"{p}*\" ip daddr {blocked} {REJECT}\n\
                 iifname \"{p}*\" iifname vmap @egress\n\
                 iifname \"{p}*\" {REJECT}\n\
                 oifname \"{p}*\" ct state established,related accept\n\
                 oifname \"{p}*\" drop\n\
               }}\n\
               chain input {{\n\
                 type filter hook input priority filter; policy accept;\n\
                 iifname \"{p}*\" {REJECT}\n\
               }}\n\
               chain postrouting {{\n\
                 type nat hook postrouting priority srcnat; policy accept;\n\
                 iifname \"{p}*\" oifname != \"{p}*\" masquerade\n\
               }}\n\
             }}\n",
            blocked = set_of(&blocked),
        );
        nft(&script).await?;
        entries.clear();
        Ok(())
    }

    fn map_script(&self, entries: &BTreeMap<u32, String>) -> String {
        let mut s = format!("flush map inet {} egress\n", self.table);
        if !entries.is_empty() {
            let items: Vec<String> = entries.iter().map(|(i, name)| format!("\"{name}\" : jump sb{i}")).collect();
            let _ = writeln!(s, "add element inet {} egress {{ {} }}", self.table, items.join(", "));
        }
        s
    }

    /// Put (or replace) the rules of the sandbox in slot `index`.
    pub async fn set(&self, index: u32, policy: &ResolvedPolicy) -> Result<(), RuntimeError> {
        let mut entries = self.entries.lock().await;
        let (t, c) = (&self.table, format!("sb{index}"));
        let mut s = format!("add chain inet {t} {c}\nflush chain inet {t} {c}\n");
        if !policy.allow.is_empty() {
            let _ = writeln!(s, "add rule inet {t} {c} ip daddr {} accept", set_of(&policy.allow));
            if !policy.deny.is_empty() && !self.dns.is_empty() {
                // Names in allowOut must resolve even when everything else is denied.
                let dns: Vec<Ipv4Net> = self.dns.iter().map(|a| Ipv4Net::from(*a)).collect();
                let _ = writeln!(s, "add rule inet {t} {c} ip daddr {} meta l4proto {{ udp, tcp }} th dport 53 accept", set_of(&dns));
            }
        }
        if !policy.deny.is_empty() {
            let _ = writeln!(s, "add rule inet {t} {c} ip daddr {} {REJECT}", set_of(&policy.deny));
        }
        let _ = writeln!(s, "add rule inet {t} {c} accept");
        let mut next = entries.clone();
        next.insert(index, self.host_if(index));
        s.push_str(&self.map_script(&next));
        nft(&s).await?;
        *entries = next;
        Ok(())
    }

    /// Remove the rules of the sandbox in slot `index` (none is fine).
    pub async fn remove(&self, index: u32) -> Result<(), RuntimeError> {
        let mut entries = self.entries.lock().await;
        let mut next = entries.clone();
        next.remove(&index);
        let mut s = self.map_script(&next);
        let _ = write!(s, "add chain inet {t} sb{index}\ndelete chain inet {t} sb{index}\n", t = self.table);
        nft(&s).await?;
        *entries = next;
        Ok(())
    }
}
