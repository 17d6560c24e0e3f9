//! `stasis sandbox exec`: run a command, stream its output, exit with its exit code.

use super::{key_value, CliResult, Doing};
use stasis_sdk::{CommandEvent, CommandHandle, CommandOptions, ConnectionConfig, Sandbox};
use std::io::Write;
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The sandbox.
    id: String,
    /// The command; several words are quoted for the shell and joined.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
    /// Working directory.
    #[arg(long)]
    cwd: Option<String>,
    /// Run as this user.
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Environment variable KEY=VALUE (repeatable).
    #[arg(long, short = 'e', value_parser = key_value)]
    env: Vec<(String, String)>,
    /// Kill the command after this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    timeout: u64,
    /// Pass this program's stdin to the command.
    #[arg(long, short = 'i')]
    interactive: bool,
}

/// Quote a word for bash unless it is plainly safe.
fn quote(word: &str) -> String {
    let safe = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn command_line(words: &[String]) -> String {
    match words {
        [one] => one.clone(),
        many => many.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" "),
    }
}

pub async fn run(config: &ConnectionConfig, args: Args) -> CliResult {
    let sbx = Sandbox::attach(&args.id, config).await.doing(format!("look up sandbox {}", args.id))?;
    let mut opts = CommandOptions::new().stdin(args.interactive);
    opts.timeout = (args.timeout > 0).then(|| Duration::from_secs(args.timeout));
    opts.cwd = args.cwd;
    opts.user = args.user;
    opts.envs.extend(args.env);
    let cmd = command_line(&args.command);
    let mut handle = sbx.commands().run_background(&cmd, opts).await.doing(format!("start {cmd:?} in {}", args.id))?;
    let feeder = args.interactive.then(|| {
        let commands = sbx.commands();
        let pid = handle.pid();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = stdin.read(&mut buf).await {
                if n == 0 || commands.send_stdin(pid, &buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = commands.close_stdin(pid).await;
        })
    });
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    let mut code = 1;
    loop {
        let event = tokio::select! {
            event = handle.next_event() => event,
            // ^C stops the remote command too, as it would a local one.
            _ = tokio::signal::ctrl_c() => {
                interrupt(&sbx, &mut handle).await;
                code = 130;
                break;
            }
        };
        let Some(event) = event else { break };
        match event.doing(format!("run {cmd:?} in {}", args.id))? {
            CommandEvent::Stdout(b) | CommandEvent::Pty(b) => {
                let _ = stdout.write_all(&b).and_then(|_| stdout.flush());
            }
            CommandEvent::Stderr(b) => {
                let _ = stderr.write_all(&b);
            }
            CommandEvent::Exit { exit_code, .. } => code = if (0..=255).contains(&exit_code) { exit_code } else { 255 },
        }
    }
    if let Some(f) = feeder {
        f.abort();
    }
    Ok(code)
}

/// What ^C does to a local command, done to the remote one: SIGINT to its process group
/// (envd starts every command in a session of its own), then SIGKILL to the group if it has
/// not ended within two seconds.
async fn interrupt(sbx: &Sandbox, handle: &mut CommandHandle) {
    let pid = handle.pid();
    let signal_group = |sig: &str| format!("kill -{sig} -- -{pid} 2>/dev/null; true");
    let as_root = || CommandOptions::new().user("root").timeout(Duration::from_secs(10));
    let _ = sbx.commands().run_with(&signal_group("INT"), as_root()).await;
    let ended = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(event)) = handle.next_event().await {
            if matches!(event, CommandEvent::Exit { .. }) {
                return;
            }
        }
    })
    .await;
    if ended.is_err() {
        let _ = sbx.commands().run_with(&signal_group("KILL"), as_root()).await;
        let _ = handle.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_bash() {
        assert_eq!(command_line(&["echo hi | wc -c".into()]), "echo hi | wc -c");
        assert_eq!(command_line(&["ls".into(), "-la".into(), "/tmp".into()]), "ls -la /tmp");
        assert_eq!(command_line(&["echo".into(), "it's a $HOME".into()]), r"echo 'it'\''s a $HOME'");
    }
}
