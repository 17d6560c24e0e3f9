//! The baseline: what a user gets from runc and CRIU alone, run by hand on a Stasis sandbox's
//! own bundle (same template, OCI config, user namespace, overlay root and CRIU options). The
//! rootfs stays mounted and the images go to a fresh directory each time.

use anyhow::{bail, Context};
use stasis_runtime::{RuntimeConfig, SandboxId, TemplateRecipe};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::process::Command;

async fn runc(cfg: &RuntimeConfig, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(&cfg.runc_binary)
        .arg("--root")
        .arg(&cfg.run_dir)
        .arg("--criu")
        .arg(&cfg.criu_binary)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("spawn runc")?;
    if !out.status.success() {
        bail!("runc {:?}: {}", args.first(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// One checkpoint/restore of a running container by hand.
pub struct Cycle {
    /// `runc checkpoint`.
    pub pause: Duration,
    /// `runc restore --detach`.
    pub resume: Duration,
    /// `runc restore` and then the first `runc exec` completed, when one was asked for.
    pub first_command: Option<Duration>,
    pub image_bytes: u64,
    /// What making the fresh images durable would have cost (fsync of each file + syncfs), timed
    /// apart from `pause`: Stasis pays it inside its pause, plain runc does not.
    pub durability: Duration,
    pub dump_log: String,
    pub restore_log: String,
    /// With `profile`: how long after runc was started CRIU's dump and restore logs appeared, ms.
    pub criu_started_ms: (f64, f64),
}

/// `runc checkpoint`, then `runc restore --detach`, then (optionally) `runc exec` of
/// `first_command`. With `profile`, also when CRIU started within each runc command.
pub async fn cycle(cfg: &RuntimeConfig, id: &SandboxId, first_command: Option<&[&str]>, profile: bool) -> anyhow::Result<Cycle> {
    let sdir = cfg.data_dir.join("sandboxes").join(id.as_str());
    let images = sdir.join("baseline-images");
    let _ = std::fs::remove_dir_all(&images);
    std::fs::create_dir_all(&images)?;
    let images_s = images.to_string_lossy().to_string();
    let grab = profile.then(|| crate::crlog::Grab::start(images.join("dump.log")));
    let t = Instant::now();
    runc(cfg, &["checkpoint", "--image-path", &images_s, "--file-locks", id.as_str()]).await?;
    let pause = t.elapsed();
    let dump_started = grab.map(|g| g.finish().after_ms(t)).unwrap_or(f64::NAN);
    let image_bytes = dir_size(&images);
    let durability = {
        let images = images.clone();
        tokio::task::spawn_blocking(move || make_durable(&images)).await??
    };
    // PLATFORM.md: the images must be readable by the mapped root before restore.
    chown_r(&images, cfg.id_map.host_base)?;
    let bundle = sdir.join("bundle").to_string_lossy().to_string();
    let grab = profile.then(|| crate::crlog::Grab::start(images.join("restore.log")));
    let t = Instant::now();
    runc(cfg, &["restore", "--detach", "--bundle", &bundle, "--image-path", &images_s, "--file-locks", id.as_str()]).await?;
    let resume = t.elapsed();
    let restore_started = grab.map(|g| g.finish().after_ms(t)).unwrap_or(f64::NAN);
    let first_command = match first_command {
        Some(argv) => {
            let mut args = vec!["exec", id.as_str()];
            args.extend_from_slice(argv);
            runc(cfg, &args).await?;
            Some(t.elapsed())
        }
        None => None,
    };
    // runc keeps CRIU's logs with the images when no work path is given.
    let dump_log = std::fs::read_to_string(images.join("dump.log")).unwrap_or_default();
    let restore_log = std::fs::read_to_string(images.join("restore.log")).unwrap_or_default();
    std::fs::remove_dir_all(&images)?;
    Ok(Cycle { pause, resume, first_command, image_bytes, durability, dump_log, restore_log, criu_started_ms: (dump_started, restore_started) })
}

/// `runc checkpoint` then `runc restore --detach` of a running sandbox; returns both durations
/// and the image size.
pub async fn pause_resume(cfg: &RuntimeConfig, id: &SandboxId) -> anyhow::Result<(Duration, Duration, u64)> {
    let c = cycle(cfg, id, None, false).await?;
    Ok((c.pause, c.resume, c.image_bytes))
}

fn make_durable(dir: &Path) -> anyhow::Result<Duration> {
    let t = Instant::now();
    for e in std::fs::read_dir(dir)?.flatten() {
        std::fs::File::open(e.path())?.sync_all()?;
    }
    let d = std::fs::File::open(dir)?;
    d.sync_all()?;
    nix::unistd::syncfs(&d)?;
    Ok(t.elapsed())
}

/// A copy of `like`'s bundle over a fresh overlay, its config pointed at its own cgroup.
pub struct Scratch {
    dir: std::path::PathBuf,
    name: String,
}

impl Scratch {
    fn rootfs(&self) -> std::path::PathBuf {
        self.dir.join("bundle/rootfs")
    }

    /// Its cgroup, relative to each hierarchy's root.
    pub fn cgroup(&self) -> String {
        format!("stasis-bench/{}", self.name)
    }
}

fn prepare(cfg: &RuntimeConfig, like: &SandboxId, name: &str) -> anyhow::Result<(Scratch, String)> {
    let src = cfg.data_dir.join("sandboxes").join(like.as_str());
    let dir = cfg.data_dir.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["upper", "work", "bundle/rootfs"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::os::unix::fs::chown(dir.join("upper"), Some(cfg.id_map.host_base), Some(cfg.id_map.host_base))?;
    let mut config: serde_json::Value = serde_json::from_slice(&std::fs::read(src.join("bundle/config.json"))?)?;
    // Not the cgroup of the sandbox it was copied from, which is still running.
    config["linux"]["cgroupsPath"] = format!("/stasis-bench/{name}").into();
    std::fs::write(dir.join("bundle/config.json"), serde_json::to_vec(&config)?)?;
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(src.join("sandbox.json"))?)?;
    let lower = record["template_rootfs"].as_str().context("template_rootfs")?;
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={},index=on,nfs_export=on",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    Ok((Scratch { dir, name: name.to_owned() }, opts))
}

/// Kill and remove a container made by [`create`] or [`create_ready`].
pub async fn remove(cfg: &RuntimeConfig, s: Scratch) -> anyhow::Result<()> {
    runc(cfg, &["delete", "--force", &s.name]).await?;
    Command::new("umount").arg(s.rootfs()).status().await?;
    std::fs::remove_dir_all(&s.dir)?;
    Ok(())
}

async fn mount_and_run(cfg: &RuntimeConfig, s: &Scratch, opts: &str) -> anyhow::Result<()> {
    let mount = Command::new("mount").args(["-t", "overlay", "overlay", "-o", opts]).arg(s.rootfs()).status().await?;
    if !mount.success() {
        bail!("mount overlay failed");
    }
    let bundle = s.dir.join("bundle").to_string_lossy().to_string();
    runc(cfg, &["run", "--detach", "--bundle", &bundle, &s.name]).await
}

/// `mount + runc run --detach` of a copy of `like`'s bundle: the floor under any runc-based
/// create.
pub async fn create(cfg: &RuntimeConfig, like: &SandboxId) -> anyhow::Result<Duration> {
    let (s, opts) = prepare(cfg, like, "baseline-create")?;
    let t = Instant::now();
    mount_and_run(cfg, &s, &opts).await?;
    let took = t.elapsed();
    remove(cfg, s).await?;
    Ok(took)
}

/// What plain runc needs until envd answers, as Stasis's create does: mount, `runc run`, bring
/// `lo` up (runc leaves it down), envd's `/health` answered; for a template with a service
/// (`recipe.start`), start it with `runc exec` and wait for its port. The container keeps running
/// (remove it with [`remove`]).
pub async fn create_ready(cfg: &RuntimeConfig, like: &SandboxId, recipe: &TemplateRecipe) -> anyhow::Result<(Duration, Scratch)> {
    let name = "baselineready";
    let (s, opts) = prepare(cfg, like, name)?;
    let pid_file = s.dir.join("init.pid");
    let t = Instant::now();
    let mount = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(s.rootfs()).status().await?;
    if !mount.success() {
        bail!("mount overlay failed");
    }
    let bundle = s.dir.join("bundle").to_string_lossy().to_string();
    let pid_s = pid_file.to_string_lossy().to_string();
    let ran = async {
        runc(cfg, &["run", "--detach", "--bundle", &bundle, "--pid-file", &pid_s, name]).await?;
        let pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
        let lo = Command::new("nsenter").args(["-t", &pid.to_string(), "-n", "ip", "link", "set", "lo", "up"]).status().await?;
        if !lo.success() {
            bail!("bring lo up");
        }
        wait_for(pid, stasis_proto::ENVD_PORT, true).await?;
        if let Some(start) = recipe.start {
            let quoted = start.replace('\'', r"'\''");
            let script = format!("cd / && setsid /bin/sh -c '{quoted}' </dev/null >>/var/log/stasis-template-start.log 2>&1 &");
            runc(cfg, &["exec", name, "/bin/sh", "-c", &script]).await?;
            if let Some(port) = recipe.ready_port {
                wait_for(pid, port, false).await?;
            }
        }
        Ok(())
    }
    .await;
    let took = t.elapsed();
    match ran {
        Ok(()) => Ok((took, s)),
        Err(e) => {
            let _ = remove(cfg, s).await;
            Err(e)
        }
    }
}

/// Wait (up to 60 s) until `port` in `pid`'s network namespace accepts a connection and, with
/// `http`, answers `GET /health` with a 2xx.
async fn wait_for(pid: i32, port: u16, http: bool) -> anyhow::Result<()> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        // A thread of its own enters the namespace and ends with the check, so no pooled thread
        // is left in it.
        std::thread::spawn(move || -> anyhow::Result<()> {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if probe(port, http).unwrap_or(false) {
                    return Ok(());
                }
                if Instant::now() > deadline {
                    bail!("port {port} not ready after 60 s");
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
        .join()
        .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
    })
    .await?
}

fn probe(port: u16, http: bool) -> std::io::Result<bool> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    if !http {
        return Ok(true);
    }
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.write_all(b"GET /health HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    Ok(head.starts_with(b"HTTP/1.") && head[9] == b'2')
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum()).unwrap_or(0)
}

fn chown_r(dir: &Path, uid: u32) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(uid))?;
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid))
}
