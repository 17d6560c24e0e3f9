//! Records to E2B's wire shapes.

use stasis_store::{OnTimeout, SandboxRecord};
use stasis_types::wire::{Lifecycle, ListedSandbox, Sandbox, SandboxDetail};

/// E2B's constant client id; the 1.x SDKs address a sandbox as `{sandboxID}-{clientID}`.
pub const CLIENT_ID: &str = "6532622b";

/// The sandbox id in a path, accepting the 1.x SDKs' `{sandboxID}-{clientID}` form too.
pub fn sandbox_id_from_path(raw: &str) -> &str {
    raw.split_once('-').map_or(raw, |(id, _)| id)
}

/// Sandboxes created without `secure` (legacy API) have no envd token.
fn token(rec: &SandboxRecord) -> Option<String> {
    Some(rec.envd_access_token.clone()).filter(|t| !t.is_empty())
}

pub fn sandbox(rec: &SandboxRecord, domain: Option<&str>) -> Sandbox {
    Sandbox {
        template_id: rec.template.clone(),
        sandbox_id: rec.id.clone(),
        client_id: CLIENT_ID.into(),
        envd_version: rec.envd_version.clone(),
        alias: rec.alias.clone().or_else(|| Some(rec.template.clone())),
        envd_access_token: token(rec),
        traffic_access_token: None,
        domain: domain.map(str::to_owned),
    }
}

pub fn detail(rec: &SandboxRecord, domain: Option<&str>) -> SandboxDetail {
    SandboxDetail {
        template_id: rec.template.clone(),
        sandbox_id: rec.id.clone(),
        client_id: CLIENT_ID.into(),
        started_at: rec.started_at,
        end_at: rec.end_at,
        envd_version: rec.envd_version.clone(),
        cpu_count: rec.cpu_count,
        memory_mb: rec.memory_mb,
        disk_size_mb: rec.disk_size_mb,
        state: rec.state.public(),
        alias: rec.alias.clone().or_else(|| Some(rec.template.clone())),
        envd_access_token: token(rec),
        allow_internet_access: rec.allow_internet_access,
        domain: domain.map(str::to_owned),
        metadata: rec.metadata.clone(),
        network: rec.network.clone(),
        lifecycle: Lifecycle {
            auto_resume: rec.auto_resume,
            on_timeout: match rec.on_timeout {
                OnTimeout::Kill => "kill".into(),
                OnTimeout::Pause => "pause".into(),
            },
        },
    }
}

pub fn listed(rec: &SandboxRecord) -> ListedSandbox {
    ListedSandbox {
        template_id: rec.template.clone(),
        sandbox_id: rec.id.clone(),
        client_id: CLIENT_ID.into(),
        started_at: rec.started_at,
        end_at: rec.end_at,
        cpu_count: rec.cpu_count,
        memory_mb: rec.memory_mb,
        disk_size_mb: rec.disk_size_mb,
        state: rec.state.public(),
        envd_version: rec.envd_version.clone(),
        alias: rec.alias.clone().or_else(|| Some(rec.template.clone())),
        metadata: rec.metadata.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_sdk_generations_name_the_same_sandbox() {
        assert_eq!(sandbox_id_from_path("abc123"), "abc123");
        assert_eq!(sandbox_id_from_path("abc123-6532622b"), "abc123");
    }
}
