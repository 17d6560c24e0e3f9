//! The `filesystem.Filesystem` Connect service.

use crate::rpc::Next;
use crate::creds;
use crate::fs;
use crate::rpc::{self, UnaryError};
use crate::state::AppState;
use crate::users::SandboxUser;
use crate::watch::{self, WatchSpec};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use stasis_proto::connect::ConnectError;
use stasis_proto::filesystem::{
    CreateWatcherRequest, CreateWatcherResponse, Empty, EntryResponse, GetWatcherEventsResponse, ListDirRequest,
    ListDirResponse, MoveRequest, PathRequest, WatchDirRequest, WatchDirResponse, WatcherRequest,
};
use std::sync::Arc;

type St = State<Arc<AppState>>;

use creds::run_as_user as as_user;

async fn request<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(SandboxUser, T), ConnectError> {
    let user = state.authorize(headers)?;
    let req = rpc::unary_request(headers, body, state.config.max_message_bytes).await?;
    Ok((user, req))
}

pub async fn stat(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, PathRequest) = request(&state, &headers, body).await?;
    let path = fs::expand(&user, &req.path);
    let entry = as_user(&user, move || fs::stat(&path)).await?;
    Ok(rpc::unary_ok(&EntryResponse { entry: Some(entry) }))
}

pub async fn make_dir(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, PathRequest) = request(&state, &headers, body).await?;
    let path = fs::expand(&user, &req.path);
    let entry = as_user(&user, move || fs::make_dir(&path)).await?;
    Ok(rpc::unary_ok(&EntryResponse { entry: Some(entry) }))
}

pub async fn move_(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, MoveRequest) = request(&state, &headers, body).await?;
    let (from, to) = (fs::expand(&user, &req.source), fs::expand(&user, &req.destination));
    let entry = as_user(&user, move || fs::move_entry(&from, &to)).await?;
    Ok(rpc::unary_ok(&EntryResponse { entry: Some(entry) }))
}

pub async fn list_dir(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, ListDirRequest) = request(&state, &headers, body).await?;
    let path = fs::expand(&user, &req.path);
    let entries = as_user(&user, move || fs::list_dir(&path, req.depth)).await?;
    Ok(rpc::unary_ok(&ListDirResponse { entries }))
}

pub async fn remove(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, PathRequest) = request(&state, &headers, body).await?;
    let path = fs::expand(&user, &req.path);
    as_user(&user, move || fs::remove(&path)).await?;
    Ok(rpc::unary_ok(&Empty {}))
}

fn spec(user: &SandboxUser, req: &WatchDirRequest) -> WatchSpec {
    WatchSpec {
        root: fs::expand(user, &req.path),
        recursive: req.recursive,
        include_entry: req.include_entry,
        allow_network_mounts: req.allow_network_mounts,
    }
}

pub async fn watch_dir(State(state): St, headers: HeaderMap, body: Body) -> Response {
    let res: Result<Response, ConnectError> = async {
        let user = state.authorize(&headers)?;
        let req: WatchDirRequest = rpc::stream_request(&headers, body, state.config.max_message_bytes).await?;
        let mut rx = watch::start(&user, spec(&user, &req)).await?;
        let (writer, resp) = rpc::stream_response();
        let keepalive = rpc::keepalive(&headers);
        let deadline = rpc::timeout(&headers).map(|d| tokio::time::Instant::now() + d);
        tokio::spawn(async move {
            if !writer.send(&WatchDirResponse::Start(Empty {})).await {
                return;
            }
            loop {
                let sent = match writer.next(rx.recv(), keepalive, deadline).await {
                    Next::ClientGone => return,
                    Next::Done => return writer.end(None).await,
                    Next::Keepalive => writer.send(&WatchDirResponse::Keepalive(Empty {})).await,
                    Next::Item(ev) => writer.send(&WatchDirResponse::Filesystem(ev)).await,
                };
                if !sent {
                    return;
                }
            }
        });
        Ok(resp)
    }
    .await;
    res.unwrap_or_else(rpc::stream_error)
}

pub async fn create_watcher(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (user, req): (_, CreateWatcherRequest) = request(&state, &headers, body).await?;
    let watcher_id = state.watchers.create(&user, spec(&user, &req)).await?;
    Ok(rpc::unary_ok(&CreateWatcherResponse { watcher_id }))
}

pub async fn get_watcher_events(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (_user, req): (_, WatcherRequest) = request(&state, &headers, body).await?;
    let events = state.watchers.take_events(&req.watcher_id)?;
    Ok(rpc::unary_ok(&GetWatcherEventsResponse { events }))
}

pub async fn remove_watcher(State(state): St, headers: HeaderMap, body: Body) -> Result<Response, UnaryError> {
    let (_user, req): (_, WatcherRequest) = request(&state, &headers, body).await?;
    state.watchers.remove(&req.watcher_id)?;
    Ok(rpc::unary_ok(&Empty {}))
}
