//! Where requests go and with which key: [`ConnectionConfig`].

use crate::error::{Error, Result};
use std::time::Duration;

/// The control-plane URL used when neither an option, `E2B_API_URL` nor `E2B_DOMAIN` names one:
/// where `stasis server` listens by default.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:3000";

/// How long a single API or envd request may take, unless a call says otherwise (as in E2B's SDKs).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Connection settings shared by every call: API key, control-plane URL, sandbox-traffic URL.
///
/// [`ConnectionConfig::from_env`] reads the variables E2B's JS and Python SDKs read, so one
/// `.env` serves all three SDKs:
///
/// | variable | meaning |
/// |---|---|
/// | `E2B_API_KEY` | sent as `X-API-KEY` |
/// | `E2B_API_URL` | control-plane base URL, used as given (`http://` is fine) |
/// | `E2B_SANDBOX_URL` | one base URL for all sandbox traffic (envd, the code interpreter) |
/// | `E2B_DOMAIN` | when no URL is given: `https://api.{domain}` and `https://{port}-{id}.{domain}` |
///
/// Precedence, first match wins. Control plane: [`api_url`](Self::api_url), `E2B_API_URL`,
/// `https://api.{domain}`, [`DEFAULT_API_URL`]. Sandbox traffic:
/// [`sandbox_url`](Self::sandbox_url), `E2B_SANDBOX_URL`, then — because a Stasis server
/// serves both planes on one port — the control-plane URL when one was given explicitly or by
/// `E2B_API_URL`, and otherwise E2B's `https://{port}-{sandboxId}.{domain}`.
///
/// Every sandbox request carries `E2b-Sandbox-Id`, `E2b-Sandbox-Port` and, when the server
/// handed one out, `X-Access-Token`, exactly as the official SDKs send them.
///
/// ```
/// use stasis_sdk::ConnectionConfig;
/// let config = ConnectionConfig::from_env()
///     .api_key("my-key")
///     .api_url("http://127.0.0.1:3000");
/// assert_eq!(config.resolved_api_url(), "http://127.0.0.1:3000");
/// ```
#[derive(Clone, Debug)]
pub struct ConnectionConfig {
    api_key: Option<String>,
    api_url: Option<String>,
    sandbox_url: Option<String>,
    domain: Option<String>,
    request_timeout: Duration,
}

impl Default for ConnectionConfig {
    /// The same as [`ConnectionConfig::from_env`].
    fn default() -> Self {
        Self::from_env()
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn trim_url(url: impl Into<String>) -> String {
    url.into().trim().trim_end_matches('/').to_owned()
}

impl ConnectionConfig {
    /// Settings from `E2B_API_KEY`, `E2B_API_URL`, `E2B_SANDBOX_URL` and `E2B_DOMAIN`.
    ///
    /// A missing key is not an error here: the first call that needs it returns
    /// [`Error::MissingApiKey`], as E2B's SDKs do.
    pub fn from_env() -> Self {
        Self {
            api_key: env_var("E2B_API_KEY"),
            api_url: env_var("E2B_API_URL").map(trim_url),
            sandbox_url: env_var("E2B_SANDBOX_URL").map(trim_url),
            domain: env_var("E2B_DOMAIN"),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Settings from nothing but the arguments: no environment variable is read.
    pub fn new(api_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            api_key: Some(api_key.into()),
            api_url: Some(trim_url(api_url)),
            sandbox_url: None,
            domain: None,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Use this API key (`X-API-KEY`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Send control-plane requests to this base URL.
    pub fn api_url(mut self, url: impl Into<String>) -> Self {
        self.api_url = Some(trim_url(url));
        self
    }

    /// Send all sandbox traffic (envd, code interpreter) to this base URL.
    pub fn sandbox_url(mut self, url: impl Into<String>) -> Self {
        self.sandbox_url = Some(trim_url(url));
        self
    }

    /// The domain of `https://api.{domain}` and `https://{port}-{id}.{domain}` URLs.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// How long one request may take (default [`DEFAULT_REQUEST_TIMEOUT`]). Streams — command
    /// output, watches — are bounded by this only until their first message.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Whether an API key is configured.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The configured request timeout.
    pub fn get_request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The control-plane base URL requests go to.
    pub fn resolved_api_url(&self) -> String {
        match (&self.api_url, &self.domain) {
            (Some(url), _) => url.clone(),
            (None, Some(domain)) => format!("https://api.{domain}"),
            (None, None) => DEFAULT_API_URL.to_owned(),
        }
    }

    /// The base URL for traffic to `port` of sandbox `sandbox_id`; `domain` is the one the
    /// server returned for the sandbox, if any.
    pub fn resolved_sandbox_url(&self, sandbox_id: &str, port: u16, domain: Option<&str>) -> String {
        if let Some(url) = &self.sandbox_url {
            return url.clone();
        }
        if let Some(url) = &self.api_url {
            return url.clone();
        }
        match domain.or(self.domain.as_deref()) {
            Some(domain) => format!("https://{port}-{sandbox_id}.{domain}"),
            None => DEFAULT_API_URL.to_owned(),
        }
    }

    pub(crate) fn key(&self) -> Result<&str> {
        self.api_key.as_deref().ok_or(Error::MissingApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let c = ConnectionConfig { api_key: None, api_url: None, sandbox_url: None, domain: None, request_timeout: DEFAULT_REQUEST_TIMEOUT };
        assert_eq!(c.resolved_api_url(), DEFAULT_API_URL);
        assert!(matches!(c.key(), Err(Error::MissingApiKey)));
        let c = c.domain("example.com");
        assert_eq!(c.resolved_api_url(), "https://api.example.com");
        assert_eq!(c.resolved_sandbox_url("abc", 49983, None), "https://49983-abc.example.com");
        assert_eq!(c.resolved_sandbox_url("abc", 49999, Some("other.org")), "https://49999-abc.other.org");
        let c = c.api_url("http://10.0.0.1:3000/");
        assert_eq!(c.resolved_api_url(), "http://10.0.0.1:3000");
        assert_eq!(c.resolved_sandbox_url("abc", 49983, Some("other.org")), "http://10.0.0.1:3000");
        let c = c.sandbox_url("http://10.0.0.2:3000");
        assert_eq!(c.resolved_sandbox_url("abc", 49983, None), "http://10.0.0.2:3000");
    }
}
