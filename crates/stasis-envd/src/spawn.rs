//! Forking a process as a user, with pipes or a PTY.
#![allow(unsafe_code)]

use crate::reaper;
use crate::users::SandboxUser;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::pty::{openpty, Winsize};
use nix::sys::wait::WaitStatus;
use nix::unistd::{Gid, Uid};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use tokio::sync::oneshot;

nix::ioctl_write_ptr_bad!(tiocswinsz, libc::TIOCSWINSZ, libc::winsize);

/// What to run.
#[derive(Debug)]
pub struct SpawnSpec {
    pub cmd: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    pub user: SandboxUser,
    /// `Some((cols, rows))` runs the process on a new PTY.
    pub pty: Option<(u16, u16)>,
    pub stdin: bool,
}

/// A started process: its pid, its ends of the stdio, and its exit status to come.
#[derive(Debug)]
pub struct Spawned {
    pub pid: u32,
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    pub pty_master: Option<OwnedFd>,
    pub exit: oneshot::Receiver<WaitStatus>,
}

fn cloexec(fd: &impl AsFd) -> std::io::Result<()> {
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    Ok(())
}

/// Spawn `spec`, registering its exit with the reaper before the reaper can see it.
pub fn spawn(spec: SpawnSpec) -> std::io::Result<Spawned> {
    let mut cmd = Command::new(&spec.cmd);
    cmd.args(&spec.args).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));

    let guard = reaper::spawn_guard();
    let mut master = None;
    match spec.pty {
        Some((cols, rows)) => {
            let ws = Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
            let pty = openpty(Some(&ws), None).map_err(std::io::Error::from)?;
            // openpty's fds are inheritable; no other fork can happen meanwhile (spawn lock).
            cloexec(&pty.master)?;
            cloexec(&pty.slave)?;
            cmd.stdin(Stdio::from(pty.slave.try_clone()?))
                .stdout(Stdio::from(pty.slave.try_clone()?))
                .stderr(Stdio::from(pty.slave));
            master = Some(pty.master);
        }
        None => {
            cmd.stdin(if spec.stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
    }

    let is_pty = spec.pty.is_some();
    let switch_user = nix::unistd::geteuid().is_root() && spec.user.uid != 0;
    let groups: Vec<Gid> = spec.user.groups.iter().map(|g| Gid::from_raw(*g)).collect();
    let (uid, gid) = (Uid::from_raw(spec.user.uid), Gid::from_raw(spec.user.gid));
    let cwd = spec.cwd.clone();
    // SAFETY: the closure runs in the forked child before exec and only makes plain syscalls
    // (setsid, ioctl, setgroups, setgid, setuid, chdir); it allocates nothing (the group list
    // and cwd were prepared before the fork) and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid()?;
            if is_pty {
                // SAFETY: fd 0 is the PTY slave; TIOCSCTTY takes an int argument.
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if switch_user {
                nix::unistd::setgroups(&groups)?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(uid)?;
            }
            nix::unistd::chdir(&cwd)?;
            Ok(())
        });
    }

    let mut child = cmd.spawn()?;
    let pid = child.id();
    let exit = reaper::register(pid as i32, &guard);
    drop(guard);
    Ok(Spawned {
        pid,
        stdin: child.stdin.take().map(OwnedFd::from),
        stdout: child.stdout.take().map(OwnedFd::from),
        stderr: child.stderr.take().map(OwnedFd::from),
        pty_master: master,
        exit,
    })
    // `child` is dropped without waiting: the reaper owns its exit status.
}

/// Resize a PTY.
pub fn resize(master: &impl AsRawFd, cols: u16, rows: u16) -> std::io::Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer; the fd is a PTY master we own.
    unsafe { tiocswinsz(master.as_raw_fd(), &ws) }.map_err(std::io::Error::from)?;
    Ok(())
}
