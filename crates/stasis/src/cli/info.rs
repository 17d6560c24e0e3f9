//! `stasis sandbox info`.

use super::{human_duration, CliResult, Doing};
use stasis_sdk::{ConnectionConfig, Sandbox, SandboxState};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandbox.
    id: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let info = Sandbox::info_by_id(&args.id, config).await.doing(format!("look up sandbox {}", args.id))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
        return Ok(0);
    }
    let now = chrono::Utc::now();
    let state = match info.state {
        SandboxState::Running => "running",
        SandboxState::Paused => "paused",
    };
    println!("id:        {}", info.sandbox_id);
    println!("template:  {}", info.template_id);
    println!("state:     {state}");
    println!("started:   {} ({} ago)", info.started_at.format("%Y-%m-%d %H:%M:%S UTC"), human_duration((now - info.started_at).num_seconds()));
    match info.state {
        SandboxState::Running => {
            println!("ends:      {} (in {})", info.end_at.format("%Y-%m-%d %H:%M:%S UTC"), human_duration((info.end_at - now).num_seconds().max(0)))
        }
        SandboxState::Paused => println!("ends:      - (paused: no timeout runs until it is resumed)"),
    }
    println!("cpu:       {}", info.cpu_count);
    println!("memory:    {} MiB", info.memory_mb);
    println!("disk:      {} MiB", info.disk_size_mb);
    println!("envd:      {}", info.envd_version);
    for (k, v) in &info.metadata {
        println!("metadata:  {k}={v}");
    }
    Ok(0)
}
