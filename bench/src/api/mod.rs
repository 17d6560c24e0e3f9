//! `stasis-bench api`: the real server, driven over its HTTP API, against plain runc + CRIU on
//! the same workloads in the same run.
//!
//! Each measurement alternates between Stasis and the baseline, run by run, so that the noise of
//! a shared machine hits both; every workload gets one untimed warm-up cycle on each side first.
//! The baseline's containers are made by the Stasis runtime library in a data dir of the bench's
//! own (so they have the very bundle, user namespace, overlay root and CRIU options a Stasis
//! sandbox has) and are then checkpointed and restored with plain `runc` commands.

mod client;
mod server;

use crate::stats::{Dist, Row};
use crate::{baseline, crlog, hostmem, plot};
use anyhow::{bail, Context};
use client::Api;
use stasis_runtime::{ExecRequest, Limits, Runtime, RuncRuntime, RuntimeConfig, SandboxId, SandboxSpec};
use stasis_sdk::{CommandEvent, CommandOptions, Sandbox};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use server::Server;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Timed runs per measurement (after one warm-up).
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Memory held by the memory workloads, MiB, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [64u64, 256, 1024, 2048])]
    pub sizes: Vec<u64>,
    /// Smoke run: 3 runs, 64 MiB only, up to 5 sandboxes in the fit test; writes nothing
    /// unless --out-dir is given.
    #[arg(long)]
    pub quick: bool,
    /// Use this running server instead of starting one.
    #[arg(long, requires = "api_key")]
    pub url: Option<String>,
    /// API key of the server given with --url.
    #[arg(long, env = "E2B_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// With --url: the server's data dir (for checkpoint sizes and CRIU logs) and pid (for its RSS).
    #[arg(long)]
    pub server_data_dir: Option<PathBuf>,
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The server binary to start; default: `stasis` next to this binary.
    #[arg(long)]
    pub stasis_binary: Option<PathBuf>,
    /// Data dir of the server the bench starts (its sandboxes are killed at start and end).
    #[arg(long, default_value = "/var/lib/stasis-bench-api")]
    pub data_dir: PathBuf,
    /// Data dir of the baseline's containers.
    #[arg(long, default_value = "/var/lib/stasis-bench-baseline")]
    pub baseline_dir: PathBuf,
    /// Built templates (shared, read-only here).
    #[arg(long, default_value = "/var/lib/stasis/templates")]
    pub templates_dir: PathBuf,
    /// Most idle base sandboxes created in the fit test.
    #[arg(long, default_value_t = 200)]
    pub fit_max: usize,
    /// The fit test stops when the host's MemAvailable falls below this, MiB.
    #[arg(long, default_value_t = 2048)]
    pub fit_reserve_mib: u64,
    /// Sizes (MiB) whose CRIU logs are profiled.
    #[arg(long, value_delimiter = ',', default_values_t = [64u64, 1024])]
    pub profile_sizes: Vec<u64>,
    /// Where api.md and api.png are written (default bench/results, or nowhere with --quick).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// How long a pause stays in memory before its checkpoint is written: passed to the server the
    /// bench starts (and must match a --url server's). Runs resume once within it (from memory)
    /// and once after the checkpoint was written (from disk); shorter than the server's default
    /// of 10 s only to keep the run short.
    #[arg(long, default_value_t = 2000)]
    pub pause_in_memory_ms: u64,
    /// Skip phases: create, workloads, fit (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub skip: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Workload {
    Idle(&'static str),
    Memory(u64),
}

impl Workload {
    fn template(self) -> &'static str {
        match self {
            Workload::Idle(t) => t,
            Workload::Memory(_) => "base",
        }
    }

    fn name(self) -> String {
        match self {
            Workload::Idle(t) => format!("idle {t}"),
            Workload::Memory(mib) => format!("{mib} MiB touched"),
        }
    }
}

const TEMPLATES: [&str; 2] = ["base", "code-interpreter-v1"];
/// Kernel keys the fit test leaves free for the other sandboxes on the host.
const KEY_MARGIN: u64 = 10;
/// The first command after a resume: what the SDK sends for `commands.run("true")`.
const FIRST_COMMAND: &[&str] = &["/bin/bash", "-l", "-c", "true"];

/// A python process holding `mib` MiB of touched memory, then idling; it says `ready <pid>` on
/// stdout and in /tmp/bench-ready once the memory is written. No single quotes (it is passed
/// in them).
fn memory_script(mib: u64) -> String {
    format!(
        "import os, time\nblob = bytearray(os.urandom(1 << 20)) * {mib}\nopen(\"/tmp/bench-ready\", \"w\").write(str(os.getpid()))\nprint(\"ready\", os.getpid(), flush=True)\nwhile True:\n    time.sleep(3600)\n"
    )
}

