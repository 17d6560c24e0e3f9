//! The init duties of envd: stdio hygiene and being the reaper of orphans.

use std::fs::OpenOptions;

/// Re-open stdin/stdout/stderr on this mount namespace's `/dev/null`: CRIU refuses to
/// checkpoint a process whose stdio points at a file of the host.
pub fn detach_stdio() -> std::io::Result<()> {
    let null = OpenOptions::new().read(true).write(true).open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)?;
    Ok(())
}

/// When envd is not PID 1 (tests on a host), become the subreaper of everything it starts, so
/// orphans are re-parented to envd and reaped the same way as in a sandbox.
pub fn become_subreaper() -> std::io::Result<()> {
    if std::process::id() != 1 {
        nix::sys::prctl::set_child_subreaper(true)?;
    }
    Ok(())
}

/// Close every descriptor above stdio that envd inherited (a runtime or a shell may leak some):
/// CRIU cannot checkpoint a sandbox whose init holds a pipe or file of the host.
pub fn close_inherited_fds() {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(rd) => rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => return,
    };
    for fd in fds.into_iter().filter(|fd| *fd > 2) {
        // The directory's own descriptor is in the list but already closed: EBADF, ignored.
        let _ = nix::unistd::close(fd);
    }
}

/// Lead a session of our own. CRIU dumps a tree only if its root is a session leader (or with
/// `--shell-job`), and envd must not share a session, or a controlling terminal, with whatever
/// started it. Fails harmlessly if envd already leads its process group.
pub fn own_session() {
    let _ = nix::unistd::setsid();
}
