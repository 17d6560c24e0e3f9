//! The plain HTTP routes: `/health`, `/files`, `/envs`, `/init`, `/metrics`, and the router.

use crate::creds;
use crate::fs::{self, METADATA_XATTR_PREFIX};
use crate::state::AppState;
use crate::users::SandboxUser;
use crate::{fs_rpc, process_rpc};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine as _;
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use stasis_proto::connect::{Code, ConnectError};
use stasis_proto::filesystem::WriteInfo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWriteExt};
use tokio_util::io::{ReaderStream, StreamReader};

type St = State<Arc<AppState>>;

/// Build envd's router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/files", get(download).post(upload))
        .route("/envs", get(envs))
        .route("/init", post(init))
        .route("/metrics", get(metrics))
        .route("/process.Process/Start", post(process_rpc::start))
        .route("/process.Process/Connect", post(process_rpc::connect_))
        .route("/process.Process/List", post(process_rpc::list))
        .route("/process.Process/SendInput", post(process_rpc::send_input))
        .route("/process.Process/SendSignal", post(process_rpc::send_signal))
        .route("/process.Process/CloseStdin", post(process_rpc::close_stdin))
        .route("/process.Process/Update", post(process_rpc::update))
        .route("/process.Process/StreamInput", post(process_rpc::stream_input))
        .route("/filesystem.Filesystem/Stat", post(fs_rpc::stat))
        .route("/filesystem.Filesystem/MakeDir", post(fs_rpc::make_dir))
        .route("/filesystem.Filesystem/Move", post(fs_rpc::move_))
        .route("/filesystem.Filesystem/ListDir", post(fs_rpc::list_dir))
        .route("/filesystem.Filesystem/Remove", post(fs_rpc::remove))
        .route("/filesystem.Filesystem/WatchDir", post(fs_rpc::watch_dir))
        .route("/filesystem.Filesystem/CreateWatcher", post(fs_rpc::create_watcher))
        .route("/filesystem.Filesystem/GetWatcherEvents", post(fs_rpc::get_watcher_events))
        .route("/filesystem.Filesystem/RemoveWatcher", post(fs_rpc::remove_watcher))
        .fallback(not_found)
        // Uploads stream to disk; every other body has its own limit.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(crate::bodyguard::layer))
        .layer(axum::middleware::from_fn(crate::cors::layer))
        .with_state(state)
}

/// A plain-HTTP error: `{"code": <status>, "message"}`.
pub struct HttpError(StatusCode, String);

impl HttpError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self(status, message.into())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.0.as_u16(), "message": self.1 });
        (self.0, axum::Json(body)).into_response()
    }
}

impl From<ConnectError> for HttpError {
    fn from(e: ConnectError) -> Self {
        let status = match e.code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::INSUFFICIENT_STORAGE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self(status, e.message)
    }
}

async fn not_found(req: Request) -> Response {
    let e = ConnectError::new(Code::Unimplemented, format!("no route for {} {}", req.method(), req.uri().path()));
    (StatusCode::NOT_FOUND, axum::Json(e)).into_response()
}

async fn health() -> StatusCode {
    StatusCode::NO_CONTENT
}

fn require_token(state: &AppState, headers: &HeaderMap) -> Result<(), HttpError> {
    if state.token_ok(headers) {
        Ok(())
    } else {
        Err(HttpError::new(StatusCode::UNAUTHORIZED, "missing or invalid access token"))
    }
}

async fn envs(State(state): St, headers: HeaderMap) -> Result<Response, HttpError> {
    require_token(&state, &headers)?;
    Ok(axum::Json(state.runtime().env_vars).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitRequest {
    #[serde(default)]
    env_vars: Option<BTreeMap<String, String>>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    default_user: Option<String>,
    #[serde(default)]
    default_workdir: Option<String>,
}

/// Called by the control plane at create (and again whenever it likes). Once a token is set,
/// `/init` itself needs it — in `X-Access-Token`, or as the body's `accessToken` — so a process
/// inside the sandbox cannot take the token over.
async fn init(State(state): St, headers: HeaderMap, body: Body) -> Result<StatusCode, HttpError> {
    let bytes = crate::rpc::read_body(body, state.config.max_message_bytes)
        .await
        .map_err(|e| HttpError::new(StatusCode::PAYLOAD_TOO_LARGE, e.message))?;
    let parsed: Result<InitRequest, _> =
        if bytes.iter().all(u8::is_ascii_whitespace) { Ok(InitRequest::default()) } else { serde_json::from_slice(&bytes) };
    let current = state.runtime().access_token;
    let body_proves_token = match (&current, parsed.as_ref().ok().and_then(|r| r.access_token.as_ref())) {
        (Some(cur), Some(given)) => crate::state::constant_time_eq(cur.as_bytes(), given.as_bytes()),
        _ => false,
    };
    if !body_proves_token {
        require_token(&state, &headers)?;
    }
    let req = parsed.map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, format!("invalid init body: {e}")))?;
    if let Some(user) = req.default_user.as_deref().filter(|u| !u.is_empty()) {
        state.user_named(Some(user)).map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.message))?;
    }
    let mut rt = state.runtime.write().unwrap_or_else(|p| p.into_inner());
    if let Some(vars) = req.env_vars {
        rt.env_vars.extend(vars);
    }
    if let Some(token) = req.access_token.filter(|t| !t.is_empty()) {
        rt.access_token = Some(token);
    }
    if let Some(user) = req.default_user.filter(|u| !u.is_empty()) {
        rt.default_user = user;
    }
    if let Some(dir) = req.default_workdir.filter(|d| !d.is_empty()) {
        rt.default_workdir = Some(PathBuf::from(dir));
    }
    tracing::info!("init applied");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize)]