/// Everything measured, as it goes into api.md and api.png.
#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    memory_rows: Vec<Row>,
    /// (MiB, [Stasis pause, baseline pause, Stasis resume from disk, + first command, baseline
    /// resume, + first command, Stasis resume from memory, + first command, Stasis checkpoint])
    curve: Vec<(u64, [Dist; 9])>,
    fit: Option<String>,
    profile: Vec<String>,
    /// The load average as each phase began.
    loads: Vec<(String, String)>,
}

/// The p50 of a few numbers, for the profile.
fn median(v: &[f64]) -> f64 {
    let mut d = Dist::default();
    for &x in v {
        d.push(x);
    }
    d.pct(50.0)
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (runs, sizes, fit_max) = if args.quick { (3, vec![64], args.fit_max.min(5)) } else { (args.runs, args.sizes.clone(), args.fit_max) };
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    let out_dir = args.out_dir.clone().or_else(|| (!args.quick).then(|| PathBuf::from("bench/results")));
    let memory_mb = sizes.iter().max().copied().unwrap_or(0).max(128) + 512;
    let me = std::env::current_exe()?;

    // The baseline's runtime: its own data dir, the same templates.
    let mut bcfg = RuntimeConfig::with_data_dir(args.baseline_dir.clone(), me.with_file_name("stasis-envd"));
    bcfg.templates_dir = args.templates_dir.clone();
    // Plain runc: no link, no firewall (Stasis plumbs both on create and resume; that is its cost).
    bcfg.network = None;
    let brt = RuncRuntime::new(bcfg.clone()).await.context("open the baseline's runtime")?;
    for stale in brt.list().await? {
        brt.kill(&stale.id).await?;
    }

    let server = match &args.url {
        Some(url) => Server::external(url.clone(), args.api_key.clone().unwrap_or_default(), args.server_data_dir.clone(), args.server_pid),
        None => {
            let binary = args.stasis_binary.clone().unwrap_or_else(|| me.with_file_name("stasis"));
            eprintln!("starting {} on {} ...", binary.display(), args.data_dir.display());
            Server::start(server::StartOptions {
                binary: &binary,
                data_dir: &args.data_dir,
                templates_dir: &args.templates_dir,
                memory_mb,
                pause_in_memory_ms: args.pause_in_memory_ms,
            })
            .await?
        }
    };
    let api = Api::new(&server.url, &server.api_key)?;
    let stale = api.kill_all().await?;
    if stale > 0 {
        eprintln!("killed {stale} sandboxes left by an earlier run");
    }

    let started = Instant::now();
    let load_start = hostmem::loadavg();
    let mut report = Report::default();
    let window = Duration::from_millis(args.pause_in_memory_ms);
    let ctx = Ctx { api: &api, server: &server, brt: &brt, bcfg: &bcfg, runs, window };
    let result = async {
        if !args.skip.iter().any(|s| s == "create") {
            for t in TEMPLATES {
                report.loads.push((format!("create {t}"), hostmem::loadavg()));
                ctx.create_phase(t, &mut report).await.with_context(|| format!("create phase, {t}"))?;
            }
        }
        // Before the big workloads: their page cache and the server's heap high-water mark would
        // hide what idle sandboxes add.
        if !args.skip.iter().any(|s| s == "fit") {
            report.loads.push(("fit".into(), hostmem::loadavg()));
            ctx.fit_phase(fit_max, args.fit_reserve_mib << 20, &mut report).await.context("fit phase")?;
        }
        if !args.skip.iter().any(|s| s == "workloads") {
            let workloads = TEMPLATES.iter().map(|t| Workload::Idle(t)).chain(sizes.iter().map(|&m| Workload::Memory(m)));
            for w in workloads {
                report.loads.push((w.name(), hostmem::loadavg()));
                let profile = matches!(w, Workload::Memory(m) if args.profile_sizes.contains(&m));
                ctx.workload_phase(w, profile, &mut report).await.with_context(|| format!("workload {}", w.name()))?;
            }
        }
        anyhow::Ok(())
    }
    .await;
    // Leave nothing behind, whatever happened.
    let _ = api.kill_all().await;
    server.stop().await?;
    for s in brt.list().await.unwrap_or_default() {
        let _ = brt.kill(&s.id).await;
    }
    result?;

    let header = Header {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        runs,
        load_start,
        load_end: hostmem::loadavg(),
        took: started.elapsed(),
    };
    let md = render(&report, &header);
    println!("{md}");
    if let Some(dir) = out_dir {
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("api.md"), &md).with_context(|| format!("write {}", dir.join("api.md").display()))?;
        if !report.curve.is_empty() {
            draw(&report, &dir.join("api.png"), runs)?;
        }
        eprintln!("wrote {}", dir.display());
    }
    Ok(())
}

struct Ctx<'a> {
    api: &'a Api,
    server: &'a Server,
    brt: &'a RuncRuntime,
    bcfg: &'a RuntimeConfig,
    runs: usize,
    /// The server's in-memory window of a pause.
    window: Duration,
}

