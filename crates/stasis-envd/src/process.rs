//! Tracked processes: their output fan-out, input, exit, and the table `List`/`Connect` read.
//!
//! Each process has a list of subscribers (the `Start` stream and any `Connect` streams). Output
//! is read from its pipes or PTY by pump tasks as fast as the process writes it and queued to
//! every live subscriber. A process never blocks on envd: a client that does not read (the
//! Python SDK's `background=True` reads only in `wait()`) must not stall a server's logging.
//! Memory stays bounded instead by a per-subscriber byte budget: output waits (at most
//! [`LAG_GRACE`]) for a subscriber over budget to catch up, so a slow but reading client still
//! gets every byte; one that stays that far behind is dropped and its stream ends with
//! `resource_exhausted` (it can re-attach with `Connect`). A subscriber whose client went away is dropped; with no subscriber the output is
//! read and discarded. Exited processes are kept (a bounded number) so that
//! `Connect` can replay `start` + `end`.
//!
//! All of it is plain memory, pipes and a PTY: CRIU checkpoints and restores it with envd, so the
//! same pids are listed and re-attachable after a resume.

use crate::spawn::{self, SpawnSpec};
use nix::sys::signal::Signal as NixSignal;
use nix::sys::wait::WaitStatus;
use nix::unistd::Pid;
use stasis_proto::connect::ConnectError;
use stasis_proto::process::{
    DataEvent, EndEvent, ProcessConfig, ProcessEvent, ProcessInfo, ProcessSelector, StartEvent,
};
use std::collections::{HashMap, VecDeque};
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::AsyncWriteExt;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch, Notify};

const READ_CHUNK: usize = 32 * 1024;
/// How long output waits for a subscriber over its budget before dropping it.
pub const LAG_GRACE: Duration = Duration::from_secs(5);
/// Accounting overhead of one queued event beyond its payload.
const EVENT_OVERHEAD: usize = 64;
/// After the process exits, output still arriving from grandchildren that kept the pipe is
/// read for at most this long before `end` is sent.
const DRAIN_AFTER_EXIT: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Input {
    None,
    Pipe(pipe::Sender),
    Pty,
    Closed,
}

enum Delivery {
    Event(ProcessEvent),
    Overflow,
}

struct Subscriber {
    tx: mpsc::UnboundedSender<Delivery>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

/// The receiving side of a subscription: events in order, or an error if this subscriber fell
/// more than the budget behind.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Delivery>,
    queued: Arc<AtomicUsize>,
    drained: Arc<Notify>,
}

impl Subscription {
    pub async fn recv(&mut self) -> Option<Result<ProcessEvent, ConnectError>> {
        match self.rx.recv().await? {
            Delivery::Event(ev) => {
                self.queued.fetch_sub(cost(&ev), Ordering::SeqCst);
                self.drained.notify_one();
                Some(Ok(ev))
            }
            Delivery::Overflow => Some(Err(ConnectError::new(
                stasis_proto::connect::Code::ResourceExhausted,
                "the client fell too far behind the process's output; reconnect with Connect",
            ))),
        }
    }
}

fn cost(ev: &ProcessEvent) -> usize {
    EVENT_OVERHEAD
        + match ev {
            ProcessEvent::Data(DataEvent::Stdout(b) | DataEvent::Stderr(b) | DataEvent::Pty(b)) => b.len(),
            _ => 0,
        }
}

struct Fanout {
    subscribers: Vec<Subscriber>,
    end: Option<EndEvent>,
}

/// One process started through envd.
pub struct Proc {
    pub pid: u32,
    pub tag: Option<String>,
    pub config: ProcessConfig,
    input: tokio::sync::Mutex<Input>,
    pty: Mutex<Option<Arc<AsyncFd<OwnedFd>>>>,
    fanout: Mutex<Fanout>,
    /// Set when the `Start` request's deadline killed the process.
    deadline_killed: AtomicBool,
    /// Bytes of output a subscriber may have queued before it is dropped.
    budget: usize,
}

impl Proc {
    /// Subscribe to this process's events: `start` first, then live output, then `end`.
    pub fn subscribe(&self) -> Subscription {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let drained = Arc::new(Notify::new());
        let sub = Subscriber { tx, queued: queued.clone(), drained: drained.clone() };
        let mut f = lock(&self.fanout);
        sub.deliver(ProcessEvent::Start(StartEvent { pid: self.pid }));
        match &f.end {
            Some(end) => {
                sub.deliver(ProcessEvent::End(end.clone()));
            }
            None => f.subscribers.push(sub),
        }
        Subscription { rx, queued, drained }
    }

    pub fn end(&self) -> Option<EndEvent> {
        lock(&self.fanout).end.clone()
    }

    pub fn deadline_killed(&self) -> bool {
        self.deadline_killed.load(Ordering::SeqCst)
    }

