//! What a sandbox costs the host in memory, read from /proc and the memory cgroup (v1 here,
//! v2 where the machine has it).
//!
//! Three views, because each misses something:
//! - the sandbox's processes: sum of VmRSS (counts shared library pages once per process) and of
//!   Pss (shares them out), from the pids in its cgroup;
//! - its memory cgroup: everything charged to it, including page cache and kernel memory
//!   (page tables, slab for its dentries and sockets) that no process RSS shows;
//! - the host: MemAvailable and the server's own RSS, before and after adding many sandboxes,
//!   which also counts what is charged to no cgroup (runc has no per-sandbox host process,
//!   but the server keeps state per sandbox).

use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, Default)]
pub struct SandboxMemory {
    pub rss: u64,
    pub pss: u64,
    /// All memory charged to the cgroup.
    pub cgroup: u64,
    /// Page cache charged to the cgroup.
    pub cgroup_cache: u64,
    /// Kernel memory charged to the cgroup (v1 `memory.kmem.usage_in_bytes`, v2 `kernel`).
    pub cgroup_kernel: u64,
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line of a stat-style file (`memory.stat`), or `Key:   value kB` of /proc files.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn cgroup_dir(rel: &str) -> (PathBuf, bool) {
    let v2 = Path::new("/sys/fs/cgroup").join(rel);
    if v2.join("memory.current").exists() {
        (v2, true)
    } else {
        (Path::new("/sys/fs/cgroup/memory").join(rel), false)
    }
}

/// Pids of every process in the cgroup `rel` (e.g. `stasis/<id>`) and its children.
pub fn cgroup_pids(rel: &str) -> Vec<i32> {
    let (dir, _) = cgroup_dir(rel);
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_name() == "cgroup.procs")
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
        .collect()
}

/// RSS and PSS of one process, bytes.
pub fn process_rss_pss(pid: i32) -> (u64, u64) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|t| field(&t, "VmRSS")).unwrap_or(0);
    let pss = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok().and_then(|t| field(&t, "Pss")).unwrap_or(0);
    (rss << 10, pss << 10)
}

pub fn sandbox(rel: &str) -> SandboxMemory {
    let pids = cgroup_pids(rel);
    let (rss, pss) = pids.iter().map(|&p| process_rss_pss(p)).fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let (dir, v2) = cgroup_dir(rel);
    let stat = std::fs::read_to_string(dir.join("memory.stat")).unwrap_or_default();
    let (cgroup, cache, kernel) = if v2 {
        (read_u64(&dir.join("memory.current")), field(&stat, "file"), field(&stat, "kernel"))
    } else {
        (read_u64(&dir.join("memory.usage_in_bytes")), field(&stat, "total_cache"), read_u64(&dir.join("memory.kmem.usage_in_bytes")))
    };
    SandboxMemory {
        rss,
        pss,
        cgroup: cgroup.unwrap_or(0),
        cgroup_cache: cache.unwrap_or(0),
        cgroup_kernel: kernel.unwrap_or(0),
    }
}

/// The host's MemAvailable, bytes.
pub fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| field(&t, "MemAvailable")).unwrap_or(0) << 10
}

/// The host-wide numbers of /proc/meminfo that a sandbox can grow, bytes.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostMemory {
    /// What `free` calls used: MemTotal − MemFree − Buffers − Cached − SReclaimable.
    pub used: u64,
    pub slab_unreclaimable: u64,
    pub kernel_stack: u64,
    pub page_tables: u64,
}

pub fn host() -> HostMemory {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let f = |k: &str| field(&text, k).unwrap_or(0) << 10;
    HostMemory {
        used: f("MemTotal").saturating_sub(f("MemFree") + f("Buffers") + f("Cached") + f("SReclaimable")),
        slab_unreclaimable: f("SUnreclaim"),
        kernel_stack: f("KernelStack"),
        page_tables: f("PageTables"),
    }
}

/// What the kernel counts against `uid`'s key quota (/proc/key-users): keys and their bytes,
/// each with its limit. Every sandbox's init makes a session keyring, and all sandboxes share
/// one mapped host uid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyQuota {
    pub keys: u64,
    pub max_keys: u64,
    pub bytes: u64,
    pub max_bytes: u64,
}

pub fn keys(uid: u32) -> Option<KeyQuota> {
    let text = std::fs::read_to_string("/proc/key-users").ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with(&format!("{uid}:")))?;
    let mut words = line.split_whitespace().skip(3);
    let pair = |w: Option<&str>| -> Option<(u64, u64)> {
        let (a, b) = w?.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let (keys, max_keys) = pair(words.next())?;
    let (bytes, max_bytes) = pair(words.next())?;
    Some(KeyQuota { keys, max_keys, bytes, max_bytes })
}

/// The 1-, 5- and 15-minute load averages, as /proc prints them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_proc_and_cgroup_files() {
        let status = "Name:\tpython3\nVmRSS:\t   65536 kB\nVmRSSx:\t1 kB\n";
        assert_eq!(field(status, "VmRSS"), Some(65536));
        assert_eq!(field("cache 10\ntotal_cache 20\n", "cache"), Some(10));
        assert_eq!(field("cache 10\ntotal_cache 20\n", "total_cache"), Some(20));
        assert_eq!(field("Pss_Anon: 3 kB\nPss: 7 kB\n", "Pss"), Some(7));
    }

    #[test]
    fn key_users() {
        // A uid appears once it owns a key; where this one does, the numbers must parse.
        if let Some(q) = keys(nix::unistd::getuid().as_raw()) {
            assert!(q.max_keys >= q.keys && q.max_bytes >= q.bytes, "{q:?}");
        }
        assert_eq!(keys(u32::MAX - 7), None);
    }

    #[test]
    fn this_process_has_memory() {
        let (rss, pss) = process_rss_pss(std::process::id() as i32);
        assert!(rss > 0 && pss > 0);
    }
}
