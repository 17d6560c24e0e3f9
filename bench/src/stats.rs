//! Percentiles and the markdown tables.

use std::time::Duration;

/// Observations of one quantity, in whatever unit the caller chose.
#[derive(Default, Clone, Debug)]
pub struct Dist(Vec<f64>);

impl Dist {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn push_ms(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Nearest-rank percentile; NaN when empty.
    pub fn pct(&self, p: f64) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize - 1;
        v[rank.min(v.len() - 1)]
    }

    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NAN, f64::max)
    }
}

/// Durations, reported in milliseconds.
#[derive(Default, Clone)]
pub struct Samples(Dist);

impl Samples {
    pub fn push(&mut self, d: Duration) {
        self.0.push_ms(d);
    }

    /// Nearest-rank percentile, in milliseconds.
    pub fn pct(&self, p: f64) -> f64 {
        self.0.pct(p)
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

/// One line of the API benchmark's table: a metric of one workload, for Stasis and (where there
/// is one) the baseline.
pub struct Row {
    pub metric: String,
    pub workload: String,
    pub unit: &'static str,
    pub ours: Dist,
    pub base: Option<Dist>,
}

fn num(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// p50 / p95 / max of each side and the ratio of the p50s.
pub fn api_markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| metric | workload | unit | n | Stasis p50 | p95 | max | baseline p50 | p95 | max | Stasis / baseline (p50) |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let (b50, b95, bmax) = match &r.base {
            Some(b) => (b.pct(50.0), b.pct(95.0), b.max()),
            None => (f64::NAN, f64::NAN, f64::NAN),
        };
        let ratio = r.ours.pct(50.0) / b50;
        let ratio = if ratio.is_finite() { format!("{ratio:.2}") } else { "–".into() };
        out += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.metric,
            r.workload,
            r.unit,
            r.ours.len(),
            num(r.ours.pct(50.0)),
            num(r.ours.pct(95.0)),
            num(r.ours.max()),
            num(b50),
            num(b95),
            num(bmax),
            ratio
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let mut d = Dist::default();
        for v in 1..=20 {
            d.push(f64::from(v));
        }
        assert_eq!(d.pct(50.0), 10.0);
        assert_eq!(d.pct(95.0), 19.0);
        assert_eq!(d.max(), 20.0);
        assert!(Dist::default().pct(50.0).is_nan());
    }
}
