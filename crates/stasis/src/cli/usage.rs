//! `stasis usage`.

use super::{human_duration, print_table, CliResult, Doing};
use stasis_sdk::ConnectionConfig;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the server's JSON report.
    #[arg(long)]
    json: bool,
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let report = stasis_sdk::usage(config).await.doing("read usage")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = report
        .sandboxes
        .iter()
        .map(|s| {
            vec![
                s.sandbox_id.clone(),
                s.state.clone(),
                human_duration(s.running_seconds.round() as i64),
                human_duration(s.paused_seconds.round() as i64),
                s.cpu_count.to_string(),
                format!("{} MiB", s.memory_mb),
            ]
        })
        .collect();
    print_table(&["ID", "STATE", "RUNNING", "PAUSED", "CPU", "MEMORY"], &rows);
    println!();
    println!("running time:  {} ({:.0} s)", human_duration(report.running_seconds.round() as i64), report.running_seconds);
    println!("paused time:   {} ({:.0} s, not charged)", human_duration(report.paused_seconds.round() as i64), report.paused_seconds);
    println!("cpu:           {:.1} vCPU-seconds", report.cpu_seconds);
    println!("memory:        {:.1} GiB-seconds", report.memory_gib_seconds);
    Ok(0)
}
