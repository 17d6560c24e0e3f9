//! The baseline: what a user gets from runc and CRIU alone, run by hand on a Stasis sandbox's
//! own bundle. The rootfs stays mounted and the images go to a fresh directory each time.

use anyhow::{bail, Context};
use stasis_runtime::{RuntimeConfig, SandboxId};
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

/// `runc checkpoint` then `runc restore --detach` of a running sandbox; returns both durations
/// and the image size.
pub async fn pause_resume(cfg: &RuntimeConfig, id: &SandboxId) -> anyhow::Result<(Duration, Duration, u64)> {
    let sdir = cfg.data_dir.join("sandboxes").join(id.as_str());
    let images = sdir.join("baseline-images");
    let _ = std::fs::remove_dir_all(&images);
    std::fs::create_dir_all(&images)?;
    let images_s = images.to_string_lossy().to_string();
    let t = Instant::now();
    runc(cfg, &["checkpoint", "--image-path", &images_s, "--file-locks", id.as_str()]).await?;
    let pause = t.elapsed();
    let bytes = std::fs::read_dir(&images)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
    // PLATFORM.md: the images must be readable by the mapped root before restore.
    chown_r(&images, cfg.id_map.host_base)?;
    let bundle = sdir.join("bundle").to_string_lossy().to_string();
    let t = Instant::now();
    runc(cfg, &["restore", "--detach", "--bundle", &bundle, "--image-path", &images_s, "--file-locks", id.as_str()]).await?;
    let resume = t.elapsed();
    std::fs::remove_dir_all(&images)?;
    Ok((pause, resume, bytes))
}

/// `runc run --detach` of a copy of `like`'s bundle over a fresh overlay: the floor under any
/// runc-based create.
pub async fn create(cfg: &RuntimeConfig, like: &SandboxId) -> anyhow::Result<Duration> {
    let src = cfg.data_dir.join("sandboxes").join(like.as_str());
    let dir = cfg.data_dir.join("baseline-create");
    let _ = std::fs::remove_dir_all(&dir);
    for d in ["upper", "work", "bundle/rootfs"] {
        std::fs::create_dir_all(dir.join(d))?;
    }
    std::os::unix::fs::chown(dir.join("upper"), Some(cfg.id_map.host_base), Some(cfg.id_map.host_base))?;
    std::fs::copy(src.join("bundle/config.json"), dir.join("bundle/config.json"))?;
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(src.join("sandbox.json"))?)?;
    let lower = record["template_rootfs"].as_str().context("template_rootfs")?;
    let opts = format!(
        "lowerdir={lower},upperdir={},workdir={},index=on,nfs_export=on",
        dir.join("upper").display(),
        dir.join("work").display()
    );
    let rootfs = dir.join("bundle/rootfs");
    let bundle = dir.join("bundle").to_string_lossy().to_string();
    let t = Instant::now();
    let mount = Command::new("mount").args(["-t", "overlay", "overlay", "-o", &opts]).arg(&rootfs).status().await?;
    if !mount.success() {
        bail!("mount overlay failed");
    }
    runc(cfg, &["run", "--detach", "--bundle", &bundle, "stasisbaselinecreate"]).await?;
    let took = t.elapsed();
    runc(cfg, &["delete", "--force", "stasisbaselinecreate"]).await?;
    Command::new("umount").arg(&rootfs).status().await?;
    std::fs::remove_dir_all(&dir)?;
    Ok(took)
}

fn chown_r(dir: &Path, uid: u32) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        std::os::unix::fs::lchown(e.path(), Some(uid), Some(uid))?;
    }
    std::os::unix::fs::lchown(dir, Some(uid), Some(uid))
}
