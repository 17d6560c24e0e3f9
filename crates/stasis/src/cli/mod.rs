//! The client side of `stasis`: `stasis sandbox ...` and `stasis usage`, talking to a server
//! over the same HTTP API as the SDKs, through `stasis-sdk`. One module per subcommand; this
//! one holds what they share: error lines with hints, progress, and formatting.

mod create;
mod exec;
mod info;
mod kill;
mod list;
mod pause;
mod resume;
mod shell;
mod timeout;
mod usage;

use clap::Subcommand;
use stasis_sdk::{ConnectionConfig, Error};
use std::future::Future;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub use usage::Args as UsageArgs;

#[derive(Subcommand, Debug)]
pub enum SandboxCommand {
    /// Start a sandbox and print its id.
    Create(create::Args),
    /// List sandboxes (running and paused) as a table, or as JSON.
    List(list::Args),
    /// Show one sandbox.
    Info(info::Args),
    /// Pause sandboxes: memory, processes and files are saved; nothing runs until resumed.
    Pause(pause::Args),
    /// Resume (or connect to) a sandbox, setting its timeout.
    Resume(resume::Args),
    /// Kill sandboxes, running or paused, and delete their snapshots.
    Kill(kill::Args),
    /// Run a command in a running sandbox, stream its output and exit with its exit code.
    Exec(exec::Args),
    /// Open an interactive shell in a running sandbox.
    Shell(shell::Args),
    /// Set how long a sandbox lives from now.
    Timeout(timeout::Args),
}

/// Run a `stasis sandbox` subcommand; the process exit code.
pub async fn sandbox(config: ConnectionConfig, command: SandboxCommand) -> i32 {
    let result = match command {
        SandboxCommand::Create(a) => create::run(&config, a).await,
        SandboxCommand::List(a) => list::run(&config, a).await,
        SandboxCommand::Info(a) => info::run(&config, a).await,
        SandboxCommand::Pause(a) => pause::run(&config, a).await,
        SandboxCommand::Resume(a) => resume::run(&config, a).await,
        SandboxCommand::Kill(a) => kill::run(&config, a).await,
        SandboxCommand::Exec(a) => exec::run(&config, a).await,
        SandboxCommand::Shell(a) => shell::run(&config, a).await,
        SandboxCommand::Timeout(a) => timeout::run(&config, a).await,
    };
    finish(&config, result)
}

/// Run `stasis usage`; the process exit code.
pub async fn usage(config: ConnectionConfig, args: UsageArgs) -> i32 {
    let result = usage::run(&config, args).await;
    finish(&config, result)
}

/// What a subcommand failed with: the SDK error and what it was doing.
#[derive(Debug)]
pub struct Failure {
    doing: String,
    error: Error,
}

/// `Ok(exit code)` or a failure to report.
pub type CliResult = Result<i32, Failure>;

/// Attach what was being done to an SDK error.
pub trait Doing<T> {
    fn doing(self, what: impl Into<String>) -> Result<T, Failure>;
}

impl<T> Doing<T> for Result<T, Error> {
    fn doing(self, what: impl Into<String>) -> Result<T, Failure> {
        self.map_err(|error| Failure { doing: what.into(), error })
    }
}

fn finish(config: &ConnectionConfig, result: CliResult) -> i32 {
    match result {
        Ok(code) => code,
        Err(f) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}: {}", f.doing, one_line(&f.error.to_string()));
            eprintln!("hint: {}", hint(config, &f.error));
            1
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What to do about an error, in one line.
fn hint(config: &ConnectionConfig, e: &Error) -> String {
    let url = config.resolved_api_url();
    match e {
        Error::MissingApiKey => "set STASIS_API_KEY (or E2B_API_KEY); a server without --api-keys prints its generated key on first start and keeps it in <data-dir>/api-key".into(),
        Error::Auth { .. } => format!("the server at {url} does not accept this API key: check STASIS_API_KEY / E2B_API_KEY against its --api-keys"),
        Error::NotFound { .. } => "`stasis sandbox list` shows the sandboxes that exist; killed and expired ones are gone for good".into(),
        Error::Conflict { .. } => "the sandbox is paused already or busy with another operation; `stasis sandbox info <id>` shows its state".into(),
        Error::SandboxNotRunning { .. } => "the sandbox is paused or gone: `stasis sandbox resume <id>` resumes a paused one".into(),
        Error::Timeout { .. } => "the server or the sandbox did not answer in time; try again, or raise --timeout".into(),
        Error::InvalidArgument { .. } => "check the arguments: `stasis sandbox <command> --help` lists them".into(),
        Error::CommandExit { .. } => "the command ran and failed; its output is above".into(),
        Error::Transport(t) if t.is_connect() => format!("no server answers at {url}: start one with `stasis server`, or point STASIS_URL (or E2B_API_URL) at it"),
        _ => format!("see the server's log (stasis server at {url}) for details"),
    }
}

/// Await `fut`, showing a spinner with the elapsed time on a terminal; then one summary line.
pub async fn with_progress<T>(label: &str, fut: impl Future<Output = T>) -> (T, Duration) {
    let start = Instant::now();
    if !std::io::stderr().is_terminal() {
        let out = fut.await;
        return (out, start.elapsed());
    }
    let label_owned = label.to_owned();
    let spinner = tokio::spawn(async move {
        let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
        let mut i = 0;
        loop {
            eprint!("\r{} {label_owned} {:.1}s ", frames[i % frames.len()], start.elapsed().as_secs_f64());
            i += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let out = fut.await;
    spinner.abort();
    eprint!("\r\x1b[2K");
    (out, start.elapsed())
}

/// `5s`, `3m12s`, `2h05m`, `3d04h`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Parse `k=v`.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).filter(|(k, _)| !k.is_empty()).ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Print rows as aligned columns under a header.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = *w));
            }
        }
        println!("{}", out.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_pairs() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(7500), "2h05m");
        assert_eq!(human_duration(-90_000), "1d01h");
        assert_eq!(key_value("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert!(key_value("=b").is_err());
        assert!(key_value("ab").is_err());
    }
}
