//! Processes inside a sandbox (envd's `process.Process` service): commands, background
//! processes with handles, stdin, signals, and PTYs.

use crate::error::{Error, Result};
use crate::transport::{CallOpts, EnvdStream, SandboxTransport};
use stasis_proto::process::{
    CloseStdinRequest, ConnectRequest, DataEvent, Empty, ListRequest, ListResponse, ProcessConfig, ProcessEvent, ProcessEventResponse,
    ProcessInput, ProcessSelector, Pty as PtyConfig, SendInputRequest, SendSignalRequest, Signal, StartRequest, UpdateRequest,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use stasis_proto::process::{ProcessInfo, PtySize};

/// How long a command may run when its options name no limit, as in E2B's SDKs. envd kills
/// the process when it passes; use [`CommandOptions::no_timeout`] for servers.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A callback receiving output as it arrives (lossily decoded as UTF-8 per chunk).
pub type OutputCallback = Arc<dyn Fn(&str) + Send + Sync>;

/// Options of [`Commands::run_with`], [`Commands::run_background`] and [`Commands::connect`].
#[derive(Clone)]
pub struct CommandOptions {
    /// Extra environment variables (over the sandbox's).
    pub envs: BTreeMap<String, String>,
    /// Working directory (default: the user's home).
    pub cwd: Option<String>,
    /// Run as this Linux user (default: envd's default user, `user`).
    pub user: Option<String>,
    /// The process's lifetime: envd kills it when this passes. `None` means no limit.
    pub timeout: Option<Duration>,
    /// Keep stdin open for [`CommandHandle::send_stdin`].
    pub stdin: bool,
    /// Called with stdout as it arrives.
    pub on_stdout: Option<OutputCallback>,
    /// Called with stderr as it arrives.
    pub on_stderr: Option<OutputCallback>,
}

impl Default for CommandOptions {
    fn default() -> Self {
        Self { envs: BTreeMap::new(), cwd: None, user: None, timeout: Some(DEFAULT_COMMAND_TIMEOUT), stdin: false, on_stdout: None, on_stderr: None }
    }
}

impl std::fmt::Debug for CommandOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandOptions")
            .field("envs", &self.envs)
            .field("cwd", &self.cwd)
            .field("user", &self.user)
            .field("timeout", &self.timeout)
            .field("stdin", &self.stdin)
            .finish_non_exhaustive()
    }
}

impl CommandOptions {
    /// Defaults: 60 s limit, no stdin, default user, home directory.
    pub fn new() -> Self {
        Self::default()
    }
    /// Add an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.insert(key.into(), value.into());
        self
    }
    /// Run in this directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }
    /// Run as this user (`root`, `user`, ...).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }
    /// Kill the process after this long.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
    /// Let the process run until it ends by itself (servers, daemons).
    pub fn no_timeout(mut self) -> Self {
        self.timeout = None;
        self
    }
    /// Keep stdin open.
    pub fn stdin(mut self, on: bool) -> Self {
        self.stdin = on;
        self
    }
    /// Receive stdout as it arrives.
    pub fn on_stdout(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_stdout = Some(Arc::new(f));
        self
    }
    /// Receive stderr as it arrives.
    pub fn on_stderr(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_stderr = Some(Arc::new(f));
        self
    }

    fn call_opts(&self) -> CallOpts {
        CallOpts { user: self.user.clone(), deadline: self.timeout.filter(|t| !t.is_zero()), keepalive: true }
    }
}

/// A finished command.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandResult {
    /// The exit code (0: a result; anything else is an [`Error::CommandExit`]).
    pub exit_code: i32,
    /// Everything written to stdout (a PTY's output for PTY processes).
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
    /// envd's description of an abnormal end (e.g. `signal: killed`).
    pub error: Option<String>,
}

/// One thing a running process did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandEvent {
    /// Bytes on stdout.
    Stdout(Vec<u8>),
    /// Bytes on stderr.
    Stderr(Vec<u8>),
    /// Bytes from a PTY (stdout and stderr together, as a terminal shows them).
    Pty(Vec<u8>),
    /// The process ended; no events follow.
    Exit { exit_code: i32, error: Option<String> },
}

/// Commands in one sandbox: [`Sandbox::commands`](crate::Sandbox::commands).
#[derive(Clone, Debug)]
pub struct Commands {
    t: SandboxTransport,
}

fn pid_selector(pid: u32) -> ProcessSelector {
    ProcessSelector::Pid(pid)
}

