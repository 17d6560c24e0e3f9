use stasis_runtime::Limits;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct LifecycleConfig {
    /// Timeout when a create or connect names none (E2B: 300 s).
    pub default_timeout: Duration,
    /// Largest timeout accepted (E2B Pro: 24 h).
    pub max_timeout: Duration,
    /// Paused sandboxes are deleted this long after their creation (E2B: 30 days).
    pub retention: Duration,
    /// Size of new sandboxes.
    pub limits: Limits,
    /// Returned to SDKs as `domain` (for `getHost()` and host-based routing), when set.
    pub domain: Option<String>,
    /// Disk size reported to SDKs (`diskSizeMB`); the upper dir has no quota yet.
    pub disk_size_mb: u64,
    /// How often expired and retention-due sandboxes are looked for.
    pub sweep_interval: Duration,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            default_timeout: Duration::from_secs(300),
            max_timeout: Duration::from_secs(24 * 3600),
            retention: Duration::from_secs(30 * 24 * 3600),
            limits: Limits::default(),
            domain: None,
            disk_size_mb: 10 * 1024,
            sweep_interval: Duration::from_secs(1),
        }
    }
}
