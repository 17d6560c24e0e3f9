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
