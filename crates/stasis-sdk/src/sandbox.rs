//! Sandboxes on the control plane: create, connect (resume), pause, kill, timeouts, info, list.

use crate::code::Interpreter;
use crate::commands::{Commands, Pty};
use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use crate::files::Files;
use crate::transport::{Http, SandboxTransport};
use chrono::{DateTime, Utc};
use reqwest::Method;
use stasis_types::wire;
use std::collections::BTreeMap;
use std::time::Duration;

pub use stasis_types::state::PublicState as SandboxState;

/// The sandbox timeout used when a call names none, as in E2B's SDKs: five minutes.
pub const DEFAULT_SANDBOX_TIMEOUT: Duration = Duration::from_secs(300);
/// The template [`Sandbox::create`] starts from when none is named.
pub const DEFAULT_TEMPLATE: &str = "base";
/// Lifecycle calls (create, pause, connect/resume) wait at least this long: pausing takes about
/// a second per GiB of memory, and infra answers only once the snapshot is written.
const LIFECYCLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Egress rules, E2B's `network`: `allow_out` (CIDR blocks, IP addresses or domain names) wins
/// over `deny_out` (CIDR blocks or IP addresses); no lists means everything is allowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetworkRules {
    #[serde(rename = "allowOut", skip_serializing_if = "Vec::is_empty")]
    pub allow_out: Vec<String>,
    #[serde(rename = "denyOut", skip_serializing_if = "Vec::is_empty")]
    pub deny_out: Vec<String>,
}

/// Options of [`Sandbox::create`]. Build with [`SandboxOptions::new`] and its setters.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Template to start from (default [`DEFAULT_TEMPLATE`]).
    pub template: String,
    /// Lifetime; at its end the sandbox is killed, or paused with [`auto_pause`](Self::auto_pause).
    pub timeout: Duration,
    /// Free-form labels, used by [`SandboxQuery::metadata`] filters.
    pub metadata: BTreeMap<String, String>,
    /// Environment of every process in the sandbox.
    pub envs: BTreeMap<String, String>,
    /// Pause instead of kill at the end of the timeout.
    pub auto_pause: bool,
    /// Resume a paused sandbox when traffic arrives for it.
    pub auto_resume: bool,
    /// Whether the sandbox may reach the internet (server default when `None`).
    pub allow_internet_access: Option<bool>,
    /// Egress lists; see [`NetworkRules`].
    pub network: Option<NetworkRules>,
    /// Where to send requests.
    pub config: ConnectionConfig,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            template: DEFAULT_TEMPLATE.into(),
            timeout: DEFAULT_SANDBOX_TIMEOUT,
            metadata: BTreeMap::new(),
            envs: BTreeMap::new(),
            auto_pause: false,
            auto_resume: false,
            allow_internet_access: None,
            network: None,
            config: ConnectionConfig::from_env(),
        }
    }
}

impl SandboxOptions {
    /// Defaults: template `base`, 300 s, configuration from the environment.
    pub fn new() -> Self {
        Self::default()
    }
    /// Start from this template.
    pub fn template(mut self, template: impl Into<String>) -> Self {
        self.template = template.into();
        self
    }
    /// Live this long (whole seconds, rounded up).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Add a metadata label.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
    /// Add an environment variable for every process.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.envs.insert(key.into(), value.into());
        self
    }
    /// Pause instead of kill when the timeout ends.
    pub fn auto_pause(mut self, on: bool) -> Self {
        self.auto_pause = on;
        self
    }
    /// Resume when traffic arrives for the paused sandbox.
    pub fn auto_resume(mut self, on: bool) -> Self {
        self.auto_resume = on;
        self
    }
    /// Let the sandbox reach the internet (`true`, the default) or nothing outside (`false`).
    pub fn allow_internet_access(mut self, on: bool) -> Self {
        self.allow_internet_access = Some(on);
        self
    }
    /// Egress allow/deny lists.
    pub fn network(mut self, rules: NetworkRules) -> Self {
        self.network = Some(rules);
        self
    }
    /// Use this connection configuration instead of the environment's.
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }
}

/// Options of [`Sandbox::connect`] and [`Sandbox::resume`].
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The sandbox's new lifetime from now (default [`DEFAULT_SANDBOX_TIMEOUT`]). On a running
    /// sandbox the end time is only ever extended.
    pub timeout: Duration,
    /// Where to send requests.
    pub config: ConnectionConfig,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { timeout: DEFAULT_SANDBOX_TIMEOUT, config: ConnectionConfig::from_env() }
    }
}