fn spec(template: &str, memory_mib: u64) -> SandboxSpec {
    SandboxSpec { template: template.into(), limits: Limits { memory_mib, ..Limits::default() }, env: Default::default(), network: Default::default() }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

impl Ctx<'_> {
    fn server_sandbox_dir(&self, id: &str) -> Option<PathBuf> {
        self.server.data_dir.as_ref().map(|d| d.join("sandboxes").join(id))
    }

    /// create → envd ready, and the idle memory of each fresh sandbox, for one template.
    async fn create_phase(&self, template: &'static str, report: &mut Report) -> anyhow::Result<()> {
        eprintln!("create → envd ready, {template} ...");
        let like = SandboxId::generate();
        self.brt.create(&like, spec(template, 512)).await?;
        let recipe = self.brt.templates().recipe(template)?.clone();
        let (mut ours, mut base, mut call) = (Dist::default(), Dist::default(), Dist::default());
        let mut mem: [Dist; 10] = Default::default();
        for run in 0..=self.runs {
            let timed = run > 0;
            for side in order(run) {
                if side == Side::Stasis {
                    let t = Instant::now();
                    let (id, took) = self.api.create(template).await?;
                    while !self.api.envd_health(&id).await? {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    let ready = t.elapsed();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let m = hostmem::sandbox(&format!("stasis/{id}"));
                    self.api.kill(&id).await?;
                    if timed {
                        ours.push_ms(ready);
                        call.push_ms(took);
                        push_mem(&mut mem[..5], m);
                    }
                } else {
                    let (took, scratch) = baseline::create_ready(self.bcfg, &like, &recipe).await?;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let m = hostmem::sandbox(&scratch.cgroup());
                    baseline::remove(self.bcfg, scratch).await?;
                    if timed {
                        base.push_ms(took);
                        push_mem(&mut mem[5..], m);
                    }
                }
            }
        }
        self.brt.kill(&like).await?;
        let w = format!("idle {template}");
        report.rows.push(Row { metric: "create → envd ready".into(), workload: w.clone(), unit: "ms", ours, base: Some(base) });
        report.rows.push(Row { metric: "create API call (to 201)".into(), workload: w.clone(), unit: "ms", ours: call, base: None });
        let [rss, pss, cg, cache, kernel, brss, bpss, bcg, bcache, bkernel] = mem;
        for (metric, ours, base) in [
            ("host RSS of its processes (idle, fresh)", rss, brss),
            ("host PSS of its processes (idle, fresh)", pss, bpss),
            ("memory charged to its cgroup (idle, fresh)", cg, bcg),
            ("of which page cache", cache, bcache),
            ("of which kernel memory", kernel, bkernel),
        ] {
            report.memory_rows.push(Row { metric: metric.into(), workload: w.clone(), unit: "MiB", ours, base: Some(base) });
        }
        Ok(())
    }

    async fn workload_phase(&self, w: Workload, profile: bool, report: &mut Report) -> anyhow::Result<()> {
        eprintln!("pause / resume, {} ...", w.name());
        let memory_mb = match w {
            Workload::Memory(m) => m + 512,
            Workload::Idle(_) => 512,
        };
        let (id, _) = self.api.create(w.template()).await?;
        let sbx = self.api.attach(&id).await?;
        let bid = SandboxId::generate();
        self.brt.create(&bid, spec(w.template(), memory_mb)).await?;
        let pids = match w {
            Workload::Memory(m) => Some((start_stasis(&sbx, m).await?, start_baseline(self.brt, &bid, m).await?)),
            Workload::Idle(_) => None,
        };

        // Stasis: pause, resume from disk, + first command, image; the baseline: runc checkpoint,
        // restore, + exec, image; Stasis: resume from memory, + first command, checkpoint written.
        let mut d: [Dist; 11] = Default::default();
        let mut mem: [Dist; 4] = Default::default(); // RSS after resume, cgroup after resume × 2 sides
        let mut prof: Vec<ProfRun> = Vec::new();
        let mut logs: Option<(String, String)> = None;
        for run in 0..=self.runs {
            let timed = run > 0;
            let mut p = ProfRun::default();
            for side in order(run) {
                if side == Side::Stasis {
                    let sdir = self.server_sandbox_dir(&id).context("resumes from disk need the server's data dir (--server-data-dir)")?;
                    // From memory: resumed within the in-memory window.
                    let hot_pause = self.api.pause(&id).await?;
                    let t = Instant::now();
                    let hot_resume = self.api.resume(&id).await?;
                    sbx.commands().run("true").await.context("first command after a resume from memory")?;
                    let hot_first = t.elapsed();
                    if let Some((pid, _)) = pids {
                        check_resident_stasis(&sbx, pid, w).await?;
                    }
                    // From disk: resumed once the checkpoint is written and the memory freed.
                    let grab = |rel: &str| Some(crlog::Grab::start(sdir.join(rel))).filter(|_| profile);
                    let dump_grab = grab("checkpoint.partial/work/dump.log");
                    let t = Instant::now();
                    let pause = self.api.pause(&id).await?;
                    let checkpointed = wait_checkpointed(&sdir, t).await?.saturating_sub(self.window);
                    let dump_grabbed = dump_grab.map(crlog::Grab::finish);
                    let image = dir_size(&sdir.join("checkpoint/images"));
                    let dump_log = std::fs::read_to_string(sdir.join("checkpoint/work/dump.log")).unwrap_or_default();
                    let restore_grab = grab("restore-work/restore.log");
                    let t2 = Instant::now();
                    let resume = self.api.resume(&id).await?;
                    sbx.commands().run("true").await.context("first command after a resume from disk")?;
                    let first = t2.elapsed();
                    let restore_grabbed = restore_grab.map(crlog::Grab::finish);
                    if let Some((pid, _)) = pids {
                        check_resident_stasis(&sbx, pid, w).await?;
                    }
                    let m = hostmem::sandbox(&format!("stasis/{id}"));
                    if timed {
                        d[0].push_ms(hot_pause);
                        d[0].push_ms(pause);
                        d[1].push_ms(resume);
                        d[2].push_ms(first);
                        d[3].push(mib(image));
                        d[8].push_ms(hot_resume);
                        d[9].push_ms(hot_first);
                        d[10].push_ms(checkpointed);
                        mem[0].push(mib(m.rss));
                        mem[1].push(mib(m.cgroup));
                        let restore_log = restore_grabbed.as_ref().map(|g| g.text.clone()).unwrap_or_default();
                        p.call = [ms(checkpointed), ms(resume)];
                        p.criu = [crlog::total_ms(&dump_log).unwrap_or(f64::NAN), crlog::total_ms(&restore_log).unwrap_or(f64::NAN)];
                        p.pre = [
                            dump_grabbed.map(|g| g.after_ms(t + self.window)).unwrap_or(f64::NAN),
                            restore_grabbed.map(|g| g.after_ms(t2)).unwrap_or(f64::NAN),
                        ];
                        if profile && logs.is_none() && run == self.runs.div_ceil(2) {
                            logs = Some((dump_log, restore_log));
                        }
                    }
                } else {
                    let c = baseline::cycle(self.bcfg, &bid, Some(FIRST_COMMAND), profile).await?;
                    if let Some((_, pid)) = pids {
                        check_resident_baseline(self.brt, &bid, pid, w).await?;
                    }
                    let m = hostmem::sandbox(&format!("stasis/{bid}"));
                    if timed {
                        d[4].push_ms(c.pause);
                        d[5].push_ms(c.resume);
                        d[6].push_ms(c.first_command.unwrap_or_default());
                        d[7].push(mib(c.image_bytes));
                        mem[2].push(mib(m.rss));
                        mem[3].push(mib(m.cgroup));
                        p.bcall = [ms(c.pause), ms(c.resume)];
                        p.bcriu = [crlog::total_ms(&c.dump_log).unwrap_or(f64::NAN), crlog::total_ms(&c.restore_log).unwrap_or(f64::NAN)];
                        p.bpre = [c.criu_started_ms.0, c.criu_started_ms.1];
                        p.durable = ms(c.durability);
                    }
                }
            }
            if timed {
                prof.push(p);
            }
            eprint!(".");
        }
        eprintln!();
        self.api.kill(&id).await?;
        self.brt.kill(&bid).await?;

        let name = w.name();
        let [sp, sr, sf, si, bp, br, bf, bi, hr, hf, ck] = d;
        for (metric, ours, base) in [
            ("pause (API call to 204 / runc checkpoint)", &sp, &bp),
            ("pause's checkpoint, in the background after the in-memory window, until the memory is freed (/ runc checkpoint)", &ck, &bp),
            ("resume from memory (API call to 201 / runc restore)", &hr, &br),
            ("resume from memory → first command done (/ runc restore + runc exec)", &hf, &bf),
            ("resume from disk (API call to 201 / runc restore)", &sr, &br),
            ("resume from disk → first command done (/ runc restore + runc exec)", &sf, &bf),
        ] {
            report.rows.push(Row { metric: metric.into(), workload: name.clone(), unit: "ms", ours: ours.clone(), base: Some(base.clone()) });
        }
        report.rows.push(Row { metric: "checkpoint images on disk".into(), workload: name.clone(), unit: "MiB", ours: si, base: Some(bi) });
        if let Workload::Idle(_) = w {
            let [rss, cg, brss, bcg] = mem;
            report.memory_rows.push(Row { metric: "host RSS of its processes (after a resume)".into(), workload: name.clone(), unit: "MiB", ours: rss, base: Some(brss) });
            report.memory_rows.push(Row { metric: "memory charged to its cgroup (after a resume)".into(), workload: name.clone(), unit: "MiB", ours: cg, base: Some(bcg) });
        }
        if let Workload::Memory(m) = w {
            report.curve.push((m, [sp, bp, sr, sf, br, bf, hr, hf, ck]));
        }
        if profile {
            report.profile.push(profile_section(m_of(w), &prof, logs));
        }
        Ok(())
    }

    /// Create idle base sandboxes until `max`, a failure, or the host running low on memory.
    async fn fit_phase(&self, max: usize, reserve: u64, report: &mut Report) -> anyhow::Result<()> {
        eprintln!("fit: up to {max} idle base sandboxes ...");
        let server_rss = || self.server.pid.map(|p| hostmem::process_rss_pss(p as i32).0 as f64);
        let uid = self.bcfg.id_map.host_base;
        // Let the page cache and allocator settle after the phases before.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (host0, server0) = (hostmem::host(), server_rss());
        let mut ids = Vec::new();
        let mut creates = Dist::default();
        let mut reason = format!("it reached the bench's limit of {max}");
        while ids.len() < max {
            if hostmem::mem_available() < reserve {
                reason = format!("the host's MemAvailable fell below {} MiB", reserve >> 20);
                break;
            }
            // All sandboxes on this host, this server's or not, share the kernel's key quota of
            // one host uid; using it up makes every other create on the host fail too.
            if let Some(q) = hostmem::keys(uid).filter(|q| q.keys + KEY_MARGIN >= q.max_keys || q.bytes + 100 * KEY_MARGIN >= q.max_bytes) {
                reason = format!(
                    "the kernel's key quota of the sandboxes' host uid {uid} was nearly used up ({} of {} keys, {} of {} bytes; \
                     the bench leaves {KEY_MARGIN} keys for other sandboxes on the host)",
                    q.keys, q.max_keys, q.bytes, q.max_bytes
                );
                break;
            }
            match tokio::time::timeout(Duration::from_secs(60), self.api.create("base")).await {
                Ok(Ok((id, took))) => {
                    ids.push(id);
                    creates.push_ms(took);
                }
                Ok(Err(e)) => {
                    reason = format!("create number {} failed: {e:#}", ids.len() + 1);
                    break;
                }
                Err(_) => {
                    reason = format!("create number {} took over 60 s", ids.len() + 1);
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (host1, server1) = (hostmem::host(), server_rss());
        let mems: Vec<hostmem::SandboxMemory> = ids.iter().map(|id| hostmem::sandbox(&format!("stasis/{id}"))).collect();
        let n = ids.len().max(1) as f64;
        let sum = |f: fn(&hostmem::SandboxMemory) -> u64| mib(mems.iter().map(f).sum());
        let delta = |f: fn(&hostmem::HostMemory) -> u64| (f(&host1) as f64 - f(&host0) as f64) / (1u64 << 20) as f64;
        let used = delta(|h| h.used);
        let kernel = delta(|h| h.slab_unreclaimable) + delta(|h| h.kernel_stack) + delta(|h| h.page_tables);
        let server_growth = match (server0, server1) {
            (Some(a), Some(b)) => (b - a) / (1u64 << 20) as f64,
            _ => f64::NAN,
        };
        let beyond = used - sum(|m| m.pss) - server_growth.max(0.0);
        let line = |what: &str, total: f64| format!("| {what} | {total:.0} | {:.2} |\n", total / n);
        let mut text = format!(
            "**{} idle `base` sandboxes fit** (the fill stopped because {reason}).\n\n\
             | all of them together | MiB | per sandbox, MiB |\n|---|---:|---:|\n",
            ids.len()
        );
        text += &line("their processes' RSS", sum(|m| m.rss));
        text += &line("their processes' PSS", sum(|m| m.pss));
        text += &line("charged to their cgroups", sum(|m| m.cgroup));
        text += &line("of which kernel memory", sum(|m| m.cgroup_kernel));
        text += &line("host memory in use (`free`'s used), growth", used);
        text += &line("of which unreclaimable slab + kernel stacks + page tables, growth", kernel);
        text += &line("server RSS growth", server_growth);
        text += &line("host-side overhead: used growth less processes' PSS and server growth", beyond);
        text += &format!(
            "\nCreate API call while filling: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms.\n",
            creates.pct(50.0),
            creates.pct(95.0),
            creates.max()
        );
        let keys = hostmem::keys(uid);
        eprintln!("fit: {} sandboxes ({reason}); killing them ...", ids.len());
        for id in &ids {
            self.api.kill(id).await?;
        }
        // The kernel frees the killed sandboxes' session keyrings asynchronously; the phases after
        // this one need that quota back.
        let deadline = Instant::now() + Duration::from_secs(30);
        while hostmem::keys(uid).is_some_and(|q| q.keys + 20 > q.max_keys || q.bytes + 2000 > q.max_bytes) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(q) = keys {
            text += &format!(
                "\nKernel key quota of the sandboxes' host uid {} with all of them running: {} of {} keys, {} of {} bytes \
                 (/proc/key-users; every sandbox's init makes a session keyring, and every sandbox, of this server \
                 or any other on the host, maps to that uid).\n",
                uid, q.keys, q.max_keys, q.bytes, q.max_bytes
            );
        }
        report.fit = Some(text);
        Ok(())
    }
}

fn m_of(w: Workload) -> u64 {
    match w {
        Workload::Memory(m) => m,
        Workload::Idle(_) => 0,
    }
}

fn push_mem(d: &mut [Dist], m: hostmem::SandboxMemory) {
    d[0].push(mib(m.rss));
    d[1].push(mib(m.pss));
    d[2].push(mib(m.cgroup));
    d[3].push(mib(m.cgroup_cache));
    d[4].push(mib(m.cgroup_kernel));
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Stasis,
    Baseline,
}

/// Who goes first alternates run by run.
fn order(run: usize) -> [Side; 2] {
    if run & 1 == 0 {
        [Side::Stasis, Side::Baseline]
    } else {
        [Side::Baseline, Side::Stasis]
    }
}

/// Wait until a paused sandbox's checkpoint is written and its memory freed (the server removes
/// the `parked` mark last); how long after `t` that was.
async fn wait_checkpointed(sdir: &Path, t: Instant) -> anyhow::Result<Duration> {
    let deadline = t + Duration::from_secs(600);
    while !sdir.join("checkpoint/manifest.json").exists() || sdir.join("parked").exists() {
        if Instant::now() > deadline {
            bail!("{}: no checkpoint 600 s after the pause", sdir.display());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(t.elapsed())
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir).into_iter().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

/// Start the memory workload through envd's process API (as a user would) and wait until its
/// memory is written; returns its pid.
async fn start_stasis(sbx: &Sandbox, mib: u64) -> anyhow::Result<u32> {
    let cmd = format!("exec python3 -c '{}'", memory_script(mib));
    let mut handle = sbx.commands().run_background(&cmd, CommandOptions::new().no_timeout()).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut out = String::new();
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), handle.next_event()).await {
            Ok(Some(Ok(CommandEvent::Stdout(b)))) => {
                out.push_str(&String::from_utf8_lossy(&b));
                if let Some(pid) = out.split_whitespace().skip_while(|w| *w != "ready").nth(1).and_then(|p| p.parse().ok()) {
                    check_resident_stasis(sbx, pid, Workload::Memory(mib)).await?;
                    return Ok(pid);
                }
            }
            Ok(Some(Ok(CommandEvent::Exit { exit_code, error }))) => bail!("the workload exited ({exit_code}, {error:?}): {}", handle.stderr()),
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => bail!("the workload's stream ended"),
            _ => {}
        }
    }
    bail!("the workload did not get ready in 120 s")
}

/// Start the same workload in the baseline's container with `runc exec`.
async fn start_baseline(rt: &RuncRuntime, id: &SandboxId, mib: u64) -> anyhow::Result<u32> {
    let script = memory_script(mib);
    let out = rt.exec(id, ExecRequest::new(["/bin/sh", "-c", "nohup python3 -c \"$0\" >/dev/null 2>&1 &", &script])).await?;
    if out.exit_code != 0 {
        bail!("the baseline's workload did not start: {}", String::from_utf8_lossy(&out.stderr));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let out = rt.exec(id, ExecRequest::new(["/bin/cat", "/tmp/bench-ready"])).await?;
        if let Ok(pid) = String::from_utf8_lossy(&out.stdout).trim().parse() {
            check_resident_baseline(rt, id, pid, Workload::Memory(mib)).await?;
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the baseline's workload did not get ready in 120 s")
}

fn vmrss_kib(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
}

fn check_rss(status: &str, pid: u32, w: Workload) -> anyhow::Result<()> {
    let Workload::Memory(mib) = w else { return Ok(()) };
    let kib = vmrss_kib(status).with_context(|| format!("no VmRSS for pid {pid} in {status:?}"))?;
    if kib < mib * 1024 * 95 / 100 {
        bail!("the workload (pid {pid}) has only {} MiB resident of its {mib} MiB", kib / 1024);
    }
    Ok(())
}

/// The workload is alive and its memory resident (checked before a pause and after a resume).
async fn check_resident_stasis(sbx: &Sandbox, pid: u32, w: Workload) -> anyhow::Result<()> {
    let out = sbx.commands().run(&format!("cat /proc/{pid}/status")).await.with_context(|| format!("the workload (pid {pid}) is gone"))?;
    check_rss(&out.stdout, pid, w)
}

async fn check_resident_baseline(rt: &RuncRuntime, id: &SandboxId, pid: u32, w: Workload) -> anyhow::Result<()> {
    let out = rt.exec(id, ExecRequest::new(["/bin/cat".to_owned(), format!("/proc/{pid}/status")])).await?;
    check_rss(&String::from_utf8_lossy(&out.stdout), pid, w)
}

/// One run's split of a pause and a resume (`[pause, resume]`), ms: the whole call (API call
/// or runc command), before CRIU's log appeared, and CRIU's own duration; Stasis and baseline.
#[derive(Default, Clone, Copy)]
struct ProfRun {
    call: [f64; 2],
    pre: [f64; 2],
    criu: [f64; 2],
    bcall: [f64; 2],
    bpre: [f64; 2],
    bcriu: [f64; 2],
    /// fsync + syncfs of the baseline's fresh images.
    durable: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Where the time of a pause and a resume goes, from the medians over the runs and CRIU's log
/// of a typical (middle) Stasis run.
fn profile_section(mib: u64, prof: &[ProfRun], logs: Option<(String, String)>) -> String {
    let med = |f: &dyn Fn(&ProfRun) -> f64| median(&prof.iter().map(f).collect::<Vec<_>>());
    let mut s = format!(
        "#### {mib} MiB (medians of {} runs, ms)\n\n\
         | | Stasis pause | baseline pause | Stasis resume | baseline resume |\n|---|---:|---:|---:|---:|\n",
        prof.len()
    );
    let row = |what: &str, f: &dyn Fn(&ProfRun, usize, bool) -> f64| {
        format!(
            "| {what} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            med(&|r| f(r, 0, false)),
            med(&|r| f(r, 0, true)),
            med(&|r| f(r, 1, false)),
            med(&|r| f(r, 1, true))
        )
    };
    let pick = |r: &ProfRun, i: usize, b: bool| if b { (r.bcall[i], r.bpre[i], r.bcriu[i]) } else { (r.call[i], r.pre[i], r.criu[i]) };
    s += &row("whole (Stasis: background checkpoint until freed / API call; baseline: runc command)", &|r, i, b| pick(r, i, b).0);
    s += &row("before CRIU started (its log appeared)", &|r, i, b| pick(r, i, b).1);
    s += &row("CRIU (its log's last timestamp)", &|r, i, b| pick(r, i, b).2);
    s += &row("after CRIU ended (the rest)", &|r, i, b| {
        let (call, pre, criu) = pick(r, i, b);
        call - pre - criu
    });
    s += &format!("| fsync + syncfs of fresh images of this size (timed in the baseline, apart) | | {:.0} | | |\n\n", med(&|r| r.durable));
    if let Some((dump, restore)) = logs {
        for (what, log) in [("dump", dump), ("restore", restore)] {
            if log.is_empty() {
                continue;
            }
            s += &format!("Longest silences in CRIU's {what}.log of one Stasis run (total {:.0} ms):\n\n", crlog::total_ms(&log).unwrap_or(f64::NAN));
            for (ms, between) in crlog::gaps(&log, 6) {
                s += &format!("- {ms:.0} ms: {}\n", between.replace('|', "\\|"));
            }
            s += "\n";
        }
    }
    s
}

struct Header {
    command: String,
    runs: usize,
    load_start: String,
    load_end: String,
    took: Duration,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout }).lines().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("model name").map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())))
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| t.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())).unwrap_or_default();
    let mem_gib = mem.parse::<u64>().unwrap_or(0) as f64 / (1u64 << 20) as f64;
    format!(
        "{} × {cpu}, {mem_gib:.0} GiB, kernel {}, {}, {}",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        first_line("uname", &["-r"]),
        first_line("runc", &["--version"]),
        first_line("criu", &["--version"]),
    )
}

