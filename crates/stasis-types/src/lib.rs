//! Types shared by the control plane's layers: the sandbox state machine and E2B's REST models.

pub mod state;
pub mod wire;

pub use state::{can_transition, SandboxState};
