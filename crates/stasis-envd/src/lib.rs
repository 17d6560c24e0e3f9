//! `stasis-envd`: the agent inside every sandbox, wire-compatible with E2B's envd.
//!
//! It is the sandbox's init (PID 1): it detaches its stdio from the host, reaps every orphan
//! (one reaper, [`reaper`], dispatching exit statuses by pid), and serves E2B's envd API on port
//! 49983: the `process.Process` and `filesystem.Filesystem` Connect services and the plain
//! `/files`, `/health`, `/envs`, `/init` and `/metrics` routes. All state is ordinary memory,
//! pipes, PTYs and inotify (no io_uring), so CRIU checkpoints and restores it with the sandbox.

pub mod bodyguard;
pub mod config;
pub mod cors;
pub mod creds;
pub mod fdio;
pub mod fs;
pub mod fs_rpc;
pub mod http;
pub mod init;
pub mod metrics;
pub mod process;
pub mod process_rpc;
pub mod reaper;
pub mod rpc;
pub mod spawn;
pub mod state;
pub mod users;
pub mod watch;

pub use config::Config;

use axum::serve::ListenerExt as _;
use std::sync::Arc;

/// Serve envd until the process ends.
pub async fn serve(config: Config) -> std::io::Result<()> {
    let addr = std::net::SocketAddr::new(config.addr, config.port);
    // Streams are many small writes (one per event): without TCP_NODELAY, Nagle's algorithm and
    // the client's delayed ACK add ~40 ms to every short command.
    let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tracing::info!(%addr, version = stasis_proto::ENVD_VERSION, "envd listening");
    let state = Arc::new(state::AppState::new(config));
    axum::serve(listener, http::router(state)).await
}
