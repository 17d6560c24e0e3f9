//! The `process.Process` Connect service.

use crate::rpc::Next;
use crate::process::{Proc, StartSpec, Subscription};
use crate::rpc::{self, StreamWriter, UnaryError};
use crate::spawn::SpawnSpec;
use crate::state::AppState;
use crate::users::SandboxUser;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use futures_util::StreamExt as _;
use stasis_proto::connect::{self, Code, ConnectError, EnvelopeDecoder};
use stasis_proto::process::{
    CloseStdinRequest, ConnectRequest, Empty, ListRequest, ListResponse, ProcessEvent, ProcessEventResponse,
    ProcessInput, SendInputRequest, SendSignalRequest, Signal, StartRequest, StreamInputRequest, UpdateRequest,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<AppState>>;

/// The environment of a new process: envd's PATH plus the user's HOME/USER, then the sandbox's
/// variables from `/init`, then the request's.
fn process_env(state: &AppState, user: &SandboxUser, req: &std::collections::BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut env = std::collections::BTreeMap::new();
    env.insert("PATH".to_string(), state.config.path.clone());
    env.insert("HOME".to_string(), user.home.to_string_lossy().into_owned());
    env.insert("USER".to_string(), user.name.clone());
    env.insert("LOGNAME".to_string(), user.name.clone());
    env.insert("SHELL".to_string(), user.shell.to_string_lossy().into_owned());
    for (k, v) in state.runtime().env_vars {
        env.insert(k, v);
    }
    for (k, v) in req {
        env.insert(k.clone(), v.clone());
    }
    env.into_iter().collect()
}

fn resolve_cwd(state: &AppState, user: &SandboxUser, cwd: Option<&str>) -> Result<PathBuf, ConnectError> {
    let path = match cwd.filter(|c| !c.is_empty()) {
        Some(c) => crate::fs::expand(user, c),
        None => state.runtime().default_workdir.unwrap_or_else(|| user.home.clone()),
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(path),
        Ok(_) => Err(ConnectError::invalid_argument(format!("cwd {} is not a directory", path.display()))),
        Err(e) => Err(ConnectError::invalid_argument(format!("cwd {} is invalid: {e}", path.display()))),
    }
}

pub async fn start(State(state): St, headers: HeaderMap, body: Body) -> Response {
    match start_inner(&state, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => rpc::stream_error(e),
    }
}

async fn start_inner(state: &Arc<AppState>, headers: &HeaderMap, body: Body) -> Result<Response, ConnectError> {
    let user = state.authorize(headers)?;
    let req: StartRequest = rpc::stream_request(headers, body, state.config.max_message_bytes).await?;
    let config = req.process.ok_or_else(|| ConnectError::invalid_argument("process config is required"))?;
    if config.cmd.is_empty() {
        return Err(ConnectError::invalid_argument("process cmd is required"));
    }
    let cwd = resolve_cwd(state, &user, config.cwd.as_deref())?;
    let pty = req.pty.map(|p| {
        let size = p.size.unwrap_or_default();
        let clamp = |v: u32, d: u16| if v == 0 { d } else { u16::try_from(v).unwrap_or(u16::MAX) };
        (clamp(size.cols, 80), clamp(size.rows, 24))
    });
    let spawn = SpawnSpec {
        cmd: config.cmd.clone(),
        args: config.args.clone(),
        env: process_env(state, &user, &config.envs),
        cwd,
        user,
        pty,
        stdin: req.stdin.unwrap_or(false),
    };
    let spec = StartSpec { spawn, config, tag: req.tag, lifetime: rpc::timeout(headers) };
    let (proc, rx) = state
        .processes
        .start(spec)
        .map_err(|e| ConnectError::new(Code::Internal, format!("error starting process: {e}")))?;
    tracing::info!(pid = proc.pid, cmd = %proc.config.cmd, "process started");
    let (writer, resp) = rpc::stream_response();
    tokio::spawn(forward(proc, rx, writer, rpc::keepalive(headers), None, true));
    Ok(resp)
}

/// Copy a process's events into a stream reply, with keepalives and an optional deadline.
async fn forward(
    proc: Arc<Proc>,
    mut rx: Subscription,
    writer: StreamWriter,
    keepalive: Option<Duration>,
    deadline: Option<Duration>,
    is_start: bool,
) {
    let deadline = deadline.map(|d| tokio::time::Instant::now() + d);
    loop {
        match writer.next(rx.recv(), keepalive, deadline).await {
            Next::ClientGone => return,
            Next::Done => return writer.end(None).await,
            Next::Keepalive => {
                if !writer.send(&ProcessEventResponse { event: ProcessEvent::Keepalive(Empty {}) }).await {
                    return;
                }
            }
            Next::Item(Err(overflow)) => return writer.end(Some(overflow)).await,
            Next::Item(Ok(ev)) => {
                if is_start && matches!(ev, ProcessEvent::End(_)) && proc.deadline_killed() {
                    writer.end(Some(ConnectError::new(Code::DeadlineExceeded, "context deadline exceeded: process killed at the end of its timeout"))).await;
                    return;
                }
                let is_end = matches!(ev, ProcessEvent::End(_));
                if !writer.send(&ProcessEventResponse { event: ev }).await {
                    return;
                }
                if is_end {
                    return writer.end(None).await;
                }
            }
        }
    }
}

pub async fn connect_(State(state): St, headers: HeaderMap, body: Body) -> Response {
    let res: Result<Response, ConnectError> = async {
        state.authorize(&headers)?;
        let req: ConnectRequest = rpc::stream_request(&headers, body, state.config.max_message_bytes).await?;
        let proc = state.processes.any(&req.process)?;
        let rx = proc.subscribe();
        let (writer, resp) = rpc::stream_response();
        tokio::spawn(forward(proc, rx, writer, rpc::keepalive(&headers), rpc::timeout(&headers), false));
        Ok(resp)
    }
    .await;
    res.unwrap_or_else(rpc::stream_error)
}

pub async fn list(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    state.authorize(&headers)?;
    let _req: ListRequest = rpc::unary_request(&headers, body, state.config.max_message_bytes).await?;
    Ok(rpc::unary_ok(&ListResponse { processes: state.processes.list() }))
}

pub async fn send_input(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    state.authorize(&headers)?;
    let req: SendInputRequest = rpc::unary_request(&headers, body, state.config.max_message_bytes).await?;
    let proc = state.processes.running(&req.process)?;
    apply_input(&proc, &req.input).await?;
    Ok(rpc::unary_ok(&Empty {}))
}

async fn apply_input(proc: &Proc, input: &ProcessInput) -> Result<(), ConnectError> {
    match input {
        ProcessInput::Stdin(b) => proc.write_input(b, false).await,
        ProcessInput::Pty(b) => proc.write_input(b, true).await,
    }
}

pub async fn send_signal(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    state.authorize(&headers)?;
    let req: SendSignalRequest = rpc::unary_request(&headers, body, state.config.max_message_bytes).await?;
    let sig = match req.signal {
        Signal::Sigkill => nix::sys::signal::Signal::SIGKILL,
        Signal::Sigterm => nix::sys::signal::Signal::SIGTERM,
        Signal::Unspecified => return Err(ConnectError::invalid_argument("signal is required").into()),
    };
    let proc = state.processes.running(&req.process)?;
    proc.signal(sig)?;
    Ok(rpc::unary_ok(&Empty {}))
}

pub async fn close_stdin(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    state.authorize(&headers)?;
    let req: CloseStdinRequest = rpc::unary_request(&headers, body, state.config.max_message_bytes).await?;
    state.processes.running(&req.process)?.close_stdin().await?;
    Ok(rpc::unary_ok(&Empty {}))
}

pub async fn update(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    state.authorize(&headers)?;
    let req: UpdateRequest = rpc::unary_request(&headers, body, state.config.max_message_bytes).await?;
    let proc = state.processes.running(&req.process)?;
    if let Some(size) = req.pty.and_then(|p| p.size) {
        proc.resize(size.cols, size.rows)?;
    }
    Ok(rpc::unary_ok(&Empty {}))
}

/// Client streaming: `start{process}`, then `data{input}` / `keepalive`, until the body ends.
/// The reply is enveloped too: `{}` then the end envelope (errors there, with HTTP 200).
pub async fn stream_input(State(state): St, headers: HeaderMap, body: Body) -> Response {
    let result = stream_input_inner(&state, &headers, body).await;
    let mut out = Vec::new();
    match result {
        Ok(()) => {
            out.extend(connect::encode_message(&Empty {}));
            out.extend(connect::encode_end_stream(None));
        }
        Err(e) => out.extend(connect::encode_end_stream(Some(&e))),
    }
    let mut resp = Response::new(Body::from(out));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(connect::CONTENT_TYPE_STREAM_JSON),
    );
    resp
}