fn render(r: &Report, h: &Header) -> String {
    let mut s = String::from("# Stasis through its API against plain runc + CRIU\n\n");
    s += &format!(
        "Command: `{}` (release build). Machine: {}. n = {} timed runs per measurement after one warm-up, \
         Stasis and the baseline alternating run by run. Load average at start {}, at end {} \
         (the machine is shared: others compile on it); the whole run took {:.0} min.\n\n",
        h.command,
        machine(),
        h.runs,
        h.load_start,
        h.load_end,
        h.took.as_secs_f64() / 60.0
    );
    s += "Stasis: the API call measured by a plain HTTP client (pause: `POST /sandboxes/{id}/pause` until 204; \
          resume: `POST /v2/sandboxes/{id}/connect` until 201; first command: the resume call plus the Rust SDK's \
          `commands().run(\"true\")`, which is `bash -l -c true` through envd). A pause freezes the sandbox and \
          answers; its checkpoint is written when the server's in-memory window (`--pause-in-memory-ms`, default \
          10 s, 2 s here to keep the run short) has passed, and then its memory is freed. Each run pauses twice: \
          resumed at once (from memory: a thaw), and resumed after the checkpoint was written and the memory freed \
          (from disk: a CRIU restore); the checkpoint's duration is from the end of the window until the memory is \
          free. Baseline: the same template, OCI \
          bundle and workload checkpointed with `runc checkpoint` and brought back with `runc restore --detach` \
          (+ `runc exec bash -l -c true`), images on the same disk, not fsynced. Create → envd ready: Stasis is \
          `POST /v2/sandboxes` then envd's `/health` through the proxy; the baseline is mount + `runc run` + `lo` up + \
          envd's `/health` (+ the interpreter's start command and port for code-interpreter-v1).\n\n";
    if !r.loads.is_empty() {
        s += "Load average (1, 5, 15 min) as each phase began: ";
        s += &r.loads.iter().map(|(phase, l)| format!("{phase}: {l}")).collect::<Vec<_>>().join("; ");
        s += ".\n\n";
    }
    s += "## Latency and image size\n\n";
    s += &crate::stats::api_markdown(&r.rows);
    if !r.memory_rows.is_empty() {
        s += "\n## Memory of an idle sandbox\n\n";
        s += &crate::stats::api_markdown(&r.memory_rows);
        s += "\nRSS and PSS: the sum over the processes in the sandbox's cgroup (`/proc/PID/status`, \
              `/proc/PID/smaps_rollup`). Cgroup: `memory.usage_in_bytes` (page cache included) and \
              `memory.kmem.usage_in_bytes` (kernel memory: page tables, slab) of its memory cgroup. \
              Sampled 0.5 s after the sandbox is ready, and after each resume.\n";
    }
    if let Some(fit) = &r.fit {
        s += "\n## How many idle sandboxes fit\n\n";
        s += fit;
        s += "\nHost-side overhead per sandbox: the growth of the host's used memory (MemTotal − MemFree − \
              Buffers − Cached − SReclaimable, from /proc/meminfo, 3 s after the last create against 3 s \
              before the first) less the sandboxes' own processes (PSS) and the server's RSS growth, divided \
              by their number: kernel objects (namespaces, overlay mounts, cgroups, page tables, sockets) \
              whether or not their cgroup is charged for them. runc leaves no host process per sandbox. \
              The host numbers are host-wide, so whatever else runs on the machine (compilers, here) adds \
              noise to them; the slab + stacks + page tables line is the least noisy part.\n";
    }
    if !r.profile.is_empty() {
        s += "\n## Where the time of a pause and a resume goes\n\n";
        for p in &r.profile {
            s += p;
        }
    }
    s
}

