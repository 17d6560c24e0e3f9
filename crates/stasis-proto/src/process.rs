//! `process.Process` messages (E2B `process/process.proto`).

use crate::json::{b64, int32, nullable, uint32};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

crate::proto_enum!(
    /// `process.Signal`.
    Signal {
        Unspecified = 0 => "SIGNAL_UNSPECIFIED",
        Sigterm = 15 => "SIGNAL_SIGTERM",
        Sigkill = 9 => "SIGNAL_SIGKILL",
    }
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessConfig {
    #[serde(default, deserialize_with = "nullable")]
    pub cmd: String,
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub envs: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PtySize {
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub cols: u32,
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub rows: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pty {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<PtySize>,
}

/// `ProcessSelector`: a oneof of `pid` and `tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "SelectorRepr")]
pub enum ProcessSelector {
    Pid(u32),
    Tag(String),
}

#[derive(Deserialize)]
struct SelectorRepr {
    #[serde(default, deserialize_with = "opt_u32")]
    pid: Option<u32>,
    #[serde(default)]
    tag: Option<String>,
}

fn opt_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => uint32::deserialize(v).map(Some).map_err(serde::de::Error::custom),
    }
}

impl TryFrom<SelectorRepr> for ProcessSelector {
    type Error = String;
    fn try_from(r: SelectorRepr) -> Result<Self, String> {
        match (r.pid, r.tag) {
            (Some(pid), None) => Ok(ProcessSelector::Pid(pid)),
            (None, Some(tag)) => Ok(ProcessSelector::Tag(tag)),
            (None, None) => Err("process selector needs a pid or a tag".into()),
            (Some(_), Some(_)) => Err("process selector has both a pid and a tag".into()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    #[serde(default)]
    pub process: Option<ProcessConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectRequest {
    pub process: ProcessSelector,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListRequest {}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    #[serde(default)]
    pub config: ProcessConfig,
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub pid: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListResponse {
    #[serde(default, deserialize_with = "nullable")]
    pub processes: Vec<ProcessInfo>,
}

/// `ProcessInput`: a oneof of `stdin` and `pty` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "InputRepr")]
pub enum ProcessInput {
    Stdin(#[serde(with = "b64")] Vec<u8>),
    Pty(#[serde(with = "b64")] Vec<u8>),
}

#[derive(Deserialize)]
struct InputRepr {
    #[serde(default, deserialize_with = "opt_b64")]
    stdin: Option<Vec<u8>>,
    #[serde(default, deserialize_with = "opt_b64")]
    pty: Option<Vec<u8>>,
}

fn opt_b64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => b64::decode(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

impl TryFrom<InputRepr> for ProcessInput {
    type Error = String;
    fn try_from(r: InputRepr) -> Result<Self, String> {
        match (r.stdin, r.pty) {
            (Some(b), None) => Ok(ProcessInput::Stdin(b)),
            (None, Some(b)) => Ok(ProcessInput::Pty(b)),
            (None, None) => Err("process input needs stdin or pty bytes".into()),
            (Some(_), Some(_)) => Err("process input has both stdin and pty".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendInputRequest {
    pub process: ProcessSelector,
    pub input: ProcessInput,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SendSignalRequest {
    pub process: ProcessSelector,
    #[serde(default)]
    pub signal: Signal,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseStdinRequest {
    pub process: ProcessSelector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateRequest {
    pub process: ProcessSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pty: Option<Pty>,
}

/// An empty response message (`SendInputResponse`, `UpdateResponse`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `StreamInputRequest`: a oneof of `start`, `data` and `keepalive`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StreamInputRequest {
    Start { process: ProcessSelector },
    Data { input: ProcessInput },
    Keepalive(Empty),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartEvent {
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub pid: u32,
}

/// `DataEvent`: a oneof of `stdout`, `stderr` and `pty` bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DataEvent {
    Stdout(#[serde(with = "b64")] Vec<u8>),
    Stderr(#[serde(with = "b64")] Vec<u8>),
    Pty(#[serde(with = "b64")] Vec<u8>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndEvent {
    #[serde(default, alias = "exit_code", deserialize_with = "int32::deserialize")]
    pub exit_code: i32,
    #[serde(default)]
    pub exited: bool,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `ProcessEvent`: a oneof of `start`, `data`, `end` and `keepalive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ProcessEvent {
    Start(StartEvent),
    Data(DataEvent),
    End(EndEvent),
    Keepalive(Empty),
}

/// `StartResponse` and `ConnectResponse`: `{event}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessEventResponse {
    pub event: ProcessEvent,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_start_request_parses() {
        let js = r#"{"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi"],"envs":{"A":"b"},"cwd":"/tmp"},"stdin":false,"tag":"t"}"#;
        let r: StartRequest = serde_json::from_str(js).unwrap();
        let p = r.process.unwrap();
        assert_eq!(p.args[2], "echo hi");
        assert_eq!(p.cwd.as_deref(), Some("/tmp"));
        assert_eq!(r.stdin, Some(false));
        let empty: StartRequest = serde_json::from_str(r#"{"process":{"cmd":"ls","envs":null}}"#).unwrap();
        assert!(empty.process.unwrap().envs.is_empty());
    }

    #[test]
    fn events_serialize_like_proto3_json() {
        let ev = ProcessEventResponse { event: ProcessEvent::Data(DataEvent::Stdout(b"hi\n".to_vec())) };
        assert_eq!(serde_json::to_string(&ev).unwrap(), r#"{"event":{"data":{"stdout":"aGkK"}}}"#);
        let end = ProcessEventResponse {
            event: ProcessEvent::End(EndEvent { exit_code: -1, exited: false, status: "signal: killed".into(), error: None }),
        };
        assert_eq!(
            serde_json::to_string(&end).unwrap(),
            r#"{"event":{"end":{"exitCode":-1,"exited":false,"status":"signal: killed"}}}"#
        );
        let ka = ProcessEventResponse { event: ProcessEvent::Keepalive(Empty {}) };
        assert_eq!(serde_json::to_string(&ka).unwrap(), r#"{"event":{"keepalive":{}}}"#);
        let back: ProcessEventResponse = serde_json::from_str(r#"{"event":{"end":{"exit_code":3}}}"#).unwrap();
        assert!(matches!(back.event, ProcessEvent::End(EndEvent { exit_code: 3, .. })));
    }

    #[test]
    fn selectors_and_signals() {
        let r: SendSignalRequest = serde_json::from_str(r#"{"process":{"pid":"42"},"signal":"SIGNAL_SIGKILL"}"#).unwrap();
        assert_eq!(r.process, ProcessSelector::Pid(42));
        assert_eq!(r.signal, Signal::Sigkill);
        let r: SendSignalRequest = serde_json::from_str(r#"{"process":{"tag":"x"},"signal":15}"#).unwrap();
        assert_eq!(r.signal, Signal::Sigterm);
        assert!(serde_json::from_str::<ConnectRequest>(r#"{"process":{}}"#).is_err());
        assert!(serde_json::from_str::<SendSignalRequest>(r#"{"process":{"pid":1},"signal":"SIGHUP"}"#).is_err());
        assert!(serde_json::from_str::<ConnectRequest>(r#"{"process":{"pid":-1}}"#).is_err());
        assert_eq!(serde_json::to_string(&ProcessSelector::Pid(7)).unwrap(), r#"{"pid":7}"#);
    }

    #[test]
    fn input_forms() {
        let r: SendInputRequest = serde_json::from_str(r#"{"process":{"pid":1},"input":{"stdin":"aGk="}}"#).unwrap();
        assert_eq!(r.input, ProcessInput::Stdin(b"hi".to_vec()));
        let s: StreamInputRequest = serde_json::from_str(r#"{"data":{"input":{"pty":"aGk"}}}"#).unwrap();
        assert_eq!(s, StreamInputRequest::Data { input: ProcessInput::Pty(b"hi".to_vec()) });
        let k: StreamInputRequest = serde_json::from_str(r#"{"keepalive":{}}"#).unwrap();
        assert_eq!(k, StreamInputRequest::Keepalive(Empty {}));
    }
}
