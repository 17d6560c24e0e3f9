//! HTTP plumbing: the control-plane client, and envd's Connect protocol (unary and server
//! streams) over plain HTTP/1.1 requests to the sandbox URL.

use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use base64::Engine as _;
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use stasis_proto::connect::{self, EndStream, EnvelopeDecoder};
use std::sync::Arc;
use std::time::Duration;

/// Sent as `User-Agent` on every request.
pub(crate) const USER_AGENT: &str = concat!("stasis-rust-sdk/", env!("CARGO_PKG_VERSION"));
/// Keepalive events asked of envd on streams, seconds (what E2B's SDKs ask for).
const KEEPALIVE_PING_INTERVAL_SEC: u32 = 50;
/// Largest envd stream message accepted.
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Attempts for a request whose connection could not be opened (e2b-dev/infra#1478: the first
/// connection right after a restore may be refused).
const CONNECT_ATTEMPTS: u32 = 3;

/// The control-plane client: one connection pool and one configuration, shared by every
/// [`Sandbox`](crate::Sandbox) made from it.
#[derive(Clone, Debug)]
pub(crate) struct Http {
    pub(crate) client: reqwest::Client,
    pub(crate) config: Arc<ConnectionConfig>,
}

impl Http {
    pub(crate) fn new(config: &ConnectionConfig) -> Result<Http> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Http { client, config: Arc::new(config.clone()) })
    }

    /// A control-plane request with the API key.
    pub(crate) fn api(&self, method: Method, path: &str) -> Result<RequestBuilder> {
        let url = format!("{}{path}", self.config.resolved_api_url());
        Ok(self.client.request(method, url).header("X-API-KEY", self.config.key()?))
    }

    /// Send, retrying only when no connection could be opened; map non-2xx answers to errors.
    pub(crate) async fn send(&self, req: RequestBuilder, timeout: Option<Duration>) -> Result<Response> {
        let mut attempt = 1;
        loop {
            let Some(mut this) = req.try_clone() else {
                return Err(Error::Protocol("request body cannot be retried".into()));
            };
            if let Some(t) = timeout {
                this = this.timeout(t);
            }
            match this.send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(Error::from_status(status, &body));
                }
                Err(e) if e.is_connect() && attempt < CONNECT_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) if e.is_timeout() => return Err(Error::Timeout { message: e.to_string() }),
                Err(e) => return Err(Error::Transport(e)),
            }
        }
    }

    /// Send and parse a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, req: RequestBuilder, timeout: Option<Duration>) -> Result<(u16, T)> {
        let resp = self.send(req, timeout).await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(map_body_error)?;
        let value = serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("{e} in {}", String::from_utf8_lossy(&body))))?;
        Ok((status, value))
    }
}

fn map_body_error(e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::Timeout { message: e.to_string() }
    } else {
        Error::Transport(e)
    }
}

/// How one sandbox is reached: its id, access token and the domain the server returned.
#[derive(Clone, Debug)]
pub(crate) struct SandboxTransport {
    pub(crate) http: Http,
    pub(crate) sandbox_id: String,
    pub(crate) access_token: Option<String>,
    pub(crate) domain: Option<String>,
}

/// Options of one envd call.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallOpts {
    /// `Authorization: Basic <user>:`; none means envd's default user.
    pub(crate) user: Option<String>,
    /// `Connect-Timeout-Ms`: for process streams, the process's lifetime.
    pub(crate) deadline: Option<Duration>,
    /// Ask envd for keepalive events.
    pub(crate) keepalive: bool,
}

impl SandboxTransport {
    /// A request to `port` inside the sandbox, with the headers the official SDKs send.
    pub(crate) fn request(&self, port: u16, method: Method, path: &str) -> RequestBuilder {
        let base = self.http.config.resolved_sandbox_url(&self.sandbox_id, port, self.domain.as_deref());
        let mut req = self
            .http
            .client
            .request(method, format!("{base}{path}"))
            .header("E2b-Sandbox-Id", &self.sandbox_id)
            .header("E2b-Sandbox-Port", port.to_string());
        if let Some(token) = &self.access_token {
            req = req.header("X-Access-Token", token);
        }
        req
    }

