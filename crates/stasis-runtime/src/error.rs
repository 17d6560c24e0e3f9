//! Errors of runtime operations. Each variant says what the caller can do about it.

use crate::SandboxId;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("sandbox {0} not found")]
    NotFound(SandboxId),
    #[error("sandbox {0} already exists")]
    AlreadyExists(SandboxId),
    #[error("sandbox id {0:?} is not valid: {1}")]
    InvalidId(String, &'static str),
    #[error("sandbox {0} is already paused")]
    AlreadyPaused(SandboxId),
    #[error("sandbox {0} is not paused")]
    NotPaused(SandboxId),
    #[error("sandbox {0} is not running")]
    NotRunning(SandboxId),
    #[error("sandbox {0} is busy with another operation")]
    Busy(SandboxId),
    #[error("template {0:?} does not exist (known: {1})")]
    UnknownTemplate(String, String),
    #[error("template {0:?} is not built yet: run `stasis template build {0}`")]
    TemplateNotBuilt(String),
    #[error("sandbox {0} is running but port {1} is not open")]
    PortNotOpen(SandboxId, u16),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("checkpoint of sandbox {id} failed (the sandbox keeps running): {detail}")]
    CheckpointFailed { id: SandboxId, detail: String },
    #[error("restore of sandbox {id} failed (the sandbox stays paused): {detail}")]
    RestoreFailed { id: SandboxId, detail: String },
    #[error("checkpoint manifest {path} is unusable: {detail}")]
    BadManifest { path: PathBuf, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io { context: context.into(), source }
    }
}

/// Attach a context string to I/O errors, the way `anyhow::Context` would, without `anyhow`.
pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, RuntimeError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T, RuntimeError> {
        self.map_err(|e| RuntimeError::io(context(), e))
    }
}