impl ConnectOptions {
    /// Defaults: 300 s, configuration from the environment.
    pub fn new() -> Self {
        Self::default()
    }
    /// Live this long from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Use this connection configuration instead of the environment's.
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }
}

/// What the server knows about a sandbox ([`Sandbox::info`], [`SandboxPaginator::next_items`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SandboxInfo {
    /// The sandbox's id.
    pub sandbox_id: String,
    /// The template it was created from.
    pub template_id: String,
    /// The template's alias, if it has one.
    pub name: Option<String>,
    /// Labels given at creation.
    pub metadata: BTreeMap<String, String>,
    /// When the sandbox was created.
    pub started_at: DateTime<Utc>,
    /// When it will be killed (or paused, with auto-pause), unless the timeout changes.
    pub end_at: DateTime<Utc>,
    /// `Running` or `Paused` (a sandbox being paused already counts as paused).
    pub state: SandboxState,
    /// vCPUs.
    pub cpu_count: u32,
    /// Memory limit, MiB.
    pub memory_mb: u64,
    /// Disk size, MiB.
    pub disk_size_mb: u64,
    /// The envd protocol version inside it.
    pub envd_version: String,
}

impl From<wire::SandboxDetail> for SandboxInfo {
    fn from(d: wire::SandboxDetail) -> Self {
        Self {
            sandbox_id: d.sandbox_id,
            template_id: d.template_id,
            name: d.alias,
            metadata: d.metadata,
            started_at: d.started_at,
            end_at: d.end_at,
            state: d.state,
            cpu_count: d.cpu_count,
            memory_mb: d.memory_mb,
            disk_size_mb: d.disk_size_mb,
            envd_version: d.envd_version,
        }
    }
}

impl From<wire::ListedSandbox> for SandboxInfo {
    fn from(d: wire::ListedSandbox) -> Self {
        Self {
            sandbox_id: d.sandbox_id,
            template_id: d.template_id,
            name: d.alias,
            metadata: d.metadata,
            started_at: d.started_at,
            end_at: d.end_at,
            state: d.state,
            cpu_count: d.cpu_count,
            memory_mb: d.memory_mb,
            disk_size_mb: d.disk_size_mb,
            envd_version: d.envd_version,
        }
    }
}

/// Filters of [`Sandbox::list`]; they combine with AND.
#[derive(Clone, Debug, Default)]
pub struct SandboxQuery {
    /// Only sandboxes in these states; empty means running and paused.
    pub state: Vec<SandboxState>,
    /// Only sandboxes carrying all of these metadata labels.
    pub metadata: BTreeMap<String, String>,
}

/// Options of [`Sandbox::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// Filters.
    pub query: SandboxQuery,
    /// Page size (server default 100).
    pub limit: Option<u32>,
    /// Start from this page token.
    pub next_token: Option<String>,
    /// Where to send requests.
    pub config: ConnectionConfig,
}

impl ListOptions {
    /// All sandboxes, configuration from the environment.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only sandboxes in `state` (call again to add states).
    pub fn state(mut self, state: SandboxState) -> Self {
        self.query.state.push(state);
        self
    }
    /// Only sandboxes labelled `key=value`.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.query.metadata.insert(key.into(), value.into());
        self
    }
    /// Page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }
    /// Use this connection configuration instead of the environment's.
    pub fn config(mut self, config: ConnectionConfig) -> Self {
        self.config = config;
        self
    }
}

/// Pages of [`Sandbox::list`]: call [`next_items`](Self::next_items) while
/// [`has_next`](Self::has_next).
#[derive(Debug)]
pub struct SandboxPaginator {
    opts: ListOptions,
    has_next: bool,
    next_token: Option<String>,
}

impl SandboxPaginator {
    /// Whether another page may exist (true before the first page).
    pub fn has_next(&self) -> bool {
        self.has_next
    }

    /// The token of the next page, if the last answer had one.
    pub fn next_token(&self) -> Option<&str> {
        self.next_token.as_deref()
    }

