//! The sandbox runtime: rootless OCI containers run by runc, paused and resumed with CRIU.
//!
//! Nothing here knows about HTTP, API keys, timeouts or the database: the control plane drives a
//! [`Runtime`] and keeps its own records. The runc+CRIU implementation keeps just enough on disk
//! (one directory per sandbox) to find its sandboxes again after a restart ([`Runtime::list`]).

mod cgroup;
mod error;
pub mod fake;
mod id;
mod manifest;
pub mod net;
mod netns;
mod oci;
mod overlay;
mod reaper;
mod runc;
mod runc_runtime;
mod runtime;
mod seccomp;
mod sync;
pub mod template;

pub use error::RuntimeError;
pub use id::SandboxId;
pub use manifest::{CheckpointManifest, MANIFEST_VERSION};
pub use net::policy::EgressPolicy;
pub use net::NetworkConfig;
pub use runc_runtime::{RuncRuntime, RuntimeConfig};
pub use runtime::{ExecOutput, ExecRequest, Limits, Runtime, SandboxInfo, SandboxSpec, SandboxStats, SandboxStatus};
pub use template::{TemplateRecipe, TemplateStore};
