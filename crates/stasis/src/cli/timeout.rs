//! `stasis sandbox timeout`.

use super::{CliResult, Doing};
use stasis_sdk::{ConnectionConfig, Sandbox};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandbox.
    id: String,
    /// Seconds it lives from now (this can shorten its life too).
    seconds: u64,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    Sandbox::set_timeout_by_id(&args.id, Duration::from_secs(args.seconds), config)
        .await
        .doing(format!("set the timeout of sandbox {}", args.id))?;
    eprintln!("{} now ends in {}s", args.id, args.seconds);
    Ok(0)
}
