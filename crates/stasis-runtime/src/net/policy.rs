//! A sandbox's egress policy, as E2B defines it: internet on or off, plus `allowOut` (CIDRs, IPs
//! or domain names; wins over everything else) and `denyOut` (CIDRs or IPs).

use crate::RuntimeError;
use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// At most this many entries in each list: every entry becomes an nftables element.
pub const MAX_ENTRIES: usize = 256;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressPolicy {
    /// `false` behaves as `denyOut: ["0.0.0.0/0"]`.
    pub internet: bool,
    #[serde(default)]
    pub allow_out: Vec<String>,
    #[serde(default)]
    pub deny_out: Vec<String>,
}

impl Default for EgressPolicy {
    /// E2B's default: the internet is reachable.
    fn default() -> Self {
        EgressPolicy { internet: true, allow_out: Vec::new(), deny_out: Vec::new() }
    }
}

/// One entry of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Net(IpNet),
    Domain(String),
}

impl Target {
    pub fn parse(entry: &str, domains_allowed: bool) -> Result<Target, RuntimeError> {
        let e = entry.trim();
        if let Ok(net) = e.parse::<IpNet>() {
            return Ok(Target::Net(net.trunc()));
        }
        if let Ok(ip) = e.parse::<IpAddr>() {
            return Ok(Target::Net(IpNet::from(ip)));
        }
        if !domains_allowed {
            return Err(RuntimeError::InvalidRequest(format!(
                "denyOut entry {entry:?} is not a CIDR block or IP address (domain names are not supported for deny rules)"
            )));
        }
        if e.starts_with("*.") {
            return Err(RuntimeError::InvalidRequest(format!(
                "allowOut entry {entry:?}: wildcard domains are not supported here (Stasis filters by address, resolved when the rules are applied); list the names themselves"
            )));
        }
        let valid_label = |l: &str| {
            !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        let name = e.trim_end_matches('.').to_ascii_lowercase();
        if name.len() > 253 || !name.contains('.') || !name.split('.').all(valid_label) {
            return Err(RuntimeError::InvalidRequest(format!(
                "allowOut entry {entry:?} is neither a CIDR block, an IP address nor a domain name"
            )));
        }
        Ok(Target::Domain(name))
    }
}

/// The policy in addresses, ready for the firewall. IPv6 entries are dropped: sandboxes have no
/// IPv6 route out at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedPolicy {
    pub allow: Vec<Ipv4Net>,
    pub deny: Vec<Ipv4Net>,
}

impl EgressPolicy {
    pub fn validate(&self) -> Result<(), RuntimeError> {
        for (list, name, domains) in [(&self.allow_out, "allowOut", true), (&self.deny_out, "denyOut", false)] {
            if list.len() > MAX_ENTRIES {
                return Err(RuntimeError::InvalidRequest(format!("{name} has {} entries; at most {MAX_ENTRIES}", list.len())));
            }
            for entry in list {
                Target::parse(entry, domains)?;
            }
        }
        Ok(())
    }

    /// Turn names into addresses with the host's resolver. `strict`: a name that does not resolve
    /// is an error (create, update); otherwise it is skipped with a warning (resume).
    pub async fn resolve(&self, strict: bool) -> Result<ResolvedPolicy, RuntimeError> {
        let mut out = ResolvedPolicy::default();
        for entry in &self.allow_out {
            match Target::parse(entry, true)? {
                Target::Net(IpNet::V4(n)) => out.allow.push(n),
                Target::Net(IpNet::V6(_)) => {}
                Target::Domain(name) => match tokio::net::lookup_host((name.as_str(), 0)).await {
                    Ok(addrs) => {
                        for a in addrs {
                            if let IpAddr::V4(v4) = a.ip() {
                                out.allow.push(Ipv4Net::from(v4));
                            }
                        }
                    }
                    Err(e) if strict => {
                        return Err(RuntimeError::InvalidRequest(format!("allowOut domain {name:?} does not resolve: {e}")));
                    }
                    Err(e) => tracing::warn!(%name, %e, "allowOut domain does not resolve; skipped"),
                },
            }
        }
        for entry in &self.deny_out {
            if let Target::Net(IpNet::V4(n)) = Target::parse(entry, false)? {
                out.deny.push(n);
            }
        }
        if !self.internet {
            out.deny = vec!["0.0.0.0/0".parse().expect("valid net")];
        }
        out.allow.sort();
        out.allow.dedup();
        out.deny.sort();
        out.deny.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_or_fail_clearly() {
        assert_eq!(Target::parse("8.8.8.8", false).unwrap(), Target::Net("8.8.8.8/32".parse().unwrap()));
        assert_eq!(Target::parse("10.1.2.3/8", false).unwrap(), Target::Net("10.0.0.0/8".parse().unwrap()));
        assert_eq!(Target::parse("PyPI.org.", true).unwrap(), Target::Domain("pypi.org".into()));
        let err = Target::parse("pypi.org", false).unwrap_err().to_string();
        assert!(err.contains("not supported for deny rules"), "{err}");
        assert!(Target::parse("*.example.com", true).unwrap_err().to_string().contains("wildcard"));
        for bad in ["", "localhost", "a..b", "-a.com", "1.2.3.4/33", "exa mple.com", "ünï.com"] {
            assert!(Target::parse(bad, true).is_err(), "{bad:?} must be refused");
        }
    }

    #[tokio::test]
    async fn internet_off_denies_everything_but_the_allow_list() {
        let p = EgressPolicy { internet: false, allow_out: vec!["1.1.1.1".into(), "2001:db8::/32".into()], deny_out: vec!["9.9.9.9".into()] };
        let r = p.resolve(true).await.unwrap();
        assert_eq!(r.allow, vec!["1.1.1.1/32".parse::<Ipv4Net>().unwrap()]);
        assert_eq!(r.deny, vec!["0.0.0.0/0".parse::<Ipv4Net>().unwrap()]);
        let too_many = EgressPolicy { deny_out: vec!["1.1.1.1".into(); MAX_ENTRIES + 1], ..Default::default() };
        assert!(too_many.validate().is_err());
    }
}