async fn stream_input_inner(state: &AppState, headers: &HeaderMap, body: Body) -> Result<(), ConnectError> {
    state.authorize(headers)?;
    if let Some(enc) = headers.get("connect-content-encoding").and_then(|v| v.to_str().ok()) {
        if enc != "identity" {
            return Err(ConnectError::new(Code::Unimplemented, format!("unsupported encoding {enc:?}")));
        }
    }
    let mut decoder = EnvelopeDecoder::new(state.config.max_message_bytes);
    let mut stream = body.into_data_stream();
    let mut proc: Option<Arc<Proc>> = None;
    loop {
        while let Some(env) = decoder.next_envelope()? {
            if env.is_end_stream() {
                return Ok(());
            }
            if env.is_compressed() {
                return Err(ConnectError::new(Code::Unimplemented, "compressed envelopes are not supported"));
            }
            let msg: StreamInputRequest = connect::parse_json(&env.data)?;
            match msg {
                StreamInputRequest::Start { process } => proc = Some(state.processes.running(&process)?),
                StreamInputRequest::Data { input } => {
                    let p = proc.as_ref().ok_or_else(|| ConnectError::failed_precondition("data before start"))?;
                    apply_input(p, &input).await?;
                }
                StreamInputRequest::Keepalive(_) => {}
            }
        }
        match stream.next().await {
            Some(Ok(chunk)) => decoder.push(&chunk),
            Some(Err(e)) => return Err(ConnectError::invalid_argument(format!("reading request body: {e}"))),
            None => {
                decoder.finish()?;
                return Ok(());
            }
        }
    }
}
