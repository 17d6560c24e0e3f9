//! `stasis sandbox shell`: an interactive login shell on a PTY in the sandbox. The local
//! terminal is put in raw mode, keystrokes go to the PTY as typed, its output comes back as
//! it is written, and a resize of the local terminal (SIGWINCH) resizes the remote one.

use super::{CliResult, Doing};
use rustix::termios::{self, OptionalActions, Termios};
use stasis_sdk::{CommandEvent, ConnectionConfig, PtyOptions, PtySize, Sandbox};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandbox.
    id: String,
    /// Log in as this user.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Start in this directory.
    #[arg(long)]
    cwd: Option<String>,
}

/// The local terminal's mode before raw mode, restored on drop.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        raw.make_raw();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Now, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &self.saved);
    }
}

fn terminal_size() -> Option<PtySize> {
    let ws = termios::tcgetwinsize(std::io::stdout().as_fd()).or_else(|_| termios::tcgetwinsize(std::io::stdin().as_fd())).ok()?;
    (ws.ws_col > 0 && ws.ws_row > 0).then(|| PtySize { cols: u32::from(ws.ws_col), rows: u32::from(ws.ws_row) })
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let sbx = Sandbox::attach(&args.id, config).await.doing(format!("look up sandbox {}", args.id))?;
    let pty = sbx.pty();
    let opts = PtyOptions {
        size: terminal_size().unwrap_or(PtySize { cols: 80, rows: 24 }),
        cwd: args.cwd,
        user: args.user,
        ..Default::default()
    };
    let mut shell = pty.create(opts).await.doing(format!("open a shell in {}", args.id))?;
    let pid = shell.pid();
    let raw = RawMode::enter();

    // Keystrokes: a thread blocks on stdin; at end of input (a pipe, not a terminal) the shell
    // gets ^D, as a terminal would send it.
    let (keys_tx, mut keys) = mpsc::unbounded_channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 4096];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = keys_tx.send(vec![4]);
                    return;
                }
                Ok(n) => {
                    if keys_tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
            }
        }
    });
    let input_pty = pty.clone();
    let input = tokio::spawn(async move {
        while let Some(bytes) = keys.recv().await {
            if input_pty.send_input(pid, bytes).await.is_err() {
                return;
            }
        }
    });
    let resize_pty = pty.clone();
    let resizer = match signal(SignalKind::window_change()) {
        Ok(mut winch) => Some(tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some(size) = terminal_size() {
                    let _ = resize_pty.resize(pid, size).await;
                }
            }
        })),
        Err(_) => None,
    };

    let mut stdout = std::io::stdout();
    let mut code = 1;
    let mut failure = None;
    while let Some(event) = shell.next_event().await {
        match event {
            Ok(CommandEvent::Pty(b) | CommandEvent::Stdout(b) | CommandEvent::Stderr(b)) => {
                let _ = stdout.write_all(&b).and_then(|_| stdout.flush());
            }
            Ok(CommandEvent::Exit { exit_code, .. }) => code = if (0..=255).contains(&exit_code) { exit_code } else { 255 },
            Err(e) => failure = Some(e),
        }
    }
    input.abort();
    if let Some(r) = resizer {
        r.abort();
    }
    drop(raw);
    match failure {
        Some(e) => Err(e).doing(format!("shell in {}", args.id)),
        None => Ok(code),
    }
}
