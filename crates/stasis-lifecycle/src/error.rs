use stasis_runtime::RuntimeError;
use stasis_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// Unknown, killed, expired, or another owner's.
    #[error("sandbox {0} not found")]
    NotFound(String),
    /// Another operation holds the sandbox, or it is in the wrong state for this one.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidInput(String),
    /// The sandbox is not running (paused, or gone while the request was under way).
    #[error("sandbox {0} is not running")]
    NotRunning(String),
    #[error("sandbox {0} is running but port {1} is not open")]
    PortNotOpen(String, u16),
    #[error("the sandbox's agent did not answer: {0}")]
    GuestUnresponsive(String),
    #[error("{0}")]
    Runtime(RuntimeError),
    #[error("{0}")]
    Store(StoreError),
}

impl From<RuntimeError> for LifecycleError {
    fn from(e: RuntimeError) -> Self {
        match e {
            RuntimeError::UnknownTemplate(..) | RuntimeError::TemplateNotBuilt(_) | RuntimeError::InvalidRequest(_) | RuntimeError::InvalidId(..) => {
                LifecycleError::InvalidInput(e.to_string())
            }
            RuntimeError::NotFound(id) => LifecycleError::NotFound(id.to_string()),
            RuntimeError::Busy(id) => LifecycleError::Conflict(format!("sandbox {id} is busy with another operation")),
            RuntimeError::PortNotOpen(id, port) => LifecycleError::PortNotOpen(id.to_string(), port),
            RuntimeError::NotRunning(id) => LifecycleError::NotRunning(id.to_string()),
            other => LifecycleError::Runtime(other),
        }
    }
}

impl From<StoreError> for LifecycleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => LifecycleError::NotFound(id),
            StoreError::Conflict { id, actual, .. } => LifecycleError::Conflict(format!("sandbox {id} is {actual}")),
            StoreError::BadToken | StoreError::BadQuery(_) => LifecycleError::InvalidInput(e.to_string()),
            other => LifecycleError::Store(other),
        }
    }
}
