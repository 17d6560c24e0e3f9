//! `stasis sandbox kill`.

use super::{CliResult, Doing};
use stasis_sdk::{ConnectionConfig, Error, Sandbox};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandboxes to kill.
    #[arg(required = true)]
    ids: Vec<String>,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    for id in &args.ids {
        if !Sandbox::kill_by_id(id, config).await.doing(format!("kill sandbox {id}"))? {
            return Err(Error::NotFound { message: format!("no sandbox {id}") }).doing(format!("kill sandbox {id}"));
        }
        eprintln!("killed {id}");
    }
    Ok(0)
}
