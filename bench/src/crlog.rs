//! CRIU's own logs, for the profile: each line starts with `(SS.ffffff)`, the time since CRIU
//! started.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lines of a CRIU log with their timestamps, seconds.
pub fn timeline(log: &str) -> Vec<(f64, &str)> {
    log.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix('(')?;
            let (ts, msg) = rest.split_once(')')?;
            Some((ts.trim().parse().ok()?, msg.trim()))
        })
        .collect()
}

/// How long CRIU ran, by its last timestamp, ms.
pub fn total_ms(log: &str) -> Option<f64> {
    timeline(log).last().map(|(t, _)| t * 1000.0)
}

/// The widest gaps between consecutive lines: where CRIU was busy without logging.
pub fn gaps(log: &str, n: usize) -> Vec<(f64, String)> {
    let tl = timeline(log);
    let mut g: Vec<(f64, String)> = tl.windows(2).map(|w| ((w[1].0 - w[0].0) * 1000.0, format!("{} → {}", w[0].1, w[1].1))).collect();
    g.sort_by(|a, b| b.0.total_cmp(&a.0));
    g.truncate(n);
    g
}

/// Keeps hold of a log file that will be deleted soon after it is written (Stasis removes the
/// restore work dir when a resume succeeds): opens it as soon as it appears and reads it through
/// that descriptor at the end. When it appeared tells when CRIU started, from outside and
/// without slowing anyone down but the polling thread (every 0.5 ms).
pub struct Grab {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Option<(std::fs::File, Instant)>>,
}

/// A grabbed log and when its file appeared.
pub struct Grabbed {
    pub text: String,
    pub appeared: Option<Instant>,
}

impl Grabbed {
    /// How long after `t` the log appeared, ms (NaN if it never did).
    pub fn after_ms(&self, t: Instant) -> f64 {
        self.appeared.map(|a| a.saturating_duration_since(t).as_secs_f64() * 1000.0).unwrap_or(f64::NAN)
    }
}

impl Grab {
    pub fn start(path: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                if let Ok(f) = std::fs::File::open(&path) {
                    return Some((f, Instant::now()));
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            None
        });
        Grab { stop, thread }
    }

    pub fn finish(self) -> Grabbed {
        self.stop.store(true, Ordering::Relaxed);
        let mut text = String::new();
        let mut appeared = None;
        if let Ok(Some((mut f, at))) = self.thread.join() {
            let _ = f.read_to_string(&mut text);
            appeared = Some(at);
        }
        Grabbed { text, appeared }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_gaps() {
        let log = "(00.000010) Version: 4.2\n(00.050000) Dumping pages\nno stamp\n(00.250000) Dumping finished successfully\n";
        assert_eq!(timeline(log).len(), 3);
        assert_eq!(total_ms(log), Some(250.0));
        let g = gaps(log, 1);
        assert!((g[0].0 - 200.0).abs() < 1e-6 && g[0].1.starts_with("Dumping pages"));
    }
}
