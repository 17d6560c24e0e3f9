//! E2B's network settings (`allow_internet_access` and the `network` object of a create or of
//! `PUT /sandboxes/{id}/network`) turned into the runtime's egress policy.

use crate::{Lifecycle, LifecycleError};
use serde_json::{Map, Value};
use stasis_runtime::{EgressPolicy, SandboxId};
use stasis_store::SandboxRecord;
use stasis_types::SandboxState;

/// Fields of `network` that only change who may reach the sandbox's public URLs; kept and
/// echoed back, not enforced (Stasis's proxy serves every port of a sandbox, as E2B does by default).
const KEPT: &[&str] = &["maskRequestHost"];

fn strings(net: &Map<String, Value>, key: &str) -> Result<Vec<String>, LifecycleError> {
    match net.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| LifecycleError::InvalidInput(format!("network.{key} must be a list of strings"))))
            .collect(),
        Some(_) => Err(LifecycleError::InvalidInput(format!("network.{key} must be a list of strings"))),
    }
}

/// The policy of a create: internet on unless `allow_internet_access` is false, plus the lists.
pub fn egress_policy(allow_internet_access: Option<bool>, network: Option<&Value>) -> Result<EgressPolicy, LifecycleError> {
    let empty = Map::new();
    let net = match network {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(_) => return Err(LifecycleError::InvalidInput("network must be an object".into())),
    };
    let unsupported = |key: &str, what: &str| LifecycleError::InvalidInput(format!("network.{key} is not supported by Stasis ({what})"));
    if net.get("allowPublicTraffic").is_some_and(|v| v == &Value::Bool(false)) {
        return Err(unsupported("allowPublicTraffic", "sandbox URLs cannot require a traffic token yet"));
    }
    for key in ["egressProxy", "rules", "httpsPorts", "dnsServers"] {
        match net.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) if m.is_empty() => {}
            Some(Value::Array(a)) if a.is_empty() => {}
            Some(_) => return Err(unsupported(key, "only allowOut and denyOut are enforced")),
        }
    }
    let policy = EgressPolicy {
        internet: allow_internet_access.unwrap_or(true),
        allow_out: strings(net, "allowOut")?,
        deny_out: strings(net, "denyOut")?,
    };
    policy.validate()?;
    Ok(policy)
}

impl Lifecycle {
    /// `PUT /sandboxes/{id}/network`: the body replaces the egress settings (an omitted field is
    /// cleared); fields that are not about egress are kept. Running sandboxes get the new rules
    /// at once, paused ones on resume.
    pub async fn update_network(&self, owner: &str, id: &str, body: &Value) -> Result<SandboxRecord, LifecycleError> {
        let Value::Object(update) = body else {
            return Err(LifecycleError::InvalidInput("the body must be a JSON object".into()));
        };
        let allow_internet_access = match update.get("allow_internet_access").or_else(|| update.get("allowInternetAccess")) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(LifecycleError::InvalidInput("allow_internet_access must be a boolean".into())),
        };
        let rec = self.record(Some(owner), id).await?;
        match rec.state {
            SandboxState::Running | SandboxState::Paused => {}
            other => return Err(LifecycleError::Conflict(format!("sandbox {id} is {other}; try again when it is done"))),
        }
        let mut network = Map::new();
        if let Some(Value::Object(old)) = &rec.network {
            for key in KEPT {
                if let Some(v) = old.get(*key) {
                    network.insert((*key).to_owned(), v.clone());
                }
            }
        }
        for (k, v) in update {
            if k != "allow_internet_access" && k != "allowInternetAccess" && !v.is_null() {
                network.insert(k.clone(), v.clone());
            }
        }
        let network = Value::Object(network);
        let policy = egress_policy(allow_internet_access, Some(&network))?;
        let sid = SandboxId::parse(id).map_err(|_| LifecycleError::NotFound(id.to_owned()))?;
        self.runtime.update_network(&sid, policy).await?;
        let record = self.store.set_network(id, allow_internet_access, Some(network)).await?;
        tracing::info!(%id, "network updated");
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn e2b_settings_become_a_policy_or_a_clear_error() {
        assert_eq!(egress_policy(None, None).unwrap(), EgressPolicy::default());
        let p = egress_policy(Some(false), Some(&json!({"allowOut": ["1.1.1.1", "pypi.org"], "maskRequestHost": "x"}))).unwrap();
        assert_eq!(p, EgressPolicy { internet: false, allow_out: vec!["1.1.1.1".into(), "pypi.org".into()], deny_out: vec![] });
        for (bad, says) in [
            (json!("all"), "must be an object"),
            (json!({"denyOut": "1.1.1.1"}), "list of strings"),
            (json!({"denyOut": [1]}), "list of strings"),
            (json!({"denyOut": ["pypi.org"]}), "deny rules"),
            (json!({"allowPublicTraffic": false}), "allowPublicTraffic"),
            (json!({"egressProxy": {"address": "p:1"}}), "egressProxy"),
            (json!({"rules": {"a.com": [{}]}}), "rules"),
        ] {
            let err = egress_policy(None, Some(&bad)).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