const START: &str = "process.Process/Start";
const CONNECT: &str = "process.Process/Connect";

impl Commands {
    pub(crate) fn new(t: SandboxTransport) -> Self {
        Self { t }
    }

    /// Run `cmd` with `bash -l -c` and wait for it. A non-zero exit is
    /// [`Error::CommandExit`].
    ///
    /// ```no_run
    /// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
    /// let out = sbx.commands().run("echo hi").await?;
    /// assert_eq!(out.stdout, "hi\n");
    /// # Ok(()) }
    /// ```
    pub async fn run(&self, cmd: &str) -> Result<CommandResult> {
        self.run_with(cmd, CommandOptions::default()).await
    }

    /// [`Commands::run`] with options: environment, directory, user, timeout, output callbacks.
    pub async fn run_with(&self, cmd: &str, opts: CommandOptions) -> Result<CommandResult> {
        self.run_background(cmd, opts).await?.wait().await
    }

    /// Start `cmd` and return as soon as it runs, with a handle to stream its output, write to
    /// its stdin, wait for it or kill it. Dropping the handle disconnects; the process goes on
    /// (until its timeout: pass [`CommandOptions::no_timeout`] for servers).
    ///
    /// ```no_run
    /// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
    /// use stasis_sdk::CommandOptions;
    /// let server = sbx.commands().run_background("python3 -m http.server 8000", CommandOptions::new().no_timeout()).await?;
    /// println!("serving as pid {}", server.pid());
    /// # Ok(()) }
    /// ```
    pub async fn run_background(&self, cmd: &str, opts: CommandOptions) -> Result<CommandHandle> {
        let req = StartRequest {
            process: Some(ProcessConfig {
                cmd: "/bin/bash".into(),
                args: vec!["-l".into(), "-c".into(), cmd.into()],
                envs: opts.envs.clone(),
                cwd: opts.cwd.clone(),
            }),
            pty: None,
            tag: None,
            stdin: Some(opts.stdin),
        };
        let stream = self.t.stream(START, &req, opts.call_opts()).await?;
        CommandHandle::start(self.t.clone(), stream, opts.on_stdout, opts.on_stderr).await
    }

    /// Attach to a running process by pid (for example one started before a pause). Only
    /// `on_stdout`, `on_stderr` and `timeout` of `opts` apply.
    pub async fn connect(&self, pid: u32, opts: CommandOptions) -> Result<CommandHandle> {
        let req = ConnectRequest { process: pid_selector(pid) };
        let call = CallOpts { user: None, deadline: opts.timeout.filter(|t| !t.is_zero()), keepalive: true };
        let stream = self.t.stream(CONNECT, &req, call).await?;
        CommandHandle::start(self.t.clone(), stream, opts.on_stdout, opts.on_stderr).await
    }

    /// The processes envd started and that still run.
    pub async fn list(&self) -> Result<Vec<ProcessInfo>> {
        let resp: ListResponse = self.t.unary("process.Process/List", &ListRequest {}, CallOpts::default()).await?;
        Ok(resp.processes)
    }

    /// Write to a process's stdin (it must have been started with [`CommandOptions::stdin`]).
    pub async fn send_stdin(&self, pid: u32, data: impl AsRef<[u8]>) -> Result<()> {
        let req = SendInputRequest { process: pid_selector(pid), input: ProcessInput::Stdin(data.as_ref().to_vec()) };
        self.t.unary::<_, Empty>("process.Process/SendInput", &req, CallOpts::default()).await.map(drop)
    }

    /// Close a process's stdin (it reads end of file).
    pub async fn close_stdin(&self, pid: u32) -> Result<()> {
        let req = CloseStdinRequest { process: pid_selector(pid) };
        self.t.unary::<_, Empty>("process.Process/CloseStdin", &req, CallOpts::default()).await.map(drop)
    }

    /// SIGKILL a process. `false` if there was no such process.
    pub async fn kill(&self, pid: u32) -> Result<bool> {
        self.signal(pid, Signal::Sigkill).await
    }

    /// SIGTERM a process. `false` if there was no such process.
    pub async fn terminate(&self, pid: u32) -> Result<bool> {
        self.signal(pid, Signal::Sigterm).await
    }

