//! `stasis sandbox create`.

use super::{key_value, with_progress, CliResult, Doing};
use stasis_sdk::{ConnectionConfig, Sandbox, SandboxOptions};
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Template to start from.
    #[arg(default_value = stasis_sdk::DEFAULT_TEMPLATE)]
    template: String,
    /// Seconds until the sandbox is killed (or paused, with --auto-pause).
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// Metadata label KEY=VALUE (repeatable).
    #[arg(long, short = 'm', value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Environment variable KEY=VALUE for every process (repeatable).
    #[arg(long, short = 'e', value_parser = key_value)]
    env: Vec<(String, String)>,
    /// Pause instead of kill when the timeout ends.
    #[arg(long)]
    auto_pause: bool,
    /// Resume the paused sandbox when traffic arrives for it.
    #[arg(long)]
    auto_resume: bool,
    /// Print the sandbox as JSON instead of its id.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let mut opts = SandboxOptions::new()
        .config(config.clone())
        .template(&args.template)
        .timeout(Duration::from_secs(args.timeout))
        .auto_pause(args.auto_pause)
        .auto_resume(args.auto_resume);
    opts.metadata.extend(args.metadata);
    opts.envs.extend(args.env);
    let (sbx, took) = with_progress(&format!("creating a sandbox from {}", args.template), Sandbox::create(opts)).await;
    let sbx = sbx.doing(format!("create a sandbox from template {:?}", args.template))?;
    if args.json {
        let info = sbx.info().await.doing("read the new sandbox")?;
        println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
    } else {
        println!("{}", sbx.sandbox_id());
    }
    eprintln!("created {} from {} in {:.1}s", sbx.sandbox_id(), sbx.template_id(), took.as_secs_f64());
    Ok(0)
}
