//! The code interpreter on port 49999 (`code-interpreter-v1` and compatible templates):
//! stateful Jupyter kernels driven by `POST /execute`, answered as one JSON object per line.

use crate::error::{Error, Result};
use crate::transport::SandboxTransport;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The interpreter's port inside the sandbox.
pub const INTERPRETER_PORT: u16 = 49999;
/// How long one execution may take when its options name no limit (E2B's Python default).
pub const DEFAULT_EXECUTION_TIMEOUT: Duration = Duration::from_secs(300);

/// Options of [`Interpreter::run_code`].
#[derive(Clone, Debug)]
pub struct RunCodeOptions {
    /// `python` (the default context), `javascript`, `r`, `java`, `bash`, ...; exclusive with
    /// `context_id`.
    pub language: Option<String>,
    /// Run in this context (from [`Interpreter::create_context`]).
    pub context_id: Option<String>,
    /// Environment variables for this execution.
    pub envs: BTreeMap<String, String>,
    /// How long to wait for the whole execution; `None` means no limit.
    pub timeout: Option<Duration>,
}

impl Default for RunCodeOptions {
    fn default() -> Self {
        Self { language: None, context_id: None, envs: BTreeMap::new(), timeout: Some(DEFAULT_EXECUTION_TIMEOUT) }
    }
}

/// One rich result of an execution (the value of the last expression, or a displayed object).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct ExecutionResult {
    #[serde(default)]
    pub is_main_result: bool,
    pub text: Option<String>,
    pub html: Option<String>,
    pub markdown: Option<String>,
    pub svg: Option<String>,
    /// Base64.
    pub png: Option<String>,
    /// Base64.
    pub jpeg: Option<String>,
    pub pdf: Option<String>,
    pub latex: Option<String>,
    pub json: Option<serde_json::Value>,
    pub javascript: Option<String>,
    pub data: Option<serde_json::Value>,
    pub chart: Option<serde_json::Value>,
    pub extra: Option<serde_json::Value>,
}

/// An exception raised by the executed code (not an SDK error).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExecutionError {
    pub name: String,
    pub value: String,
    pub traceback: String,
}

/// Output printed during an execution, chunk by chunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logs {
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

/// What an execution produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Execution {
    pub results: Vec<ExecutionResult>,
    pub logs: Logs,
    pub error: Option<ExecutionError>,
    pub execution_count: Option<u64>,
}

impl Execution {
    /// The text of the main result (the last expression's value), as E2B's `Execution.text`.
    pub fn text(&self) -> Option<&str> {
        self.results.iter().find(|r| r.is_main_result).and_then(|r| r.text.as_deref())
    }
}

/// A kernel context: its own variables, language and working directory.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct Context {
    pub id: String,
    pub language: String,
    pub cwd: String,
}

/// The code interpreter of one sandbox: [`Sandbox::interpreter`](crate::Sandbox::interpreter).
#[derive(Clone, Debug)]
pub struct Interpreter {
    t: SandboxTransport,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    Stdout { text: String },
    Stderr { text: String },
    Result(Box<ExecutionResult>),
    Error(ExecutionError),
    NumberOfExecutions { execution_count: u64 },
    EndOfExecution,
    #[serde(other)]
    Other,
}

impl Interpreter {
    pub(crate) fn new(t: SandboxTransport) -> Self {
        Self { t }
    }

    /// Run `code` and collect its results, output and error. Variables persist in the context
    /// between calls, and across pause and resume.
    ///
    /// ```no_run
    /// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
    /// let interp = sbx.interpreter();
    /// interp.run_code("x = 41 + 1", Default::default()).await?;
    /// assert_eq!(interp.run_code("x", Default::default()).await?.text(), Some("42"));
    /// # Ok(()) }
    /// ```
    pub async fn run_code(&self, code: &str, opts: RunCodeOptions) -> Result<Execution> {
        if opts.language.is_some() && opts.context_id.is_some() {
            return Err(Error::InvalidArgument { message: "pass a language or a context id, not both".into() });
        }
        let body = serde_json::json!({
            "code": code,
            "context_id": opts.context_id,
            "language": opts.language,
            "env_vars": if opts.envs.is_empty() { None } else { Some(&opts.envs) },
        });
        let req = self.t.request(INTERPRETER_PORT, Method::POST, "/execute").json(&body);
        let mut resp = self.t.http.send(req, None).await?;
        let mut exec = Execution::default();
        let mut buf: Vec<u8> = Vec::new();
        let read = async {
            while let Some(chunk) = resp.chunk().await? {
                buf.extend_from_slice(&chunk);
                while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=nl).collect();
                    if apply_line(&mut exec, &line)? {
                        return Ok(());
                    }
                }
            }
            apply_line(&mut exec, &buf).map(drop)
        };
        match opts.timeout {
            Some(t) => tokio::time::timeout(t, read)
                .await
                .map_err(|_| Error::Timeout { message: format!("execution did not finish within {t:?}") })??,
            None => read.await?,
        }
        Ok(exec)
    }

    /// Create a new context (`language` default `python`, `cwd` default `/home/user`).
    pub async fn create_context(&self, language: Option<&str>, cwd: Option<&str>) -> Result<Context> {
        let body = serde_json::json!({ "language": language, "cwd": cwd });
        let req = self.t.request(INTERPRETER_PORT, Method::POST, "/contexts").json(&body);
        Ok(self.t.http.json(req, Some(self.t.http.config.get_request_timeout())).await?.1)
    }

    /// Remove a context.
    pub async fn remove_context(&self, context_id: &str) -> Result<()> {
        let req = self.t.request(INTERPRETER_PORT, Method::DELETE, &format!("/contexts/{context_id}"));
        self.t.http.send(req, Some(self.t.http.config.get_request_timeout())).await.map(drop)
    }
}

/// Fold one NDJSON line into `exec`; `true` at the end of the execution.
fn apply_line(exec: &mut Execution, line: &[u8]) -> Result<bool> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let parsed: Line = serde_json::from_slice(line).map_err(|e| Error::Protocol(format!("execution output: {e}")))?;
    match parsed {
        Line::Stdout { text } => exec.logs.stdout.push(text),
        Line::Stderr { text } => exec.logs.stderr.push(text),
        Line::Result(r) => exec.results.push(*r),
        Line::Error(e) => exec.error = Some(e),
        Line::NumberOfExecutions { execution_count } => exec.execution_count = Some(execution_count),
        Line::EndOfExecution => return Ok(true),
        Line::Other => {}
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_fold_into_an_execution() {
        let mut exec = Execution::default();
        let lines = [
            r#"{"type":"stdout","text":"hi\n","timestamp":1}"#,
            r#"{"type":"result","is_main_result":true,"text":"42","extra":{}}"#,
            r#"{"type":"number_of_executions","execution_count":3}"#,
            r#"{"type":"keepalive"}"#,
            r#"{"type":"error","name":"ValueError","value":"bad","traceback":"tb"}"#,
        ];
        for l in lines {
            assert!(!apply_line(&mut exec, l.as_bytes()).unwrap());
        }
        assert!(apply_line(&mut exec, br#"{"type":"end_of_execution"}"#).unwrap());
        assert_eq!(exec.text(), Some("42"));
        assert_eq!(exec.logs.stdout, vec!["hi\n"]);
        assert_eq!(exec.execution_count, Some(3));
        assert_eq!(exec.error.unwrap().name, "ValueError");
    }
}