    async fn signal(&self, pid: u32, signal: Signal) -> Result<bool> {
        let req = SendSignalRequest { process: pid_selector(pid), signal };
        match self.t.unary::<_, Empty>("process.Process/SendSignal", &req, CallOpts::default()).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Options of [`Pty::create`].
#[derive(Clone, Debug)]
pub struct PtyOptions {
    /// Terminal size.
    pub size: PtySize,
    /// Extra environment (`TERM`, `LANG` and `LC_ALL` default as in E2B's SDKs).
    pub envs: BTreeMap<String, String>,
    /// Working directory (default: the user's home).
    pub cwd: Option<String>,
    /// Log in as this user (default: envd's default user).
    pub user: Option<String>,
    /// The shell's lifetime; `None` (the default here) means no limit.
    pub timeout: Option<Duration>,
}

impl Default for PtyOptions {
    fn default() -> Self {
        Self { size: PtySize { cols: 80, rows: 24 }, envs: BTreeMap::new(), cwd: None, user: None, timeout: None }
    }
}

/// Interactive terminals: a login `bash -i -l` on a PTY. Its output arrives as
/// [`CommandEvent::Pty`]; input goes through [`Pty::send_input`].
#[derive(Clone, Debug)]
pub struct Pty {
    t: SandboxTransport,
}

impl Pty {
    pub(crate) fn new(t: SandboxTransport) -> Self {
        Self { t }
    }

    /// Start a shell on a new PTY.
    ///
    /// ```no_run
    /// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
    /// use stasis_sdk::{CommandEvent, PtyOptions, PtySize};
    /// let pty = sbx.pty();
    /// let mut shell = pty.create(PtyOptions::default()).await?;
    /// pty.send_input(shell.pid(), "echo hi; exit\n").await?;
    /// pty.resize(shell.pid(), PtySize { cols: 120, rows: 40 }).await?;
    /// while let Some(event) = shell.next_event().await {
    ///     if let CommandEvent::Pty(bytes) = event? {
    ///         print!("{}", String::from_utf8_lossy(&bytes));
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, opts: PtyOptions) -> Result<CommandHandle> {
        let mut envs = opts.envs;
        for (k, v) in [("TERM", "xterm-256color"), ("LANG", "C.UTF-8"), ("LC_ALL", "C.UTF-8")] {
            envs.entry(k.into()).or_insert_with(|| v.into());
        }
        let req = StartRequest {
            process: Some(ProcessConfig { cmd: "/bin/bash".into(), args: vec!["-i".into(), "-l".into()], envs, cwd: opts.cwd }),
            pty: Some(PtyConfig { size: Some(opts.size) }),
            tag: None,
            stdin: None,
        };
        let call = CallOpts { user: opts.user, deadline: opts.timeout.filter(|t| !t.is_zero()), keepalive: true };
        let stream = self.t.stream(START, &req, call).await?;
        CommandHandle::start(self.t.clone(), stream, None, None).await
    }

    /// Attach to a running PTY process.
    pub async fn connect(&self, pid: u32) -> Result<CommandHandle> {
        Commands::new(self.t.clone()).connect(pid, CommandOptions::new().no_timeout()).await
    }

    /// Type into the terminal.
    pub async fn send_input(&self, pid: u32, data: impl AsRef<[u8]>) -> Result<()> {
        let req = SendInputRequest { process: pid_selector(pid), input: ProcessInput::Pty(data.as_ref().to_vec()) };
        self.t.unary::<_, Empty>("process.Process/SendInput", &req, CallOpts::default()).await.map(drop)
    }

    /// Change the terminal's size (the shell gets SIGWINCH).
    pub async fn resize(&self, pid: u32, size: PtySize) -> Result<()> {
        let req = UpdateRequest { process: pid_selector(pid), pty: Some(PtyConfig { size: Some(size) }) };
        self.t.unary::<_, Empty>("process.Process/Update", &req, CallOpts::default()).await.map(drop)
    }

    /// SIGKILL the shell. `false` if there was no such process.
    pub async fn kill(&self, pid: u32) -> Result<bool> {
        Commands::new(self.t.clone()).kill(pid).await
    }
}

/// A running process: stream its events, wait for it, feed its stdin, kill it.
///
/// Its output is read in a background task from the moment it starts (so output callbacks
/// fire even if nobody polls the handle), and buffered for [`next_event`](Self::next_event)
/// and [`wait`](Self::wait).
pub struct CommandHandle {
    pid: u32,
    commands: Commands,
    events: mpsc::UnboundedReceiver<Result<CommandEvent>>,
    reader: JoinHandle<()>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    ended: Option<(i32, Option<String>)>,
}

impl std::fmt::Debug for CommandHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandHandle").field("pid", &self.pid).field("ended", &self.ended).finish_non_exhaustive()
    }
}

