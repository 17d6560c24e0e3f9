//! `filesystem.Filesystem` messages (E2B `filesystem/filesystem.proto`).

use crate::json::{int64, nullable, uint32};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

crate::proto_enum!(
    /// `filesystem.FileType`.
    FileType {
        Unspecified = 0 => "FILE_TYPE_UNSPECIFIED",
        File = 1 => "FILE_TYPE_FILE",
        Directory = 2 => "FILE_TYPE_DIRECTORY",
        Symlink = 3 => "FILE_TYPE_SYMLINK",
    }
);

crate::proto_enum!(
    /// `filesystem.EventType`.
    EventType {
        Unspecified = 0 => "EVENT_TYPE_UNSPECIFIED",
        Create = 1 => "EVENT_TYPE_CREATE",
        Write = 2 => "EVENT_TYPE_WRITE",
        Remove = 3 => "EVENT_TYPE_REMOVE",
        Rename = 4 => "EVENT_TYPE_RENAME",
        Chmod = 5 => "EVENT_TYPE_CHMOD",
    }
);

/// `EntryInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryInfo {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub file_type: FileType,
    #[serde(default)]
    pub path: String,
    #[serde(default, with = "int64")]
    pub size: i64,
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub mode: u32,
    #[serde(default)]
    pub permissions: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub group: String,
    /// RFC 3339 (`google.protobuf.Timestamp` in proto3 JSON).
    #[serde(default, alias = "modified_time", skip_serializing_if = "Option::is_none")]
    pub modified_time: Option<String>,
    #[serde(default, alias = "symlink_target", skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, alias = "is_symlink", skip_serializing_if = "std::ops::Not::not")]
    pub is_symlink: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
}

/// `StatRequest`, `MakeDirRequest` and `RemoveRequest` are all `{path}`.
pub type StatRequest = PathRequest;
/// See [`PathRequest`].
pub type MakeDirRequest = PathRequest;
/// See [`PathRequest`].
pub type RemoveRequest = PathRequest;

/// `StatResponse`, `MakeDirResponse` and `MoveResponse` are all `{entry}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryResponse {
    #[serde(default)]
    pub entry: Option<EntryInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub source: String,
    #[serde(default, deserialize_with = "nullable")]
    pub destination: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDirRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "uint32::deserialize")]
    pub depth: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListDirResponse {
    #[serde(default, deserialize_with = "nullable")]
    pub entries: Vec<EntryInfo>,
}

/// `WatchDirRequest` and `CreateWatcherRequest` have the same fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchDirRequest {
    #[serde(default, deserialize_with = "nullable")]
    pub path: String,
    #[serde(default, deserialize_with = "nullable")]
    pub recursive: bool,
    #[serde(default, alias = "include_entry", deserialize_with = "nullable")]
    pub include_entry: bool,
    #[serde(default, alias = "allow_network_mounts", deserialize_with = "nullable")]
    pub allow_network_mounts: bool,
}

/// See [`WatchDirRequest`].
pub type CreateWatcherRequest = WatchDirRequest;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesystemEvent {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub event_type: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<EntryInfo>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `WatchDirResponse`: a oneof of `start`, `filesystem` and `keepalive`.
// Short-lived wire messages: boxing the event would only add an allocation per event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WatchDirResponse {
    Start(Empty),
    Filesystem(FilesystemEvent),
    Keepalive(Empty),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWatcherResponse {
    #[serde(default, alias = "watcher_id")]
    pub watcher_id: String,
}

/// `GetWatcherEventsRequest` and `RemoveWatcherRequest` are both `{watcherId}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WatcherRequest {
    #[serde(default, alias = "watcher_id", deserialize_with = "nullable")]
    pub watcher_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetWatcherEventsResponse {
    #[serde(default, deserialize_with = "nullable")]
    pub events: Vec<FilesystemEvent>,
}

/// One entry of the `POST /files` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteInfo {
    pub path: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_info_shape() {
        let e = EntryInfo {
            name: "a".into(),
            file_type: FileType::File,
            path: "/a".into(),
            size: 5_000_000_000,
            mode: 0o644,
            permissions: "-rw-r--r--".into(),
            owner: "root".into(),
            group: "root".into(),
            modified_time: Some("1970-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        let v: serde_json::Value = serde_json::to_value(&e).unwrap();
        assert_eq!(v["type"], "FILE_TYPE_FILE");
        assert_eq!(v["size"], "5000000000");
        assert_eq!(v["mode"], 420);
        assert_eq!(v["modifiedTime"], "1970-01-01T00:00:00Z");
        let back: EntryInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn requests_accept_both_casings() {
        let w: WatchDirRequest = serde_json::from_str(r#"{"path":"/x","include_entry":true,"allowNetworkMounts":true}"#).unwrap();
        assert!(w.include_entry && w.allow_network_mounts && !w.recursive);
        let l: ListDirRequest = serde_json::from_str(r#"{"path":"/","depth":"2"}"#).unwrap();
        assert_eq!(l.depth, 2);
        assert!(serde_json::from_str::<ListDirRequest>(r#"{"path":5}"#).is_err());
        let ev = WatchDirResponse::Filesystem(FilesystemEvent { name: "f".into(), event_type: EventType::Create, entry: None });
        assert_eq!(serde_json::to_string(&ev).unwrap(), r#"{"filesystem":{"name":"f","type":"EVENT_TYPE_CREATE"}}"#);
        assert_eq!(serde_json::to_string(&WatchDirResponse::Start(Empty {})).unwrap(), r#"{"start":{}}"#);
    }
}
