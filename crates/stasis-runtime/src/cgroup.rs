//! Reading a sandbox's resource usage from its cgroup, v2 or v1 (this machine is v1 + v2 hybrid).

use std::path::Path;

#[derive(Default, Debug)]
pub struct CgroupStats {
    pub cpu_usage_ns: u64,
    pub memory_used_bytes: u64,
    pub memory_cache_bytes: u64,
    pub memory_limit_bytes: u64,
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_field(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

impl CgroupStats {
    /// `rel` is the cgroup path relative to each hierarchy's root, e.g. `stasis/<id>`.
    /// Missing files read as zero: the numbers are for display and billing, never for control.
    pub fn read(rel: &str) -> Self {
        let v2 = Path::new("/sys/fs/cgroup").join(rel);
        if v2.join("memory.current").exists() {
            return CgroupStats {
                cpu_usage_ns: stat_field(&v2.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000,
                memory_used_bytes: read_u64(&v2.join("memory.current")).unwrap_or(0),
                memory_cache_bytes: stat_field(&v2.join("memory.stat"), "file").unwrap_or(0),
                memory_limit_bytes: read_u64(&v2.join("memory.max")).unwrap_or(u64::MAX),
            };
        }
        let v1 = |controller: &str| Path::new("/sys/fs/cgroup").join(controller).join(rel);
        CgroupStats {
            cpu_usage_ns: read_u64(&v1("cpuacct").join("cpuacct.usage")).unwrap_or(0),
            memory_used_bytes: read_u64(&v1("memory").join("memory.usage_in_bytes")).unwrap_or(0),
            memory_cache_bytes: stat_field(&v1("memory").join("memory.stat"), "cache").unwrap_or(0),
            memory_limit_bytes: read_u64(&v1("memory").join("memory.limit_in_bytes")).unwrap_or(u64::MAX),
        }
    }
}
