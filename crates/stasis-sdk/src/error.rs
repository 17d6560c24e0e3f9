//! The SDK's one error type.

use stasis_proto::connect::{Code, ConnectError};

/// Everything a call can fail with.
///
/// REST answers are mapped by the `code` of E2B's `{"code", "message"}` body (falling back to
/// the HTTP status), envd's Connect errors by their code. A failed command is an error too:
/// [`Error::CommandExit`] carries its exit code and output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No API key was configured (`E2B_API_KEY` or [`ConnectionConfig::api_key`](crate::ConnectionConfig::api_key)).
    #[error("no API key: set E2B_API_KEY or pass one in the connection config")]
    MissingApiKey,
    /// The server rejected the API key (401) or the sandbox's access token.
    #[error("authentication failed: {message}")]
    Auth { message: String },
    /// The sandbox, process, file or context does not exist (404, `not_found`).
    #[error("not found: {message}")]
    NotFound { message: String },
    /// The sandbox is in the wrong state for this operation, e.g. paused already or in the
    /// middle of a transition (409); or a file already exists.
    #[error("conflict: {message}")]
    Conflict { message: String },
    /// A deadline passed: the request's, the command's (`deadline_exceeded`), or the server's.
    #[error("timed out: {message}")]
    Timeout { message: String },
    /// The sandbox is not running (paused, killed or timed out), so nothing inside it answers
    /// (the proxy's 502).
    #[error("sandbox is not running: {message}")]
    SandboxNotRunning { message: String },
    /// A bad argument: rejected by the server (400, `invalid_argument`) or by the SDK.
    #[error("invalid argument: {message}")]
    InvalidArgument { message: String },
    /// The user has no permission for a file or operation (403, `permission_denied`).
    #[error("permission denied: {message}")]
    PermissionDenied { message: String },
    /// The sandbox's disk is full (507).
    #[error("not enough space: {message}")]
    NotEnoughSpace { message: String },
    /// Too many requests (429).
    #[error("rate limited: {message}")]
    RateLimit { message: String },
    /// A command finished with a non-zero exit code.
    #[error("command exited with code {exit_code}{}", stderr_suffix(.stderr))]
    CommandExit {
        exit_code: i32,
        stdout: String,
        stderr: String,
        /// envd's description of an abnormal end (e.g. killed by a signal).
        error: Option<String>,
    },
    /// Any other answer of the control plane.
    #[error("API error {status}: {message}")]
    Api { status: u16, message: String },
    /// Any other envd (Connect) error.
    #[error("envd error: {0}")]
    Envd(ConnectError),
    /// The server answered something this SDK cannot read.
    #[error("unexpected response: {0}")]
    Protocol(String),
    /// The request did not get an answer: connection refused, reset, TLS failure, ...
    #[error("HTTP transport: {0}")]
    Transport(#[from] reqwest::Error),
}

fn stderr_suffix(stderr: &str) -> String {
    let last = stderr.trim_end().lines().last().unwrap_or("");
    if last.is_empty() {
        String::new()
    } else {
        format!(": {last}")
    }
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error for an HTTP answer of the control plane or a plain envd route.
    pub(crate) fn from_status(status: u16, body: &[u8]) -> Error {
        #[derive(serde::Deserialize)]
        struct Body {
            code: Option<serde_json::Value>,
            message: Option<String>,
        }
        let parsed: Option<Body> = serde_json::from_slice(body).ok();
        let message = parsed
            .as_ref()
            .and_then(|b| b.message.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        // JS reads `body.code` rather than the status for 404/409; do the same.
        let code = parsed
            .and_then(|b| b.code)
            .and_then(|c| c.as_u64())
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(status);
        match code {
            400 => Error::InvalidArgument { message },
            401 => Error::Auth { message },
            403 => Error::PermissionDenied { message },
            404 => Error::NotFound { message },
            409 => Error::Conflict { message },
            429 => Error::RateLimit { message },
            502 => Error::SandboxNotRunning { message },
            504 => Error::Timeout { message },
            507 => Error::NotEnoughSpace { message },
            _ => Error::Api { status: code, message },
        }
    }

    /// The error for a Connect error of envd.
    pub(crate) fn from_connect(err: ConnectError) -> Error {
        let message = err.message.clone();
        match err.code {
            Code::NotFound => Error::NotFound { message },
            Code::Unauthenticated => Error::Auth { message },
            Code::DeadlineExceeded => Error::Timeout { message },
            Code::AlreadyExists => Error::Conflict { message },
            Code::InvalidArgument => Error::InvalidArgument { message },
            Code::PermissionDenied => Error::PermissionDenied { message },
            Code::ResourceExhausted => Error::RateLimit { message },
            _ => Error::Envd(err),
        }
    }

    /// Whether this is [`Error::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Whether this is [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_code_wins_over_status() {
        assert!(matches!(Error::from_status(400, br#"{"code":404,"message":"gone"}"#), Error::NotFound { message } if message == "gone"));
        assert!(matches!(Error::from_status(409, b"not json"), Error::Conflict { message } if message == "not json"));
        assert!(matches!(Error::from_status(502, br#"{"sandboxId":"x","message":"The sandbox was not found","code":502}"#), Error::SandboxNotRunning { .. }));
        assert!(matches!(Error::from_status(500, br#"{"code":500,"message":"boom"}"#), Error::Api { status: 500, .. }));
        assert!(matches!(Error::from_connect(ConnectError::not_found("pid 3")), Error::NotFound { .. }));
        let e = Error::CommandExit { exit_code: 3, stdout: String::new(), stderr: "a\nno such file\n".into(), error: None };
        assert_eq!(e.to_string(), "command exited with code 3: no such file");
    }
}