    pub fn info(&self) -> ProcessInfo {
        ProcessInfo { config: self.config.clone(), pid: self.pid, tag: self.tag.clone() }
    }

    /// Queue an event to every subscriber, dropping those that are gone or still over budget
    /// after [`LAG_GRACE`].
    async fn broadcast(&self, ev: ProcessEvent) {
        let c = cost(&ev);
        let budget = self.budget;
        let laggards: Vec<_> = lock(&self.fanout)
            .subscribers
            .iter()
            .filter(|s| s.queued.load(Ordering::SeqCst) + c > budget && !s.tx.is_closed())
            .map(|s| (s.queued.clone(), s.drained.clone()))
            .collect();
        let deadline = tokio::time::Instant::now() + LAG_GRACE;
        for (queued, drained) in laggards {
            while queued.load(Ordering::SeqCst) + c > budget {
                if tokio::time::timeout_at(deadline, drained.notified()).await.is_err() {
                    break;
                }
            }
        }
        lock(&self.fanout).subscribers.retain(|s| {
            if s.queued.load(Ordering::SeqCst) + c > budget {
                let _ = s.tx.send(Delivery::Overflow);
                return false;
            }
            s.deliver(ev.clone())
        });
    }

    /// Write to the process's stdin or PTY.
    pub async fn write_input(&self, data: &[u8], to_pty: bool) -> Result<(), ConnectError> {
        let mut input = self.input.lock().await;
        match (&mut *input, to_pty) {
            (Input::Pipe(tx), false) => tx
                .write_all(data)
                .await
                .map_err(|e| ConnectError::failed_precondition(format!("writing to stdin: {e}"))),
            (Input::Pty, _) => {
                let pty = lock(&self.pty).clone().ok_or_else(|| ConnectError::failed_precondition("process has exited"))?;
                write_pty(&pty, data).await.map_err(|e| ConnectError::failed_precondition(format!("writing to pty: {e}")))
            }
            (Input::Pipe(_), true) => Err(ConnectError::invalid_argument("process was not started with a pty")),
            (Input::None, _) => Err(ConnectError::failed_precondition(
                "process was started without stdin (start it with stdin: true)",
            )),
            (Input::Closed, _) => Err(ConnectError::failed_precondition("stdin of the process is closed")),
        }
    }

    /// Close the process's stdin (EOF). PTY processes take Ctrl-D as input instead.
    pub async fn close_stdin(&self) -> Result<(), ConnectError> {
        let mut input = self.input.lock().await;
        match &*input {
            Input::Pty => Err(ConnectError::failed_precondition("cannot close stdin of a pty process; send Ctrl-D")),
            _ => {
                *input = Input::Closed;
                Ok(())
            }
        }
    }

    pub fn resize(&self, cols: u32, rows: u32) -> Result<(), ConnectError> {
        let pty = lock(&self.pty).clone().ok_or_else(|| ConnectError::failed_precondition("process was not started with a pty or has exited"))?;
        let clamp = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
        spawn::resize(pty.get_ref(), clamp(cols), clamp(rows)).map_err(|e| ConnectError::internal(format!("resizing pty: {e}")))
    }

    pub fn signal(&self, sig: NixSignal) -> Result<(), ConnectError> {
        if self.end().is_some() {
            return Err(ConnectError::not_found(format!("process with pid {} has exited", self.pid)));
        }
        nix::sys::signal::kill(Pid::from_raw(self.pid as i32), sig)
            .map_err(|e| ConnectError::internal(format!("sending {sig} to {}: {e}", self.pid)))
    }
}

