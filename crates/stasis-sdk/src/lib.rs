//! Rust SDK for Stasis and other E2B-compatible sandbox servers.
//!
//! A [`Sandbox`] is an isolated Linux machine you start, run commands and code in, read and
//! write files of, and **pause and resume with its whole memory**: running processes, loaded
//! variables, open files and listening sockets come back as they were.
//!
//! ```no_run
//! use stasis_sdk::{ConnectOptions, Sandbox, SandboxOptions};
//!
//! #[tokio::main]
//! async fn main() -> stasis_sdk::Result<()> {
//!     // E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL are read from the environment.
//!     let sbx = Sandbox::create(SandboxOptions::new().metadata("user", "ada")).await?;
//!     sbx.files().write("/home/user/state.txt", "hello").await?;
//!     let hi = sbx.commands().run("echo hi").await?;
//!     assert_eq!(hi.stdout, "hi\n");
//!
//!     assert!(sbx.pause().await?);                        // snapshot written, nothing runs
//!     let sbx = Sandbox::resume(sbx.sandbox_id(), ConnectOptions::new()).await?;
//!     assert_eq!(sbx.files().read_to_string("/home/user/state.txt").await?, "hello");
//!     sbx.kill().await?;
//!     Ok(())
//! }
//! ```
//!
//! # Configuration
//! [`ConnectionConfig::from_env`] reads `E2B_API_KEY`, `E2B_API_URL`, `E2B_SANDBOX_URL` and
//! `E2B_DOMAIN`, as E2B's JS and Python SDKs do, so one `.env` serves all three. Every options
//! struct carries a `config` that defaults to it.
//!
//! # Errors
//! Every call returns [`Result`] with the one [`Error`] enum: [`Error::NotFound`] for a
//! sandbox that was killed or never existed, [`Error::Conflict`] for one in the wrong state,
//! [`Error::CommandExit`] for a command that failed, and so on. Where E2B's SDKs answer a
//! boolean instead of failing (`pause` of a paused sandbox, `kill` of a missing one), so does
//! this SDK.
//!
//! # What is inside
//! - [`Sandbox`]: create, connect / resume, pause, kill, timeouts, info, metrics, [`Sandbox::list`].
//! - [`Commands`]: run, background processes with a [`CommandHandle`], stdin, kill, list,
//!   connect to a pid; [`Pty`] for interactive shells.
//! - [`Files`]: read, write, list, stat, remove, rename, make directories, watch.
//! - [`Interpreter`]: `run_code` in stateful kernels (templates with the code interpreter).
//!
//! envd's wire messages come from `stasis-proto` and the REST models from `stasis-types`,
//! the same crates the server is built from.

mod code;
mod commands;
mod config;
mod error;
mod files;
mod sandbox;
mod transport;

pub use code::{Context, Execution, ExecutionError, ExecutionResult, Interpreter, Logs, RunCodeOptions, DEFAULT_EXECUTION_TIMEOUT, INTERPRETER_PORT};
pub use commands::{
    CommandEvent, CommandHandle, CommandOptions, CommandResult, Commands, OutputCallback, ProcessInfo, Pty, PtyOptions, PtySize,
    DEFAULT_COMMAND_TIMEOUT,
};
pub use config::{ConnectionConfig, DEFAULT_API_URL, DEFAULT_REQUEST_TIMEOUT};
pub use error::{Error, Result};
pub use files::{EntryInfo, EventType, FileType, Files, FilesystemEvent, WatchHandle, WriteInfo};
pub use sandbox::{
    usage, ConnectOptions, ListOptions, NetworkRules, Sandbox, SandboxInfo, SandboxOptions, SandboxPaginator, SandboxQuery, SandboxState,
    DEFAULT_SANDBOX_TIMEOUT, DEFAULT_TEMPLATE,
};
pub use stasis_types::wire::{SandboxMetric, SandboxUsage, UsageReport};
