//! `stasis sandbox resume`.

use super::{with_progress, CliResult, Doing};
use stasis_sdk::{ConnectOptions, ConnectionConfig, Sandbox};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandbox to resume.
    id: String,
    /// Seconds the sandbox lives from now.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let opts = ConnectOptions::new().config(config.clone()).timeout(Duration::from_secs(args.timeout));
    let (sbx, took) = with_progress(&format!("resuming {}", args.id), Sandbox::resume(&args.id, opts)).await;
    let sbx = sbx.doing(format!("resume sandbox {}", args.id))?;
    println!("{}", sbx.sandbox_id());
    eprintln!("resumed {} in {:.1}s; it lives {}s from now", sbx.sandbox_id(), took.as_secs_f64(), args.timeout);
    Ok(0)
}
