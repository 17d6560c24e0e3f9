use crate::auth::ApiKeys;
use crate::metrics::Metrics;
use stasis_lifecycle::Lifecycle;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub lifecycle: Lifecycle,
    pub keys: Arc<ApiKeys>,
    /// `{port}-{id}.{domain}` requests are sandbox traffic; `api.{domain}` is the control plane.
    pub domain: Option<String>,
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(lifecycle: Lifecycle, keys: ApiKeys) -> Self {
        let domain = lifecycle.config().domain.clone();
        AppState { lifecycle, keys: Arc::new(keys), domain, metrics: Arc::new(Metrics::new()) }
    }
}
