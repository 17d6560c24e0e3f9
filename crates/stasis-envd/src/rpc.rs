//! Connect protocol v1 on top of axum: reading requests, writing unary and streaming replies.

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use stasis_proto::connect::{self, ConnectError};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// A unary error reply: HTTP status from the code, `{"code","message"}` body.
pub struct UnaryError(pub ConnectError);

impl From<ConnectError> for UnaryError {
    fn from(e: ConnectError) -> Self {
        Self(e)
    }
}

impl IntoResponse for UnaryError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.0).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, connect::CONTENT_TYPE_UNARY_JSON)], body).into_response()
    }
}

/// A unary success reply.
pub fn unary_ok<T: Serialize>(msg: &T) -> Response {
    let body = serde_json::to_vec(msg).unwrap_or_else(|_| b"{}".to_vec());
    (StatusCode::OK, [(header::CONTENT_TYPE, connect::CONTENT_TYPE_UNARY_JSON)], body).into_response()
}

/// Collect a request body, failing with `resource_exhausted` past `limit` bytes.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ConnectError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ConnectError::invalid_argument(format!("reading request body: {e}")))?;
        if buf.len() + chunk.len() > limit + connect::ENVELOPE_HEADER_LEN {
            return Err(ConnectError::new(
                connect::Code::ResourceExhausted,
                format!("request body exceeds the limit of {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.into())
}

fn check_encoding(headers: &HeaderMap, name: &str) -> Result<(), ConnectError> {
    match headers.get(name).and_then(|v| v.to_str().ok()) {
        None | Some("identity") | Some("") => Ok(()),
        Some(other) => Err(ConnectError::new(
            connect::Code::Unimplemented,
            format!("unsupported {name} {other:?}: envd accepts identity only"),
        )),
    }
}

/// Parse a unary request message.
pub async fn unary_request<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ConnectError> {
    check_encoding(headers, "content-encoding")?;
    let bytes = read_body(body, limit).await?;
    connect::parse_json(&bytes)
}

/// Parse the single enveloped message of a server-streaming request.
pub async fn stream_request<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ConnectError> {
    check_encoding(headers, "connect-content-encoding")?;
    let bytes = read_body(body, limit).await?;
    let env = connect::decode_single(&bytes, limit)?;
    connect::parse_json(&env.data)
}

/// The writing side of a server-streaming reply; every message is sent as its own chunk, so
/// hyper flushes it at once.
pub struct StreamWriter {
    tx: mpsc::Sender<Result<Bytes, Infallible>>,
}

impl StreamWriter {
    /// Send one message. `false` means the client has gone.
    pub async fn send<T: Serialize>(&self, msg: &T) -> bool {
        self.tx.send(Ok(Bytes::from(connect::encode_message(msg)))).await.is_ok()
    }

    /// End the stream, with an error or cleanly.
    pub async fn end(self, error: Option<ConnectError>) {
        let _ = self.tx.send(Ok(Bytes::from(connect::encode_end_stream(error.as_ref())))).await;
    }

    /// Resolves when the client has gone.
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// What a streaming reply does next.
pub enum Next<T> {
    /// The source produced an item.
    Item(T),
    /// Nothing for a keepalive interval: send a keepalive message.
    Keepalive,
    /// The source is done: end the stream cleanly.
    Done,
    /// The client has gone: stop.
    ClientGone,
}

impl StreamWriter {
    /// Wait for the next item of `recv` (`None` when the source is done), or a keepalive
    /// interval, or the client going away. At the `Connect-Timeout-Ms` deadline the stream is
    /// ended with `deadline_exceeded` here, and `ClientGone` is returned.
    pub async fn next<T>(
        &self,
        recv: impl std::future::Future<Output = Option<T>>,
        keepalive: Option<Duration>,
        deadline: Option<tokio::time::Instant>,
    ) -> Next<T> {
        let idle = keepalive.unwrap_or(Duration::from_secs(3600 * 24 * 365));
        let item = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, tokio::time::timeout(idle, recv)).await.ok(),
                None => Some(tokio::time::timeout(idle, recv).await),
            }
        };
        tokio::select! {
            _ = self.closed() => Next::ClientGone,
            r = item => match r {
                None => {
                    let _ = self.tx.send(Ok(Bytes::from(connect::encode_end_stream(Some(&ConnectError::new(
                        connect::Code::DeadlineExceeded,
                        "context deadline exceeded",
                    )))))).await;
                    Next::ClientGone
                }
                Some(Err(_idle)) => Next::Keepalive,
                Some(Ok(None)) => Next::Done,
                Some(Ok(Some(x))) => Next::Item(x),
            }
        }
    }
}

/// Start a streaming reply: HTTP 200 with `application/connect+json`; write into the writer.
pub fn stream_response() -> (StreamWriter, Response) {
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(16);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(connect::CONTENT_TYPE_STREAM_JSON));
    (StreamWriter { tx }, resp)
}

/// A streaming reply that is only an error (HTTP 200, error in the end envelope).
pub fn stream_error(error: ConnectError) -> Response {
    let mut resp = Response::new(Body::from(connect::encode_end_stream(Some(&error))));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(connect::CONTENT_TYPE_STREAM_JSON));
    resp
}

/// `Connect-Timeout-Ms`, if present and non-zero.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let ms: u64 = headers.get("connect-timeout-ms")?.to_str().ok()?.trim().parse().ok()?;
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// `Keepalive-Ping-Interval` (seconds), if present and non-zero.
pub fn keepalive(headers: &HeaderMap) -> Option<Duration> {
    let s: u64 = headers.get("keepalive-ping-interval")?.to_str().ok()?.trim().parse().ok()?;
    (s > 0).then(|| Duration::from_secs(s))
}
