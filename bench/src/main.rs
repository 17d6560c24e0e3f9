//! `stasis-bench`: prints numbers, asserts nothing.
//!
//! `api`: the release server driven through its HTTP API against plain runc + CRIU, see
//! [`api`].
//!
//! `runtime`: create, pause and resume latency of sandboxes whose process holds 64 MiB, 256 MiB
//! and 1 GiB of touched memory, through the Stasis runtime and, in the same run and on the same
//! workload, through plain `runc checkpoint` / `runc restore` (the baseline). Runs alternate
//! between the two so that machine noise hits both alike.

mod api;
mod baseline;
mod crlog;
mod hostmem;
mod plot;
mod stats;
mod workload;

use anyhow::Context;
use clap::{Parser, Subcommand};
use stasis_runtime::{Limits, Runtime, RuncRuntime, RuntimeConfig, SandboxId, SandboxSpec};
use stats::Samples;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runtime latencies against plain runc+CRIU.
    Runtime {
        /// Runs per measurement.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Memory held by the workload, MiB, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [64u64, 256, 1024])]
        sizes: Vec<u64>,
        /// Data dir for the benchmark's sandboxes (templates are shared with the server's).
        #[arg(long, default_value = "/var/lib/stasis-bench")]
        data_dir: PathBuf,
        /// Also write the markdown table here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The real server through its HTTP API against plain runc+CRIU: latencies, image sizes,
    /// memory, density; writes bench/results/api.md and api.png.
    Api(Box<api::Args>),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (runs, sizes, data_dir, out) = match Cli::parse().command {
        Command::Api(args) => return api::run(*args).await,
        Command::Runtime { runs, sizes, data_dir, out } => (runs, sizes, data_dir, out),
    };
    let envd = std::env::current_exe()?.with_file_name("stasis-envd");
    let mut cfg = RuntimeConfig::with_data_dir(data_dir, envd);
    cfg.templates_dir = "/var/lib/stasis/templates".into();
    let rt = RuncRuntime::new(cfg.clone()).await.context("open the runtime")?;
    let store = rt.templates().clone();
    tokio::task::spawn_blocking(move || store.build("base", &|l| eprintln!("{l}"))).await??;
    for stale in rt.list().await? {
        rt.kill(&stale.id).await?;
    }

    let mut rows = Vec::new();
    // Create: an idle base sandbox, Stasis against `mount + runc run` of the same bundle.
    let (mut ours, mut base) = (Samples::default(), Samples::default());
    for _ in 0..runs {
        let t = Instant::now();
        let id = SandboxId::generate();
    rt.create(&id, spec(512)).await?;
        ours.push(t.elapsed());
        base.push(baseline::create(&cfg, &id).await?);
        rt.kill(&id).await?;
    }
    rows.push(("create (idle base)".to_owned(), ours, base, None));

    for &mib in &sizes {
        eprintln!("measuring {mib} MiB ...");
        let ours_id = SandboxId::generate();
    rt.create(&ours_id, spec(mib + 384)).await?;
        let base_id = SandboxId::generate();
    rt.create(&base_id, spec(mib + 384)).await?;
        for id in [&ours_id, &base_id] {
            workload::start(&rt, id, mib).await?;
        }
        let (mut pause, mut resume, mut bpause, mut bresume) = (Samples::default(), Samples::default(), Samples::default(), Samples::default());
        let mut image = 0u64;
        let mut bimage = 0u64;
        for run in 0..runs {
            let t = Instant::now();
            rt.pause(&ours_id).await?;
            pause.push(t.elapsed());
            image = dir_size(&cfg.data_dir.join("sandboxes").join(ours_id.as_str()).join("checkpoint/images"));
            let t = Instant::now();
            rt.resume(&ours_id).await?;
            resume.push(t.elapsed());
            workload::check(&rt, &ours_id).await.with_context(|| format!("stasis run {run}"))?;

            let (p, r, bytes) = baseline::pause_resume(&cfg, &base_id).await?;
            bpause.push(p);
            bresume.push(r);
            bimage = bytes;
        }
        rows.push((format!("pause, {mib} MiB (image {} MiB / {} MiB)", image >> 20, bimage >> 20), pause, bpause, Some(mib)));
        rows.push((format!("resume, {mib} MiB"), resume, bresume, Some(mib)));
        rt.kill(&ours_id).await?;
        rt.kill(&base_id).await?;
    }

    let table = stats::markdown(&rows, runs);
    println!("{table}");
    if let Some(out) = out {
        std::fs::write(&out, &table).with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

fn spec(memory_mib: u64) -> SandboxSpec {
    SandboxSpec { template: "base".into(), limits: Limits { memory_mib, ..Limits::default() }, env: Default::default(), network: Default::default() }
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}