fn draw(r: &Report, out: &Path, runs: usize) -> anyhow::Result<()> {
    use plotters::style::RGBColor;
    const STASIS: RGBColor = RGBColor(30, 100, 200);
    const STASIS_CMD: RGBColor = RGBColor(90, 170, 230);
    const STASIS_DISK: RGBColor = RGBColor(40, 140, 60);
    const STASIS_DISK_CMD: RGBColor = RGBColor(120, 200, 120);
    const RUNC: RGBColor = RGBColor(230, 120, 20);
    const RUNC_CMD: RGBColor = RGBColor(240, 180, 60);
    const E2B: RGBColor = RGBColor(200, 40, 40);
    const TARGET: RGBColor = RGBColor(110, 110, 110);
    let pts = |i: usize| r.curve.iter().map(|(m, d)| (*m as f64, d[i].pct(50.0))).collect::<Vec<_>>();
    let x_min = r.curve.iter().map(|(m, _)| *m).min().unwrap_or(64) as f64 / 1.3;
    let x_max = r.curve.iter().map(|(m, _)| *m).max().unwrap_or(1024) as f64 * 1.3;
    let refline = |f: fn(f64) -> f64| plot::sample(x_min, x_max, 64, f);
    let line = |label: &str, points: Vec<(f64, f64)>, color, dashed| plot::Series { label: label.into(), points, color, dashed };
    let pause = plot::Panel {
        title: "pause (p50)".into(),
        series: vec![
            line("Stasis: API call to 204", pts(0), STASIS, false),
            line("Stasis: its checkpoint (in the background)", pts(8), STASIS_CMD, false),
            line("plain runc checkpoint", pts(1), RUNC, false),
            line("E2B published: 4 s/GiB", refline(|x| 4000.0 * x / 1024.0), E2B, true),
            line("target: 60 ms + 0.25 s/GiB", refline(|x| 60.0 + 250.0 * x / 1024.0), TARGET, true),
        ],
    };
    let resume = plot::Panel {
        title: "resume (p50)".into(),
        series: vec![
            line("Stasis from memory: API call to 201", pts(6), STASIS, false),
            line("Stasis from memory: + first command", pts(7), STASIS_CMD, false),
            line("Stasis from disk: API call to 201", pts(2), STASIS_DISK, false),
            line("Stasis from disk: + first command", pts(3), STASIS_DISK_CMD, false),
            line("plain runc restore", pts(4), RUNC, false),
            line("plain runc restore + exec", pts(5), RUNC_CMD, false),
            line("E2B published: 1 s", refline(|_| 1000.0), E2B, true),
            line("target: 50 ms", refline(|_| 50.0), TARGET, true),
        ],
    };
    plot::draw(out, &[pause, resume], (x_min, x_max), &format!("Stasis vs plain runc + CRIU, p50 of {runs} runs ({})", hostmem_note()))
}

fn hostmem_note() -> String {
    format!("{} cores, bench/results/api.md", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0))
}
