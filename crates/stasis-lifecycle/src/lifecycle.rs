//! The `Lifecycle` handle: shared state of all operations.

use crate::{Clock, Connections, Guest, LifecycleConfig, LifecycleError};
use chrono::{DateTime, Utc};
use stasis_runtime::{Runtime, SandboxId};
use stasis_store::{SandboxRecord, Store};
use stasis_types::SandboxState;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Lifecycle {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) guest: Arc<dyn Guest>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) conns: Arc<Connections>,
    pub(crate) cfg: Arc<LifecycleConfig>,
}

/// Where proxied traffic for a sandbox goes, and the token that closes it on pause.
pub struct Route {
    pub id: SandboxId,
    pub closed: CancellationToken,
}

impl Lifecycle {
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Arc<dyn Runtime>,
        guest: Arc<dyn Guest>,
        clock: Arc<dyn Clock>,
        cfg: LifecycleConfig,
    ) -> Self {
        Lifecycle { store, runtime, guest, clock, conns: Arc::new(Connections::default()), cfg: Arc::new(cfg) }
    }

    pub fn config(&self) -> &LifecycleConfig {
        &self.cfg
    }

    pub fn runtime(&self) -> &Arc<dyn Runtime> {
        &self.runtime
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The record of `id` if `owner` may see it (`None`: the server itself).
    pub(crate) async fn record(&self, owner: Option<&str>, id: &str) -> Result<SandboxRecord, LifecycleError> {
        let rec = self.store.get(id).await?.ok_or_else(|| LifecycleError::NotFound(id.to_owned()))?;
        match owner {
            Some(o) if o != rec.owner => Err(LifecycleError::NotFound(id.to_owned())),
            _ => Ok(rec),
        }
    }

    /// Validate a timeout in seconds; `None` is the default.
    pub(crate) fn timeout(&self, seconds: Option<u64>) -> Result<chrono::Duration, LifecycleError> {
        let d = match seconds {
            None => self.cfg.default_timeout,
            Some(s) => Duration::from_secs(s),
        };
        if d.is_zero() || d > self.cfg.max_timeout {
            return Err(LifecycleError::InvalidInput(format!(
                "timeout must be between 1 and {} seconds",
                self.cfg.max_timeout.as_secs()
            )));
        }
        Ok(chrono::Duration::from_std(d).expect("bounded duration"))
    }

    /// Wait until `id` is in no transitional state, for at most `limit`.
    pub(crate) async fn settled(&self, owner: Option<&str>, id: &str, limit: Duration) -> Result<SandboxRecord, LifecycleError> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let rec = self.record(owner, id).await?;
            if !rec.state.is_transitional() || tokio::time::Instant::now() >= deadline {
                return Ok(rec);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Where traffic for `id` goes. With `wake`, a paused sandbox that asked for auto-resume is
    /// resumed; without it (a probe of whether it runs), it stays as it is.
    pub async fn route(&self, id: &str, wake: bool) -> Result<Route, LifecycleError> {
        let mut rec = self.record(None, id).await?;
        // Wait out a resume, and a pause of a sandbox that will be resumed right after it.
        if rec.state == SandboxState::Resuming || (rec.state == SandboxState::Pausing && rec.auto_resume && wake) {
            rec = self.settled(None, id, Duration::from_secs(30)).await?;
        }
        match rec.state {
            SandboxState::Running => {}
            SandboxState::Paused if rec.auto_resume && wake => {
                // In its own task: a client that gives up must not leave the resume half-done.
                let (lc, owned_id) = (self.clone(), id.to_owned());
                match tokio::spawn(async move { lc.connect(None, &owned_id, None).await }).await {
                    Ok(Ok(_)) | Ok(Err(LifecycleError::Conflict(_))) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(e) => return Err(LifecycleError::Conflict(format!("auto-resume of {id} failed: {e}"))),
                }
                if self.settled(None, id, Duration::from_secs(30)).await?.state != SandboxState::Running {
                    return Err(LifecycleError::NotRunning(id.to_owned()));
                }
            }
            _ => return Err(LifecycleError::NotRunning(id.to_owned())),
        }
        let sid = SandboxId::parse(id).map_err(|_| LifecycleError::NotFound(id.to_owned()))?;
        let closed = self.conns.token(id);
        // A pause or kill that claimed the sandbox after the check above has already closed
        // the connections it knew of, not this one: look again now that it is registered.
        if self.record(None, id).await?.state != SandboxState::Running {
            return Err(LifecycleError::NotRunning(id.to_owned()));
        }
        Ok(Route { id: sid, closed })
    }
}