struct FileQuery {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    signature_expiration: Option<i64>,
}

/// `v1_` + unpadded base64 of sha256("path:operation:user:token[:expiration]").
pub fn file_signature(path: &str, op: &str, user: &str, token: &str, exp: Option<i64>) -> String {
    let raw = match exp {
        Some(e) => format!("{path}:{op}:{user}:{token}:{e}"),
        None => format!("{path}:{op}:{user}:{token}"),
    };
    let digest = Sha256::digest(raw.as_bytes());
    format!("v1_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
}

/// Authorize a `/files` request (token or signed URL) and resolve its user.
fn files_auth(state: &AppState, headers: &HeaderMap, q: &FileQuery, op: &str) -> Result<SandboxUser, HttpError> {
    let token = state.runtime().access_token;
    if let Some(token) = token.filter(|_| !state.token_ok(headers)) {
        let Some(sig) = q.signature.as_deref() else {
            return Err(HttpError::new(StatusCode::UNAUTHORIZED, "missing access token or signature"));
        };
        let expected = file_signature(
            q.path.as_deref().unwrap_or(""),
            op,
            q.username.as_deref().unwrap_or(""),
            &token,
            q.signature_expiration,
        );
        if !crate::state::constant_time_eq(sig.as_bytes(), expected.as_bytes()) {
            return Err(HttpError::new(StatusCode::UNAUTHORIZED, "invalid signature"));
        }
        if let Some(exp) = q.signature_expiration {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
            if i64::try_from(now).unwrap_or(i64::MAX) > exp {
                return Err(HttpError::new(StatusCode::UNAUTHORIZED, "signature is expired"));
            }
        }
    }
    let user = match q.username.as_deref().filter(|u| !u.is_empty()) {
        Some(name) => state.user_named(Some(name)),
        None => state.user_from_headers(headers),
    };
    user.map_err(|e| HttpError::new(StatusCode::UNAUTHORIZED, e.message))
}

fn bad_query(e: axum::extract::rejection::QueryRejection) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, e.body_text())
}

async fn download(
    State(state): St,
    headers: HeaderMap,
    q: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(q) = q.map_err(bad_query)?;
    let user = files_auth(&state, &headers, &q, "read")?;
    let raw = q.path.as_deref().filter(|p| !p.is_empty()).ok_or_else(|| HttpError::new(StatusCode::BAD_REQUEST, "path is required"))?;
    let path = fs::expand(&user, raw);
    let p = path.clone();
    let file = creds::run_as_user(&user, move || {
        let f = std::fs::File::open(&p).map_err(|e| fs::io_error(&e, "open", &p))?;
        let meta = f.metadata().map_err(|e| fs::io_error(&e, "stat", &p))?;
        if meta.is_dir() {
            return Err(ConnectError::invalid_argument(format!("path {} is a directory", p.display())));
        }
        Ok((f, meta.len()))
    })
    .await;
    let (file, len) = file?;
    let file = tokio::fs::File::from_std(file);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut resp = if gzip {
        let enc = async_compression::tokio::bufread::GzipEncoder::new(tokio::io::BufReader::with_capacity(64 * 1024, file));
        let mut r = Response::new(Body::from_stream(ReaderStream::with_capacity(enc, 64 * 1024)));
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        let mut r = Response::new(Body::from_stream(ReaderStream::with_capacity(file, 64 * 1024)));
        r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        r
    };
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"{}\"", name.replace(['"', '\\'], "_"))) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `X-Metadata-<key>` headers, keys lowercased.
fn metadata_headers(headers: &HeaderMap) -> Result<BTreeMap<String, String>, HttpError> {
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        if let Some(key) = name.as_str().strip_prefix("x-metadata-") {
            if key.is_empty() {
                return Err(HttpError::new(StatusCode::BAD_REQUEST, "empty metadata key"));
            }
            let v = value.to_str().map_err(|_| HttpError::new(StatusCode::BAD_REQUEST, "metadata values must be ASCII"))?;
            out.insert(key.to_ascii_lowercase(), v.to_string());
        }
    }
    Ok(out)
}

/// Create (or truncate) `path` as `user`, making missing parents.
async fn create_file(user: &SandboxUser, path: &Path) -> Result<tokio::fs::File, HttpError> {
    let p = path.to_path_buf();
    let res = creds::run_as_user(user, move || {
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fs::io_error(&e, "create directory", parent))?;
        }
        if std::fs::metadata(&p).is_ok_and(|m| m.is_dir()) {
            return Err(ConnectError::invalid_argument(format!("path {} is a directory", p.display())));
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&p)
            .map_err(|e| fs::io_error(&e, "create", &p))
    })
    .await;
    Ok(tokio::fs::File::from_std(res?))
}