    /// Fetch the next page. Fails with [`Error::InvalidArgument`] when there is none.
    pub async fn next_items(&mut self) -> Result<Vec<SandboxInfo>> {
        if !self.has_next {
            return Err(Error::InvalidArgument { message: "no more items to fetch".into() });
        }
        let http = Http::new(&self.opts.config)?;
        let mut query: Vec<(&str, String)> = Vec::new();
        if !self.opts.query.state.is_empty() {
            let states: Vec<&str> = self.opts.query.state.iter().map(|s| state_name(*s)).collect();
            query.push(("state", states.join(",")));
        }
        if !self.opts.query.metadata.is_empty() {
            // A form-encoded `k=v&k2=v2` string, itself a query value: the server decodes twice.
            let inner = form_urlencoded::Serializer::new(String::new()).extend_pairs(&self.opts.query.metadata).finish();
            query.push(("metadata", inner));
        }
        if let Some(limit) = self.opts.limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(token) = &self.next_token {
            query.push(("nextToken", token.clone()));
        }
        let req = http.api(Method::GET, "/v2/sandboxes")?.query(&query);
        let resp = http.send(req, Some(http.config.get_request_timeout())).await?;
        self.next_token = resp
            .headers()
            .get("x-next-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        self.has_next = self.next_token.is_some();
        let body = resp.bytes().await?;
        let items: Vec<wire::ListedSandbox> = serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("sandbox list: {e}")))?;
        Ok(items.into_iter().map(SandboxInfo::from).collect())
    }

    /// Every remaining page, concatenated.
    pub async fn all(mut self) -> Result<Vec<SandboxInfo>> {
        let mut out = Vec::new();
        while self.has_next() {
            out.extend(self.next_items().await?);
        }
        Ok(out)
    }
}

fn state_name(s: SandboxState) -> &'static str {
    match s {
        SandboxState::Running => "running",
        SandboxState::Paused => "paused",
    }
}

/// A sandbox you are connected to: its id, and handles for what runs inside it.
///
/// ```no_run
/// use stasis_sdk::{Sandbox, SandboxOptions};
/// # async fn demo() -> stasis_sdk::Result<()> {
/// let sbx = Sandbox::create(SandboxOptions::new()).await?;
/// sbx.files().write("/home/user/hello.txt", "hi").await?;
/// let out = sbx.commands().run("cat /home/user/hello.txt").await?;
/// assert_eq!(out.stdout, "hi");
/// assert!(sbx.pause().await?);                    // memory, processes and files are kept
/// let sbx = Sandbox::connect(sbx.sandbox_id(), Default::default()).await?;
/// sbx.kill().await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Sandbox {
    transport: SandboxTransport,
    template_id: String,
    envd_version: String,
}

fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn lifecycle_timeout(http: &Http) -> Duration {
    http.config.get_request_timeout().max(LIFECYCLE_TIMEOUT)
}

impl Sandbox {
    fn from_wire(http: Http, s: wire::Sandbox) -> Sandbox {
        Sandbox {
            transport: SandboxTransport { http, sandbox_id: s.sandbox_id, access_token: s.envd_access_token, domain: s.domain },
            template_id: s.template_id,
            envd_version: s.envd_version,
        }
    }

    /// Start a new sandbox (`POST /v2/sandboxes`).
    pub async fn create(opts: SandboxOptions) -> Result<Sandbox> {
        let http = Http::new(&opts.config)?;
        let body = wire::NewSandbox {
            template_id: opts.template,
            timeout: Some(secs(opts.timeout)),
            auto_pause: Some(opts.auto_pause),
            auto_pause_memory: None,
            auto_resume: opts.auto_resume.then_some(wire::AutoResumeConfig { enabled: true }),
            secure: Some(true),
            allow_internet_access: opts.allow_internet_access,
            network: opts.network.as_ref().map(|n| serde_json::to_value(n).expect("rules serialise")),
            metadata: Some(opts.metadata),
            env_vars: Some(opts.envs),
            mcp: None,
        };
        let req = http.api(Method::POST, "/v2/sandboxes")?.json(&body);
        let (_, sandbox): (u16, wire::Sandbox) = http.json(req, Some(lifecycle_timeout(&http))).await?;
        Ok(Sandbox::from_wire(http, sandbox))
    }

    /// Connect to a sandbox, resuming it if it is paused (`POST /v2/sandboxes/{id}/connect`).
    /// Its lifetime becomes `opts.timeout` from now (only extended if it is running).
    ///
    /// Fails with [`Error::NotFound`] if the sandbox was killed, expired or never existed, and
    /// with [`Error::Conflict`] while it is being paused or resumed by someone else.
    pub async fn connect(sandbox_id: &str, opts: ConnectOptions) -> Result<Sandbox> {
        let http = Http::new(&opts.config)?;
        let body = wire::ConnectSandbox { timeout: Some(secs(opts.timeout)), memory: None };
        let req = http.api(Method::POST, &format!("/v2/sandboxes/{sandbox_id}/connect"))?.json(&body);
        let (_, sandbox): (u16, wire::Sandbox) = http.json(req, Some(lifecycle_timeout(&http))).await?;
        Ok(Sandbox::from_wire(http, sandbox))
    }

