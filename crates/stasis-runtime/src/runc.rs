//! A thin async wrapper over the `runc` command line.
//!
//! runc (not youki) because its checkpoint/restore drives CRIU completely, including the pipes,
//! external bind mounts and cgroups of a container (see PLATFORM.md).

use crate::RuntimeError;
use serde::Deserialize;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

#[derive(Clone, Debug)]
pub struct Runc {
    pub binary: PathBuf,
    pub root: PathBuf,
    pub criu: PathBuf,
}

#[derive(Debug, Deserialize)]
pub struct RuncState {
    pub pid: i32,
    pub status: String,
}

impl Runc {
    fn command(&self) -> Command {
        self.command_locked(None)
    }

    /// With `lock`, runc runs under `flock(1)` on that file: the lock is held exactly as long as
    /// runc (and the CRIU it waits for) lives, even if this process dies meanwhile, so a
    /// restarted server can wait for an operation its predecessor left running.
    fn command_locked(&self, lock: Option<&Path>) -> Command {
        let mut cmd = match lock {
            Some(lock) => {
                let mut c = Command::new("flock");
                c.arg(lock).arg(&self.binary);
                c
            }
            None => Command::new(&self.binary),
        };
        cmd.arg("--root").arg(&self.root).arg("--criu").arg(&self.criu);
        // The container's init must not inherit any host file: CRIU refuses to dump those.
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd
    }

    async fn run<I, S>(&self, what: &str, args: I) -> Result<Vec<u8>, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_locked(what, None, args).await
    }

    async fn run_locked<I, S>(&self, what: &str, lock: Option<&Path>, args: I) -> Result<Vec<u8>, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_locked_env(what, lock, args, &[]).await
    }

    /// With environment variables for runc and the CRIU (and CRIU's action scripts) it runs.
    async fn run_locked_env<I, S>(&self, what: &str, lock: Option<&Path>, args: I, env: &[(&str, String)]) -> Result<Vec<u8>, RuntimeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command_locked(lock);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().await.map_err(|e| RuntimeError::io(format!("spawn {}", self.binary.display()), e))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(RuntimeError::Command { what: what.into(), detail: last_lines(&out.stderr, 6) })
        }
    }

    /// `runc run --detach`: create and start in one go; returns the init's host pid.
    pub async fn run_detached(&self, id: &str, bundle: &Path, lock: &Path) -> Result<i32, RuntimeError> {
        let pid_file = bundle.join("init.pid");
        self.run_locked(
            "runc run",
            Some(lock),
            // No session keyring per sandbox: they all count against the one shared host uid's
            // key quota (kernel.keys.maxkeys, 200), which capped a host at ~145 sandboxes; the
            // sandbox cannot use keyrings anyway (keyctl is denied by its seccomp filter).
            [
                OsStr::new("run"),
                "--detach".as_ref(),
                "--no-new-keyring".as_ref(),
                "--bundle".as_ref(),
                bundle.as_os_str(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                id.as_ref(),
            ],
        )
        .await?;
        read_pid(&pid_file)
    }

    pub async fn state(&self, id: &str) -> Result<Option<RuncState>, RuntimeError> {
        let mut cmd = self.command();
        cmd.args(["state", id]);
        let out = cmd.output().await.map_err(|e| RuntimeError::io("spawn runc state", e))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("does not exist") || err.contains("not exist") {
                return Ok(None);
            }
            return Err(RuntimeError::Command { what: "runc state".into(), detail: last_lines(&out.stderr, 4) });
        }
        serde_json::from_slice(&out.stdout)
            .map(Some)
            .map_err(|e| RuntimeError::Command { what: "runc state".into(), detail: format!("unreadable output: {e}") })
    }

    /// Kill and delete the container; a container that does not exist is fine.
    pub async fn delete_force(&self, id: &str) -> Result<(), RuntimeError> {
        match self.run("runc delete", ["delete", "--force", id]).await {
            Ok(_) => Ok(()),
            Err(RuntimeError::Command { detail, .. }) if detail.contains("does not exist") || detail.contains("not exist") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checkpoint with CRIU. Unless `leave_running`, when this succeeds the container's processes
    /// are gone (CRIU kills them right after the dump, so nothing runs between the dump and the
    /// kill) and runc has destroyed the container. With it, the container stays as it was: a
    /// cgroup frozen beforehand is frozen again before CRIU lets the tasks go.
    pub async fn checkpoint(&self, id: &str, images: &Path, work: &Path, lock: &Path, leave_running: bool) -> Result<(), RuntimeError> {
        let mut args = vec![OsStr::new("checkpoint"), "--image-path".as_ref(), images.as_os_str(), "--work-path".as_ref(), work.as_os_str(), "--file-locks".as_ref()];
        if leave_running {
            args.push("--leave-running".as_ref());
        }
        args.push(id.as_ref());
        self.run_locked("runc checkpoint", Some(lock), args).await.map(drop)
    }

    /// Restore detached; returns the restored init's host pid.
    pub async fn restore(&self, id: &str, bundle: &Path, images: &Path, work: &Path, lock: &Path, env: &[(&str, String)]) -> Result<i32, RuntimeError> {
        let pid_file = bundle.join("init.pid");
        let _ = std::fs::remove_file(&pid_file);
        self.run_locked_env(
            "runc restore",
            Some(lock),
            [
                OsStr::new("restore"),
                "--detach".as_ref(),
                "--bundle".as_ref(),
                bundle.as_os_str(),
                "--image-path".as_ref(),
                images.as_os_str(),
                "--work-path".as_ref(),
                work.as_os_str(),
                "--file-locks".as_ref(),
                "--pid-file".as_ref(),
                pid_file.as_os_str(),
                id.as_ref(),
            ],
            env,
        )
        .await?;
        read_pid(&pid_file)
    }

    /// `runc exec`, waited for, with output captured.
    pub async fn exec(
        &self,
        id: &str,
        argv: &[String],
        env: &[(String, String)],
        cwd: &str,
        user: (u32, u32),
        timeout: Option<Duration>,
    ) -> Result<std::process::Output, RuntimeError> {
        let mut cmd = self.command();
        cmd.arg("exec").arg("--cwd").arg(cwd).arg("--user").arg(format!("{}:{}", user.0, user.1));
        for (k, v) in env {
            cmd.arg("--env").arg(format!("{k}={v}"));
        }
        cmd.arg(id).args(argv);
        let child = cmd.spawn().map_err(|e| RuntimeError::io("spawn runc exec", e))?;
        let wait = child.wait_with_output();
        let out = match timeout {
            Some(t) => tokio::time::timeout(t, wait).await.map_err(|_| RuntimeError::Command {
                what: "runc exec".into(),
                detail: format!("timed out after {t:?}"),
            })?,
            None => wait.await,
        };
        out.map_err(|e| RuntimeError::io("wait for runc exec", e))
    }
}

fn read_pid(pid_file: &Path) -> Result<i32, RuntimeError> {
    let text = std::fs::read_to_string(pid_file).map_err(|e| RuntimeError::io(format!("read {}", pid_file.display()), e))?;
    text.trim().parse().map_err(|_| RuntimeError::Command { what: "runc".into(), detail: format!("bad pid file content {text:?}") })
}

/// The last `n` non-empty lines of a command's stderr, for error messages.
pub fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
