//! `stasis sandbox pause`.

use super::{with_progress, CliResult, Doing};
use stasis_sdk::{ConnectionConfig, Sandbox};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandboxes to pause.
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    for id in &args.ids {
        let (paused, took) = with_progress(&format!("pausing {id}"), Sandbox::pause_by_id(id, config)).await;
        if paused.doing(format!("pause sandbox {id}"))? {
            eprintln!("paused {id} in {:.1}s", took.as_secs_f64());
        } else {
            eprintln!("{id} is paused already");
        }
    }
    Ok(0)
}
