//! OCI `config.json` for a sandbox, built with `oci-spec` from runc's defaults.

use crate::seccomp;
use crate::Limits;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType, RootBuilder,
    Spec,
};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Where envd is bind-mounted inside every sandbox, and run as its init.
pub const ENVD_PATH_IN_SANDBOX: &str = "/usr/local/bin/stasis-envd";

/// The user namespace of every sandbox: container ids 0..size map to host ids base..base+size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMap {
    pub host_base: u32,
    pub size: u32,
}

impl Default for IdMap {
    fn default() -> Self {
        IdMap { host_base: 100_000, size: 65_536 }
    }
}

/// Root inside a sandbox gets Docker's default capabilities plus a few that only act on the
/// sandbox's own namespaces (tracing its processes, reading any of its files, nice, mlock): all
/// of them are confined by the user namespace, and the seccomp profile denies the rest.
const SANDBOX_CAPABILITIES: &[Capability] = &[
    Capability::AuditWrite,
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::IpcLock,
    Capability::Kill,
    Capability::Mknod,
    Capability::NetBindService,
    Capability::NetRaw,
    Capability::Setfcap,
    Capability::Setgid,
    Capability::Setpcap,
    Capability::Setuid,
    Capability::SysChroot,
    Capability::SysNice,
    Capability::SysPtrace,
];

pub struct SpecParams<'a> {
    pub hostname: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub limits: &'a Limits,
    pub id_map: IdMap,
    pub envd_host_path: &'a Path,
    pub criu_config: &'a Path,
    pub cgroups_path: PathBuf,
    pub nofile_limit: u64,
}

pub fn build_spec(p: &SpecParams<'_>) -> Spec {
    let mut spec = Spec::default();
    spec.set_hostname(Some(p.hostname.to_owned()));
    spec.set_root(Some(RootBuilder::default().path("rootfs").readonly(false).build().expect("root")));

    let mut process = spec.process().clone().expect("runc's default spec has a process");
    process.set_args(Some(vec![ENVD_PATH_IN_SANDBOX.to_owned()]));
    let mut env = vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned()];
    env.extend(p.env.iter().map(|(k, v)| format!("{k}={v}")));
    process.set_env(Some(env));
    // sudo and other setuid programs must work inside, as on E2B.
    process.set_no_new_privileges(Some(false));
    let caps: Capabilities = SANDBOX_CAPABILITIES.iter().copied().collect();
    process.set_capabilities(Some(
        LinuxCapabilitiesBuilder::default()
            .bounding(caps.clone())
            .effective(caps.clone())
            .permitted(caps)
            .inheritable(Capabilities::new())
            .ambient(Capabilities::new())
            .build()
            .expect("capabilities"),
    ));
    // runc cannot raise limits above the host's hard limits (no CAP_SYS_RESOURCE here).
    process.set_rlimits(Some(vec![PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(p.nofile_limit.min(1024))
        .hard(p.nofile_limit)
        .build()
        .expect("rlimit")]));
    spec.set_process(Some(process));

    let mut mounts: Vec<Mount> = spec.mounts().clone().unwrap_or_default();
    mounts.push(
        MountBuilder::default()
            .destination(ENVD_PATH_IN_SANDBOX)
            .typ("bind")
            .source(p.envd_host_path)
            .options(vec!["bind".to_owned(), "ro".to_owned(), "nosuid".to_owned(), "nodev".to_owned()])
            .build()
            .expect("mount"),
    );
    spec.set_mounts(Some(mounts));

    let mut linux = spec.linux().clone().expect("runc's default spec has linux");
    let id_mapping = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(p.id_map.host_base)
        .size(p.id_map.size)
        .build()
        .expect("id mapping");
    linux.set_uid_mappings(Some(vec![id_mapping]));
    linux.set_gid_mappings(Some(vec![id_mapping]));
    let namespaces = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().expect("namespace"))
    .collect::<Vec<_>>();
    linux.set_namespaces(Some(namespaces));
    linux.set_cgroups_path(Some(p.cgroups_path.clone()));

    let period: u64 = 100_000;
    let mut resources = linux.resources().clone().unwrap_or_default();
    resources.set_memory(Some(
        LinuxMemoryBuilder::default()
            .limit((p.limits.memory_mib * 1024 * 1024) as i64)
            .build()
            .expect("memory"),
    ));
    resources.set_cpu(Some(
        LinuxCpuBuilder::default()
            .quota((period * p.limits.cpu_count as u64) as i64)
            .period(period)
            .build()
            .expect("cpu"),
    ));
    resources.set_pids(Some(LinuxPidsBuilder::default().limit(p.limits.pids as i64).build().expect("pids")));
    linux.set_resources(Some(resources));
    linux.set_seccomp(Some(seccomp::default_profile()));
    spec.set_linux(Some(linux));

    // runc hands this CRIU configuration file to CRIU on checkpoint and restore.
    let mut annotations = HashMap::new();
    annotations.insert("org.criu.config".to_owned(), p.criu_config.display().to_string());
    spec.set_annotations(Some(annotations));
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_has_user_namespace_limits_and_envd_as_init() {
        let env = BTreeMap::from([("FOO".to_owned(), "bar".to_owned())]);
        let limits = Limits { cpu_count: 2, memory_mib: 256, pids: 100 };
        let spec = build_spec(&SpecParams {
            hostname: "sandbox",
            env: &env,
            limits: &limits,
            id_map: IdMap::default(),
            envd_host_path: Path::new("/x/envd"),
            criu_config: Path::new("/x/criu.conf"),
            cgroups_path: PathBuf::from("/stasis/abc"),
            nofile_limit: 20_000,
        });
        let json = serde_json::to_value(&spec).unwrap();
        assert_eq!(json["process"]["args"][0], ENVD_PATH_IN_SANDBOX);
        assert!(json["process"]["env"].as_array().unwrap().iter().any(|e| e == "FOO=bar"));
        assert_eq!(json["linux"]["uidMappings"][0]["hostID"], 100_000);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 256 * 1024 * 1024);
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 200_000);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 100);
        let ns: Vec<&str> = json["linux"]["namespaces"].as_array().unwrap().iter().map(|n| n["type"].as_str().unwrap()).collect();
        for want in ["user", "pid", "mount", "network", "ipc", "uts", "cgroup"] {
            assert!(ns.contains(&want), "namespace {want} missing from {ns:?}");
        }
        assert_eq!(json["annotations"]["org.criu.config"], "/x/criu.conf");
    }
}