    /// A handle to a sandbox as it is, without connecting: its state and timeout are left
    /// alone (`GET /sandboxes/{id}`). Calls into a paused sandbox then fail with
    /// [`Error::SandboxNotRunning`]; use [`Sandbox::connect`] to resume it instead.
    pub async fn attach(sandbox_id: &str, config: &ConnectionConfig) -> Result<Sandbox> {
        let http = Http::new(config)?;
        let req = http.api(Method::GET, &format!("/sandboxes/{sandbox_id}"))?;
        let (_, d): (u16, wire::SandboxDetail) = http.json(req, Some(http.config.get_request_timeout())).await?;
        Ok(Sandbox {
            transport: SandboxTransport { http, sandbox_id: d.sandbox_id, access_token: d.envd_access_token, domain: d.domain },
            template_id: d.template_id,
            envd_version: d.envd_version,
        })
    }

    /// Resume a paused sandbox (or connect to a running one): the same as [`Sandbox::connect`],
    /// under the name E2B's pause/resume guide uses.
    pub async fn resume(sandbox_id: &str, opts: ConnectOptions) -> Result<Sandbox> {
        Self::connect(sandbox_id, opts).await
    }

    /// The sandbox's id: keep it to connect again later.
    pub fn sandbox_id(&self) -> &str {
        &self.transport.sandbox_id
    }

    /// The template it was created from.
    pub fn template_id(&self) -> &str {
        &self.template_id
    }

    /// The envd protocol version inside it.
    pub fn envd_version(&self) -> &str {
        &self.envd_version
    }

    /// Pause it: memory, processes and files are saved and nothing runs until it is resumed.
    /// Returns `true` once the snapshot is written, `false` if it was already paused.
    pub async fn pause(&self) -> Result<bool> {
        Self::pause_by_id(self.sandbox_id(), &self.transport.http.config).await
    }