impl CommandHandle {
    async fn start(t: SandboxTransport, mut stream: EnvdStream<ProcessEventResponse>, on_stdout: Option<OutputCallback>, on_stderr: Option<OutputCallback>) -> Result<Self> {
        let pid = loop {
            match stream.next().await {
                Some(Ok(ProcessEventResponse { event: ProcessEvent::Start(s) })) => break s.pid,
                Some(Ok(ProcessEventResponse { event: ProcessEvent::Keepalive(_) })) => continue,
                Some(Ok(other)) => return Err(Error::Protocol(format!("expected a start event, got {other:?}"))),
                Some(Err(e)) => return Err(e),
                None => return Err(Error::Protocol("process stream ended before its start event".into())),
            }
        };
        let (tx, events) = mpsc::unbounded_channel();
        let reader = tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let event = match msg {
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                    Ok(ProcessEventResponse { event }) => event,
                };
                let out = match event {
                    ProcessEvent::Data(DataEvent::Stdout(b)) => {
                        if let Some(cb) = &on_stdout {
                            cb(&String::from_utf8_lossy(&b));
                        }
                        CommandEvent::Stdout(b)
                    }
                    ProcessEvent::Data(DataEvent::Stderr(b)) => {
                        if let Some(cb) = &on_stderr {
                            cb(&String::from_utf8_lossy(&b));
                        }
                        CommandEvent::Stderr(b)
                    }
                    ProcessEvent::Data(DataEvent::Pty(b)) => CommandEvent::Pty(b),
                    ProcessEvent::End(end) => {
                        let _ = tx.send(Ok(CommandEvent::Exit { exit_code: end.exit_code, error: end.error.filter(|e| !e.is_empty()) }));
                        return;
                    }
                    ProcessEvent::Start(_) | ProcessEvent::Keepalive(_) => continue,
                };
                if tx.send(Ok(out)).is_err() {
                    return;
                }
            }
        });
        Ok(Self { pid, commands: Commands::new(t), events, reader, stdout: Vec::new(), stderr: Vec::new(), ended: None })
    }

    /// The process id inside the sandbox.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next thing the process did; `None` after [`CommandEvent::Exit`].
    pub async fn next_event(&mut self) -> Option<Result<CommandEvent>> {
        if self.ended.is_some() {
            return None;
        }
        let event = match self.events.recv().await {
            Some(e) => e,
            None => {
                self.ended = Some((-1, Some("disconnected".into())));
                return Some(Err(Error::Protocol("the process stream ended before the process did".into())));
            }
        };
        match &event {
            Ok(CommandEvent::Stdout(b) | CommandEvent::Pty(b)) => self.stdout.extend_from_slice(b),
            Ok(CommandEvent::Stderr(b)) => self.stderr.extend_from_slice(b),
            Ok(CommandEvent::Exit { exit_code, error }) => self.ended = Some((*exit_code, error.clone())),
            Err(_) => self.ended = Some((-1, None)),
        }
        Some(event)
    }

    /// Wait for the process to end. A non-zero exit code is [`Error::CommandExit`]; PTY output
    /// is returned as stdout.
    pub async fn wait(mut self) -> Result<CommandResult> {
        while let Some(event) = self.next_event().await {
            event?;
        }
        let (exit_code, error) = self.ended.clone().unwrap_or((-1, None));
        let stdout = String::from_utf8_lossy(&self.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&self.stderr).into_owned();
        if exit_code != 0 {
            return Err(Error::CommandExit { exit_code, stdout, stderr, error });
        }
        Ok(CommandResult { exit_code, stdout, stderr, error })
    }

    /// Output read so far through [`next_event`](Self::next_event).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Error output read so far through [`next_event`](Self::next_event).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// Write to the process's stdin.
    pub async fn send_stdin(&self, data: impl AsRef<[u8]>) -> Result<()> {
        self.commands.send_stdin(self.pid, data).await
    }

    /// Close the process's stdin.
    pub async fn close_stdin(&self) -> Result<()> {
        self.commands.close_stdin(self.pid).await
    }

    /// SIGKILL the process. `false` if it had already ended.
    pub async fn kill(&self) -> Result<bool> {
        self.commands.kill(self.pid).await
    }

    /// Stop receiving events; the process goes on.
    pub fn disconnect(self) {}
}

impl Drop for CommandHandle {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
