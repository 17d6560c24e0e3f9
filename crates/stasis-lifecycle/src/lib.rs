//! Operations on sandboxes.
//!
//! A request from the API becomes one operation here. Each operation reads the sandbox's record,
//! claims it with a compare-and-set transition in the store (so one operation at a time runs per
//! sandbox; others get `Conflict`), calls the runtime, and records the outcome. Nothing here knows
//! about HTTP or API keys: callers pass the owner they authenticated.

mod clock;
mod config;
mod conns;
mod error;
mod guest;
mod lifecycle;
mod network;
mod ops;
mod reconcile;
mod sweep;
mod usage;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::LifecycleConfig;
pub use conns::Connections;
pub use error::LifecycleError;
pub use guest::{EnvdGuest, Guest, GuestError, NoopGuest};
pub use lifecycle::{Lifecycle, Route};
pub use network::egress_policy;
pub use ops::{CreateRequest, Resumed};