    /// [`Sandbox::pause`] by id.
    pub async fn pause_by_id(sandbox_id: &str, config: &ConnectionConfig) -> Result<bool> {
        let http = Http::new(config)?;
        let req = http.api(Method::POST, &format!("/sandboxes/{sandbox_id}/pause"))?.json(&serde_json::json!({}));
        match http.send(req, Some(lifecycle_timeout(&http))).await {
            Ok(_) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Kill it, paused or running, and delete its snapshot. `false` if it was already gone.
    pub async fn kill(&self) -> Result<bool> {
        Self::kill_by_id(self.sandbox_id(), &self.transport.http.config).await
    }

    /// Kill a sandbox by id (E2B's static `Sandbox.kill(id)`). `false` if it did not exist.
    pub async fn kill_by_id(sandbox_id: &str, config: &ConnectionConfig) -> Result<bool> {
        let http = Http::new(config)?;
        let req = http.api(Method::DELETE, &format!("/sandboxes/{sandbox_id}"))?;
        match http.send(req, Some(http.config.get_request_timeout())).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Set its lifetime to `timeout` from now (it can shorten it too).
    pub async fn set_timeout(&self, timeout: Duration) -> Result<()> {
        Self::set_timeout_by_id(self.sandbox_id(), timeout, &self.transport.http.config).await
    }

    /// [`Sandbox::set_timeout`] by id.
    pub async fn set_timeout_by_id(sandbox_id: &str, timeout: Duration, config: &ConnectionConfig) -> Result<()> {
        let http = Http::new(config)?;
        let body = wire::TimeoutRequest { timeout: secs(timeout) };
        let req = http.api(Method::POST, &format!("/sandboxes/{sandbox_id}/timeout"))?.json(&body);
        http.send(req, Some(http.config.get_request_timeout())).await.map(drop)
    }

    /// Replace the egress rules (`allow_internet_access: None` turns the internet back on); a
    /// paused sandbox gets them when it resumes.
    pub async fn update_network(&self, allow_internet_access: Option<bool>, rules: NetworkRules) -> Result<()> {
        Self::update_network_by_id(self.sandbox_id(), allow_internet_access, rules, &self.transport.http.config).await
    }

    /// [`Sandbox::update_network`] by id.
    pub async fn update_network_by_id(sandbox_id: &str, allow_internet_access: Option<bool>, rules: NetworkRules, config: &ConnectionConfig) -> Result<()> {
        let http = Http::new(config)?;
        let mut body = serde_json::to_value(&rules).expect("rules serialise");
        if let Some(on) = allow_internet_access {
            body["allow_internet_access"] = serde_json::Value::Bool(on);
        }
        let req = http.api(Method::PUT, &format!("/sandboxes/{sandbox_id}/network"))?.json(&body);
        http.send(req, Some(http.config.get_request_timeout())).await.map(drop)
    }

    /// What the server knows about it: state, times, size, metadata.
    pub async fn info(&self) -> Result<SandboxInfo> {
        Self::info_by_id(self.sandbox_id(), &self.transport.http.config).await
    }

    /// [`Sandbox::info`] by id.
    pub async fn info_by_id(sandbox_id: &str, config: &ConnectionConfig) -> Result<SandboxInfo> {
        let http = Http::new(config)?;
        let req = http.api(Method::GET, &format!("/sandboxes/{sandbox_id}"))?;
        let (_, detail): (u16, wire::SandboxDetail) = http.json(req, Some(http.config.get_request_timeout())).await?;
        Ok(detail.into())
    }

    /// Resource use samples (CPU, memory, disk) between `start` and `end`, or the latest one
    /// when neither is given (`GET /sandboxes/{id}/metrics`).
    pub async fn metrics(&self, start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> Result<Vec<wire::SandboxMetric>> {
        let http = &self.transport.http;
        let mut query = Vec::new();
        if let Some(s) = start {
            query.push(("start", s.timestamp().to_string()));
        }
        if let Some(e) = end {
            query.push(("end", e.timestamp().to_string()));
        }
        let req = http.api(Method::GET, &format!("/sandboxes/{}/metrics", self.sandbox_id()))?.query(&query);
        Ok(http.json(req, Some(http.config.get_request_timeout())).await?.1)
    }

    /// Whether envd inside it answers (`false` when it is paused or gone).
    pub async fn is_running(&self) -> Result<bool> {
        let req = self.transport.request(stasis_proto::ENVD_PORT, Method::GET, "/health");
        match self.transport.http.send(req, Some(self.transport.http.config.get_request_timeout())).await {
            Ok(_) => Ok(true),
            Err(Error::SandboxNotRunning { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// List sandboxes, a page at a time. No request is made until
    /// [`next_items`](SandboxPaginator::next_items).
    ///
    /// ```no_run
    /// use stasis_sdk::{ListOptions, Sandbox, SandboxState};
    /// # async fn demo() -> stasis_sdk::Result<()> {
    /// let mut pages = Sandbox::list(ListOptions::new().state(SandboxState::Paused).metadata("user", "ada"));
    /// while pages.has_next() {
    ///     for sbx in pages.next_items().await? {
    ///         println!("{} {:?}", sbx.sandbox_id, sbx.state);
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn list(opts: ListOptions) -> SandboxPaginator {
        let next_token = opts.next_token.clone();
        SandboxPaginator { opts, has_next: true, next_token }
    }

    /// Run commands and background processes.
    pub fn commands(&self) -> Commands {
        Commands::new(self.transport.clone())
    }

    /// Interactive terminals.
    pub fn pty(&self) -> Pty {
        Pty::new(self.transport.clone())
    }

    /// Read, write, list and watch files.
    pub fn files(&self) -> Files {
        Files::new(self.transport.clone())
    }

    /// The code interpreter (templates with a Jupyter server on port 49999, such as
    /// `code-interpreter-v1`).
    pub fn interpreter(&self) -> Interpreter {
        Interpreter::new(self.transport.clone())
    }

    /// Run code in the interpreter's default Python context; see [`Interpreter::run_code`].
    pub async fn run_code(&self, code: &str) -> Result<crate::code::Execution> {
        self.interpreter().run_code(code, Default::default()).await
    }
}

/// Running and paused time of the caller's sandboxes (`GET /usage`, a Stasis extension).
pub async fn usage(config: &ConnectionConfig) -> Result<wire::UsageReport> {
    let http = Http::new(config)?;
    let req = http.api(Method::GET, "/usage")?;
    Ok(http.json(req, Some(http.config.get_request_timeout())).await?.1)
}
