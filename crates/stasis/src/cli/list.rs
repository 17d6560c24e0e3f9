//! `stasis sandbox list`.

use super::{human_duration, key_value, print_table, CliResult, Doing};
use stasis_sdk::{ConnectionConfig, ListOptions, Sandbox, SandboxState};
use std::collections::HashMap;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only sandboxes in this state: running or paused (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', value_parser = parse_state)]
    state: Vec<SandboxState>,
    /// Only sandboxes labelled KEY=VALUE (repeatable; all must match).
    #[arg(long, short = 'm', value_parser = key_value)]
    metadata: Vec<(String, String)>,
    /// Print JSON (an array of sandboxes) for scripts.
    #[arg(long)]
    json: bool,
}

fn parse_state(s: &str) -> Result<SandboxState, String> {
    s.parse()
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let mut opts = ListOptions::new().config(config.clone());
    opts.query.state = args.state;
    opts.query.metadata.extend(args.metadata);
    let sandboxes = Sandbox::list(opts).all().await.doing("list sandboxes")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&sandboxes).unwrap_or_default());
        return Ok(0);
    }
    // Running time excludes paused time: the server's usage report has it per sandbox.
    let running: HashMap<String, f64> = match stasis_sdk::usage(config).await {
        Ok(report) => report.sandboxes.into_iter().map(|s| (s.sandbox_id, s.running_seconds)).collect(),
        Err(_) => HashMap::new(),
    };
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = sandboxes
        .iter()
        .map(|s| {
            let state = match s.state {
                SandboxState::Running => "running",
                SandboxState::Paused => "paused",
            };
            let ends = (s.end_at - now).num_seconds();
            vec![
                s.sandbox_id.clone(),
                s.template_id.clone(),
                state.into(),
                format!("{} ago", human_duration((now - s.started_at).num_seconds())),
                // A paused sandbox runs no timeout: it stays until killed or its retention ends.
                match s.state {
                    SandboxState::Paused => "-".into(),
                    SandboxState::Running if ends >= 0 => format!("in {}", human_duration(ends)),
                    SandboxState::Running => format!("{} ago", human_duration(ends)),
                },
                s.cpu_count.to_string(),
                format!("{} MiB", s.memory_mb),
                running.get(&s.sandbox_id).map_or_else(|| "-".into(), |secs| human_duration(secs.round() as i64)),
            ]
        })
        .collect();
    print_table(&["ID", "TEMPLATE", "STATE", "STARTED", "ENDS", "CPU", "MEMORY", "RUNNING TIME"], &rows);
    Ok(0)
}
