//! Reading a sandbox's resource usage from its cgroup, v2 or v1 (this machine is v1 + v2 hybrid).

use std::path::{Path, PathBuf};

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

/// The freezer of a sandbox's cgroup (`rel` as for [`CgroupStats::read`]). CRIU freezes the
/// cgroup itself before a dump, but polls it in 100 ms steps: frozen beforehand, a dump of an
/// idle sandbox is ~75 ms shorter (measured by `stasis-bench api`).
pub enum Freezer {
    /// `freezer.state` (FROZEN/THAWED).
    V1(PathBuf),
    /// The cgroup's directory: `cgroup.freeze` (1/0) and `cgroup.events`.
    V2(PathBuf),
    /// No freezer found: freezing fails, thawing does nothing.
    Missing,
}

impl Freezer {
    pub fn of(rel: &str) -> Freezer {
        let v1 = Path::new("/sys/fs/cgroup/freezer").join(rel).join("freezer.state");
        let v2 = Path::new("/sys/fs/cgroup").join(rel);
        if v1.exists() {
            Freezer::V1(v1)
        } else if v2.join("cgroup.freeze").exists() {
            Freezer::V2(v2)
        } else {
            Freezer::Missing
        }
    }

    /// Ask for the state; false if the request could not be written.
    fn request(&self, frozen: bool) -> bool {
        match self {
            Freezer::V1(state) => std::fs::write(state, if frozen { "FROZEN" } else { "THAWED" }).is_ok(),
            Freezer::V2(dir) => std::fs::write(dir.join("cgroup.freeze"), if frozen { "1" } else { "0" }).is_ok(),
            Freezer::Missing => false,
        }
    }

    fn is_frozen(&self) -> bool {
        match self {
            Freezer::V1(state) => std::fs::read_to_string(state).is_ok_and(|t| t.trim() == "FROZEN"),
            Freezer::V2(dir) => stat_field(&dir.join("cgroup.events"), "frozen") == Some(1),
            Freezer::Missing => false,
        }
    }

    /// Freeze and wait (polling every ms) up to `within`; false if it did not settle.
    pub async fn freeze(&self, within: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + within;
        if !self.request(true) {
            return false;
        }
        while !self.is_frozen() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        true
    }

    pub fn thaw(&self) {
        let _ = self.request(false);
    }
}
