//! Percentiles and the markdown table.

use std::time::Duration;

#[derive(Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
        v[rank.min(v.len() - 1)].as_secs_f64() * 1000.0
    }
}

pub fn markdown(rows: &[(String, Samples, Samples, Option<u64>)], runs: usize) -> String {
    let mut out = String::from(
        "| operation | Stasis p50 ms | Stasis p95 ms | runc+CRIU p50 ms | runc+CRIU p95 ms | Stasis / baseline (p50) |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for (name, ours, base, _) in rows {
        out += &format!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |\n",
            ours.pct(50.0),
            ours.pct(95.0),
            base.pct(50.0),
            base.pct(95.0),
            ours.pct(50.0) / base.pct(50.0)
        );
    }
    out += &format!("\n{runs} runs each, alternating Stasis and baseline; {} cores.\n", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0));
    out
}
