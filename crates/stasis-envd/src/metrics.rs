//! `GET /metrics`: the sandbox's own CPU, memory and disk figures, as E2B's envd reports them.

use crate::state::AppState;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct Metrics {
    pub ts: u64,
    pub cpu_count: usize,
    pub cpu_used_pct: f64,
    pub mem_total_mib: u64,
    pub mem_used_mib: u64,
    pub mem_total: u64,
    pub mem_used: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

fn meminfo() -> (u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let total = field("MemTotal:");
    let available = field("MemAvailable:");
    let cached = field("Cached:");
    (total, total.saturating_sub(available), cached)
}

/// (busy, total) jiffies of all CPUs.
fn cpu_times() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: u64 = v.iter().sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

pub fn sample(state: &AppState) -> Metrics {
    let (mem_total, mem_used, mem_cache) = meminfo();
    let now = cpu_times();
    let mut last = state.cpu_sample.lock().unwrap_or_else(|p| p.into_inner());
    let cpu_used_pct = match (*last, now) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => ((b1 - b0) as f64 / (t1 - t0) as f64 * 10_000.0).round() / 100.0,
        _ => 0.0,
    };
    *last = now;
    let (disk_total, disk_used) = match nix::sys::statvfs::statvfs("/") {
        Ok(s) => {
            let frag = s.fragment_size();
            let total = s.blocks() * frag;
            (total, total.saturating_sub(s.blocks_free() * frag))
        }
        Err(_) => (0, 0),
    };
    Metrics {
        ts: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs(),
        cpu_count: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu_used_pct,
        mem_total_mib: mem_total >> 20,
        mem_used_mib: mem_used >> 20,
        mem_total,
        mem_used,
        mem_cache,
        disk_used,
        disk_total,
    }
}