async fn write_pty(pty: &AsyncFd<OwnedFd>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let mut guard = pty.writable().await?;
        match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(std::io::Error::from)) {
            Ok(Ok(n)) => data = &data[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
    Ok(())
}

impl Subscriber {
    /// Queue one event; `false` if the subscriber is gone.
    fn deliver(&self, ev: ProcessEvent) -> bool {
        self.queued.fetch_add(cost(&ev), Ordering::SeqCst);
        self.tx.send(Delivery::Event(ev)).is_ok()
    }
}

struct Table {
    running: HashMap<u32, Arc<Proc>>,
    exited: VecDeque<Arc<Proc>>,
}

/// All processes envd started.
pub struct ProcessManager {
    table: Mutex<Table>,
    exited_keep: usize,
    subscriber_budget: usize,
}

/// A process to start, with everything resolved.
pub struct StartSpec {
    pub spawn: SpawnSpec,
    pub config: ProcessConfig,
    pub tag: Option<String>,
    /// `Connect-Timeout-Ms` of the `Start` request: the process's lifetime.
    pub lifetime: Option<Duration>,
}

impl ProcessManager {
    pub fn new(exited_keep: usize, subscriber_budget: usize) -> Self {
        Self {
            table: Mutex::new(Table { running: HashMap::new(), exited: VecDeque::new() }),
            exited_keep,
            subscriber_budget,
        }
    }

    /// Spawn a process; the returned receiver gets `start` first.
    pub fn start(self: &Arc<Self>, spec: StartSpec) -> std::io::Result<(Arc<Proc>, Subscription)> {
        let is_pty = spec.spawn.pty.is_some();
        let stdin = spec.spawn.stdin;
        let spawned = spawn::spawn(spec.spawn)?;
        let pty = match spawned.pty_master {
            Some(master) => {
                nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
                Some(Arc::new(crate::fdio::register(master)?))
            }
            None => None,
        };
        let input = match (is_pty, spawned.stdin) {
            (true, _) => Input::Pty,
            (false, Some(fd)) if stdin => Input::Pipe(pipe::Sender::from_owned_fd(fd)?),
            _ => Input::None,
        };
        let proc = Arc::new(Proc {
            pid: spawned.pid,
            tag: spec.tag,
            config: spec.config,
            input: tokio::sync::Mutex::new(input),
            pty: Mutex::new(pty.clone()),
            fanout: Mutex::new(Fanout { subscribers: Vec::new(), end: None }),
            deadline_killed: AtomicBool::new(false),
            budget: self.subscriber_budget,
        });
        let rx = proc.subscribe();
        lock(&self.table).running.insert(proc.pid, proc.clone());

        let (exited_tx, exited_rx) = watch::channel(false);
        let mut pumps = Vec::new();
        if let Some(pty) = pty {
            pumps.push(tokio::spawn(pump_pty(proc.clone(), pty, exited_rx.clone())));
        }
        for (fd, is_err) in [(spawned.stdout, false), (spawned.stderr, true)] {
            if let Some(fd) = fd {
                let rx = pipe::Receiver::from_owned_fd(fd)?;
                pumps.push(tokio::spawn(pump_pipe(proc.clone(), rx, is_err, exited_rx.clone())));
            }
        }

        if let Some(lifetime) = spec.lifetime {
            let p = proc.clone();
            tokio::spawn(async move {
                tokio::time::sleep(lifetime).await;
                if p.end().is_none() {
                    p.deadline_killed.store(true, Ordering::SeqCst);
                    let _ = nix::sys::signal::kill(Pid::from_raw(p.pid as i32), NixSignal::SIGKILL);
                }
            });
        }

        let manager = self.clone();
        let p = proc.clone();
        let exit = spawned.exit;
        tokio::spawn(async move {
            let status = exit.await.ok();
            let _ = exited_tx.send(true);
            for pump in pumps {
                let _ = pump.await;
            }
            let end = end_event(status);
            let subs = {
                let mut f = lock(&p.fanout);
                f.end = Some(end.clone());
                std::mem::take(&mut f.subscribers)
            };
            manager.retire(&p);
            // Release the PTY and stdin of a finished process.
            lock(&p.pty).take();
            if let Ok(mut input) = p.input.try_lock() {
                *input = Input::Closed;
            }
            for sub in subs {
                // After all of its data; `end` is never refused for the budget.
                sub.deliver(ProcessEvent::End(end.clone()));
            }
        });
        Ok((proc, rx))
    }

    fn retire(&self, p: &Arc<Proc>) {
        let mut t = lock(&self.table);
        t.running.remove(&p.pid);
        t.exited.push_back(p.clone());
        while t.exited.len() > self.exited_keep {
            t.exited.pop_front();
        }
    }

    /// Running processes.
    pub fn list(&self) -> Vec<ProcessInfo> {
        let t = lock(&self.table);
        let mut v: Vec<_> = t.running.values().map(|p| p.info()).collect();
        v.sort_by_key(|p| p.pid);
        v
    }

    /// A running process.
    pub fn running(&self, sel: &ProcessSelector) -> Result<Arc<Proc>, ConnectError> {
        let t = lock(&self.table);
        let found = match sel {
            ProcessSelector::Pid(pid) => t.running.get(pid).cloned(),
            ProcessSelector::Tag(tag) => t.running.values().find(|p| p.tag.as_deref() == Some(tag)).cloned(),
        };
        found.ok_or_else(|| not_found(sel))
    }

    /// A running process, or a recently exited one.
    pub fn any(&self, sel: &ProcessSelector) -> Result<Arc<Proc>, ConnectError> {
        if let Ok(p) = self.running(sel) {
            return Ok(p);
        }
        let t = lock(&self.table);
        let found = t.exited.iter().rev().find(|p| match sel {
            ProcessSelector::Pid(pid) => p.pid == *pid,
            ProcessSelector::Tag(tag) => p.tag.as_deref() == Some(tag),
        });
        found.cloned().ok_or_else(|| not_found(sel))
    }
}

fn not_found(sel: &ProcessSelector) -> ConnectError {
    match sel {
        ProcessSelector::Pid(pid) => ConnectError::not_found(format!("process with pid {pid} not found")),
        ProcessSelector::Tag(tag) => ConnectError::not_found(format!("process with tag {tag:?} not found")),
    }
}

/// Go's `ProcessState.String()` wording, which E2B's envd reports as `status`.
fn end_event(status: Option<WaitStatus>) -> EndEvent {
    match status {
        Some(WaitStatus::Exited(_, code)) => {
            EndEvent { exit_code: code, exited: true, status: format!("exit status {code}"), error: None }
        }
        Some(WaitStatus::Signaled(_, sig, core)) => {
            let name = match sig {
                NixSignal::SIGKILL => "killed".to_string(),
                NixSignal::SIGTERM => "terminated".to_string(),
                NixSignal::SIGINT => "interrupt".to_string(),
                NixSignal::SIGHUP => "hangup".to_string(),
                NixSignal::SIGQUIT => "quit".to_string(),
                NixSignal::SIGABRT => "aborted".to_string(),
                NixSignal::SIGSEGV => "segmentation fault".to_string(),
                NixSignal::SIGPIPE => "broken pipe".to_string(),
                NixSignal::SIGBUS => "bus error".to_string(),
                NixSignal::SIGFPE => "floating point exception".to_string(),
                NixSignal::SIGUSR1 => "user defined signal 1".to_string(),
                NixSignal::SIGUSR2 => "user defined signal 2".to_string(),
                other => other.as_str().to_lowercase(),
            };
            let status = if core { format!("signal: {name} (core dumped)") } else { format!("signal: {name}") };
            EndEvent { exit_code: -1, exited: false, status, error: None }
        }
        _ => EndEvent {
            exit_code: -1,
            exited: false,
            status: "unknown".into(),
            error: Some("exit status of the process was lost".into()),
        },
    }
}

fn data_event(bytes: &[u8], is_err: bool) -> ProcessEvent {
    ProcessEvent::Data(if is_err { DataEvent::Stderr(bytes.to_vec()) } else { DataEvent::Stdout(bytes.to_vec()) })
}

async fn pump_pipe(proc: Arc<Proc>, rx: pipe::Receiver, is_err: bool, mut exited: watch::Receiver<bool>) {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        tokio::select! {
            biased;
            _ = exited_signal(&mut exited) => break,
            r = rx.readable() => {
                if r.is_err() { return; }
                match rx.try_read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => proc.broadcast(data_event(&buf[..n], is_err)).await,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
    // The process has exited: take what is already in the pipe, and what grandchildren still
    // holding it write within a short grace period.
    let deadline = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
    loop {
        match rx.try_read(&mut buf) {
            Ok(0) => return,
            Ok(n) => proc.broadcast(data_event(&buf[..n], is_err)).await,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if tokio::time::timeout_at(deadline, rx.readable()).await.is_err() {
                    break;
                }
            }
            Err(_) => return,
        }
    }
    // Background jobs (`server &`) still hold the pipe. Closing it would kill them with SIGPIPE
    // at their next write, so keep reading — and discarding — until they let go of it.
    tokio::spawn(async move {
        loop {
            if rx.readable().await.is_err() {
                return;
            }
            match rx.try_read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    });
}

async fn pump_pty(proc: Arc<Proc>, pty: Arc<AsyncFd<OwnedFd>>, mut exited: watch::Receiver<bool>) {
    let mut buf = vec![0u8; READ_CHUNK];
    let read = |buf: &mut [u8]| nix::unistd::read(pty.get_ref(), buf).map_err(std::io::Error::from);
    loop {
        tokio::select! {
            biased;
            _ = exited_signal(&mut exited) => break,
            r = pty.readable() => {
                let Ok(mut guard) = r else { return };
                match guard.try_io(|_| read(&mut buf)) {
                    Ok(Ok(0)) => return,
                    Ok(Ok(n)) => proc.broadcast(ProcessEvent::Data(DataEvent::Pty(buf[..n].to_vec()))).await,
                    Ok(Err(_)) => return, // EIO: the slave side is closed
                    Err(_would_block) => {}
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + DRAIN_AFTER_EXIT;
    loop {
        match read(&mut buf) {
            Ok(0) => return,
            Ok(n) => proc.broadcast(ProcessEvent::Data(DataEvent::Pty(buf[..n].to_vec()))).await,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                match tokio::time::timeout_at(deadline, pty.readable()).await {
                    Ok(Ok(mut g)) => g.clear_ready(),
                    _ => return,
                }
            }
            Err(_) => return,
        }
    }
}

async fn exited_signal(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|e| *e).await;
}