fn write_error(e: std::io::Error, path: &Path) -> HttpError {
    HttpError::from(fs::io_error(&e, "write", path))
}

async fn write_stream<R: AsyncRead + Unpin>(mut reader: R, mut file: tokio::fs::File, path: &Path) -> Result<(), HttpError> {
    tokio::io::copy(&mut reader, &mut file).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::InvalidData || e.kind() == std::io::ErrorKind::UnexpectedEof {
            HttpError::new(StatusCode::BAD_REQUEST, format!("reading upload for {}: {e}", path.display()))
        } else {
            write_error(e, path)
        }
    })?;
    file.flush().await.map_err(|e| write_error(e, path))?;
    file.sync_all().await.map_err(|e| write_error(e, path))?;
    Ok(())
}

async fn finish_file(user: &SandboxUser, path: &Path, metadata: &BTreeMap<String, String>) -> Result<WriteInfo, HttpError> {
    let (p, md) = (path.to_path_buf(), metadata.clone());
    let res = creds::run_as_user(user, move || {
        for (k, v) in &md {
            xattr::set(&p, format!("{METADATA_XATTR_PREFIX}{k}"), v.as_bytes())
                .map_err(|e| fs::io_error(&e, "set metadata on", &p))?;
        }
        Ok(fs::read_metadata(&p))
    })
    .await;
    let metadata = res?;
    Ok(WriteInfo {
        path: path.to_string_lossy().into_owned(),
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        kind: "file".into(),
        metadata,
    })
}

fn body_reader(body: Body) -> impl AsyncRead + Unpin {
    StreamReader::new(body.into_data_stream().map_err(std::io::Error::other))
}

async fn upload(State(state): St, req: Request) -> Result<Response, HttpError> {
    let headers = req.headers().clone();
    let q = Query::<FileQuery>::try_from_uri(req.uri()).map_err(bad_query)?.0;
    let user = files_auth(&state, &headers, &q, "write")?;
    let metadata = metadata_headers(&headers)?;
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let query_path = q.path.clone().filter(|p| !p.is_empty());
    let mut written = Vec::new();

    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &state)
            .await
            .map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.body_text()))?;
        let mut first = true;
        while let Some(field) = mp.next_field().await.map_err(|e| HttpError::new(StatusCode::BAD_REQUEST, e.body_text()))? {
            if field.name() != Some("file") {
                continue;
            }
            let dest = match (first, &query_path, field.file_name()) {
                (true, Some(p), _) => p.clone(),
                (_, _, Some(f)) if !f.is_empty() => f.to_string(),
                _ => return Err(HttpError::new(StatusCode::BAD_REQUEST, "a file part needs a filename or the path parameter")),
            };
            first = false;
            let path = fs::expand(&user, &dest);
            let file = create_file(&user, &path).await?;
            let reader = StreamReader::new(field.map_err(std::io::Error::other));
            write_stream(reader, file, &path).await?;
            written.push(finish_file(&user, &path, &metadata).await?);
        }
        if written.is_empty() {
            return Err(HttpError::new(StatusCode::BAD_REQUEST, "no file part named \"file\" in the upload"));
        }
    } else {
        let dest = query_path.ok_or_else(|| HttpError::new(StatusCode::BAD_REQUEST, "path is required"))?;
        let path = fs::expand(&user, &dest);
        let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
        let file = create_file(&user, &path).await?;
        let body = req.into_body();
        match encoding.as_str() {
            "" | "identity" => write_stream(body_reader(body), file, &path).await?,
            "gzip" => {
                let dec = async_compression::tokio::bufread::GzipDecoder::new(tokio::io::BufReader::new(body_reader(body)));
                write_stream(dec, file, &path).await?
            }
            other => {
                return Err(HttpError::new(StatusCode::BAD_REQUEST, format!("unsupported Content-Encoding {other:?}")))
            }
        }
        written.push(finish_file(&user, &path, &metadata).await?);
    }
    Ok(axum::Json(written).into_response())
}

async fn metrics(State(state): St, headers: HeaderMap) -> Result<Response, HttpError> {
    require_token(&state, &headers)?;
    let m = crate::metrics::sample(&state);
    Ok(axum::Json(m).into_response())
}

#[cfg(test)]
mod tests {
    use super::file_signature;

    #[test]
    fn signature_matches_sdk_algorithm() {
        // python: "v1_" + b64(sha256(b"/a:read::tok")).rstrip("=")
        let s = file_signature("/a", "read", "", "tok", None);
        assert!(s.starts_with("v1_"));
        assert_eq!(s.len(), 3 + 43);
        assert_ne!(s, file_signature("/a", "write", "", "tok", None));
        assert_ne!(s, file_signature("/a", "read", "", "tok", Some(1)));
    }
}