    fn rpc(&self, method: &str, content_type: &str, opts: &CallOpts) -> RequestBuilder {
        let mut req = self
            .request(stasis_proto::ENVD_PORT, Method::POST, &format!("/{method}"))
            .header("Content-Type", content_type)
            .header("Connect-Protocol-Version", "1");
        if let Some(user) = &opts.user {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
            req = req.header("Authorization", format!("Basic {basic}"));
        }
        if let Some(deadline) = opts.deadline {
            req = req.header("Connect-Timeout-Ms", deadline.as_millis().to_string());
        }
        if opts.keepalive {
            req = req.header("Keepalive-Ping-Interval", KEEPALIVE_PING_INTERVAL_SEC.to_string());
        }
        req
    }

    /// A unary Connect call, e.g. `process.Process/List`.
    pub(crate) async fn unary<Req: Serialize, Resp: DeserializeOwned>(&self, method: &str, msg: &Req, opts: CallOpts) -> Result<Resp> {
        let body = serde_json::to_vec(msg).map_err(|e| Error::Protocol(e.to_string()))?;
        let req = self.rpc(method, connect::CONTENT_TYPE_UNARY_JSON, &opts).body(body);
        // A unary error is `{"code": "not_found", "message"}` with the Connect code's HTTP
        // status, which `Error::from_status` maps the same way.
        let resp = self.http.send(req, Some(self.http.config.get_request_timeout())).await?;
        let body = resp.bytes().await.map_err(map_body_error)?;
        connect::parse_json(&body).map_err(|e| Error::Protocol(e.message))
    }

    /// A server-streaming Connect call: the answer's messages, one at a time.
    pub(crate) async fn stream<Req: Serialize, Resp: DeserializeOwned>(&self, method: &str, msg: &Req, opts: CallOpts) -> Result<EnvdStream<Resp>> {
        let req = self.rpc(method, connect::CONTENT_TYPE_STREAM_JSON, &opts).body(connect::encode_message(msg));
        // Only the wait for the answer's headers is bounded here: the stream itself lives as
        // long as the process or watch does.
        let sent = tokio::time::timeout(self.http.config.get_request_timeout(), self.http.send(req, None)).await;
        let resp = match sent {
            Ok(r) => r?,
            Err(_) => return Err(Error::Timeout { message: format!("no answer to {method} within the request timeout") }),
        };
        Ok(EnvdStream { resp, decoder: EnvelopeDecoder::new(MAX_MESSAGE_BYTES), done: false, _msg: std::marker::PhantomData })
    }
}

/// The messages of a server stream, decoded from Connect envelopes as they arrive.
pub(crate) struct EnvdStream<T> {
    resp: Response,
    decoder: EnvelopeDecoder,
    done: bool,
    _msg: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> EnvdStream<T> {
    /// The next message; `None` at a clean end of the stream.
    pub(crate) async fn next(&mut self) -> Option<Result<T>> {
        loop {
            if self.done {
                return None;
            }
            match self.decoder.next_envelope() {
                Err(e) => return Some(Err(self.fail(Error::Protocol(e.to_string())))),
                Ok(Some(env)) if env.is_end_stream() => {
                    self.done = true;
                    let end: EndStream = serde_json::from_slice(&env.data).unwrap_or_default();
                    return end.error.map(|e| Err(Error::from_connect(e)));
                }
                Ok(Some(env)) => {
                    return Some(serde_json::from_slice(&env.data).map_err(|e| Error::Protocol(format!("stream message: {e}"))));
                }
                Ok(None) => {}
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.decoder.push(&bytes),
                Ok(None) => {
                    let err = Error::Protocol("stream ended without an end-of-stream message".into());
                    return Some(Err(self.fail(err)));
                }
                Err(e) => return Some(Err(self.fail(map_body_error(e)))),
            }
        }
    }

    fn fail(&mut self, err: Error) -> Error {
        self.done = true;
        err
    }
}
