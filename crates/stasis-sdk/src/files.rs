//! Files inside a sandbox: envd's `/files` routes for contents, `filesystem.Filesystem` for
//! everything else.

use crate::error::{Error, Result};
use crate::transport::{CallOpts, EnvdStream, SandboxTransport};
use reqwest::Method;
use stasis_proto::filesystem::{EntryResponse, ListDirRequest, ListDirResponse, MoveRequest, PathRequest, WatchDirRequest, WatchDirResponse};

pub use stasis_proto::filesystem::{EntryInfo, EventType, FileType, FilesystemEvent, WriteInfo};

/// Files in one sandbox: [`Sandbox::files`](crate::Sandbox::files).
///
/// Relative paths are resolved against the user's home directory.
///
/// ```no_run
/// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
/// let files = sbx.files();
/// files.write("/home/user/notes.txt", "remember the milk").await?;
/// assert_eq!(files.read_to_string("/home/user/notes.txt").await?, "remember the milk");
/// for entry in files.list("/home/user").await? {
///     println!("{} {} bytes", entry.name, entry.size);
/// }
/// files.remove("/home/user/notes.txt").await?;
/// assert!(!files.exists("/home/user/notes.txt").await?);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Files {
    t: SandboxTransport,
    user: Option<String>,
}

fn fs_call(user: &Option<String>) -> CallOpts {
    CallOpts { user: user.clone(), deadline: None, keepalive: false }
}

impl Files {
    pub(crate) fn new(t: SandboxTransport) -> Self {
        Self { t, user: None }
    }

    /// The same files, accessed as Linux user `user` (permissions and relative paths follow).
    pub fn as_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    fn files_url(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut query = vec![("path", path)];
        if let Some(user) = &self.user {
            query.push(("username", user));
        }
        self.t.request(stasis_proto::ENVD_PORT, method, "/files").query(&query)
    }

    /// A file's contents.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let resp = self.t.http.send(self.files_url(Method::GET, path), Some(self.t.http.config.get_request_timeout())).await?;
        Ok(resp.bytes().await?.to_vec())
    }

    /// A file's contents as text (invalid UTF-8 is an [`Error::InvalidArgument`]).
    pub async fn read_to_string(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read(path).await?).map_err(|_| Error::InvalidArgument { message: format!("{path} is not UTF-8 text") })
    }

    /// Write a file, creating parent directories and replacing what was there.
    pub async fn write(&self, path: &str, data: impl Into<Vec<u8>>) -> Result<WriteInfo> {
        let req = self.files_url(Method::POST, path).header("Content-Type", "application/octet-stream").body(data.into());
        let resp = self.t.http.send(req, Some(self.t.http.config.get_request_timeout())).await?;
        let body = resp.bytes().await?;
        let mut infos: Vec<WriteInfo> = serde_json::from_slice(&body).map_err(|e| Error::Protocol(format!("write reply: {e}")))?;
        infos.pop().ok_or_else(|| Error::Protocol("write reply names no file".into()))
    }

    /// The entries of a directory (not recursive).
    pub async fn list(&self, path: &str) -> Result<Vec<EntryInfo>> {
        self.list_depth(path, 1).await
    }

    /// The entries of a directory down to `depth` levels (at least 1).
    pub async fn list_depth(&self, path: &str, depth: u32) -> Result<Vec<EntryInfo>> {
        if depth < 1 {
            return Err(Error::InvalidArgument { message: "depth should be at least one".into() });
        }
        let req = ListDirRequest { path: path.into(), depth };
        let resp: ListDirResponse = self.t.unary("filesystem.Filesystem/ListDir", &req, fs_call(&self.user)).await?;
        Ok(resp.entries)
    }

    /// What a path is: type, size, mode, owner, modification time. [`Error::NotFound`] if
    /// nothing is there.
    pub async fn stat(&self, path: &str) -> Result<EntryInfo> {
        let resp: EntryResponse = self.t.unary("filesystem.Filesystem/Stat", &PathRequest { path: path.into() }, fs_call(&self.user)).await?;
        resp.entry.ok_or_else(|| Error::Protocol("stat reply has no entry".into()))
    }

    /// Whether something exists at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self.stat(path).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Remove a file or a directory with its contents.
    pub async fn remove(&self, path: &str) -> Result<()> {
        self.t.unary::<_, serde_json::Value>("filesystem.Filesystem/Remove", &PathRequest { path: path.into() }, fs_call(&self.user)).await.map(drop)
    }

    /// Create a directory and its parents. `false` if it already existed.
    pub async fn make_dir(&self, path: &str) -> Result<bool> {
        match self.t.unary::<_, EntryResponse>("filesystem.Filesystem/MakeDir", &PathRequest { path: path.into() }, fs_call(&self.user)).await {
            Ok(_) => Ok(true),
            Err(Error::Conflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Move or rename.
    pub async fn rename(&self, from: &str, to: &str) -> Result<EntryInfo> {
        let req = MoveRequest { source: from.into(), destination: to.into() };
        let resp: EntryResponse = self.t.unary("filesystem.Filesystem/Move", &req, fs_call(&self.user)).await?;
        resp.entry.ok_or_else(|| Error::Protocol("move reply has no entry".into()))
    }

    /// Watch a directory: the returned handle yields an event per change from now on.
    ///
    /// ```no_run
    /// # async fn demo(sbx: stasis_sdk::Sandbox) -> stasis_sdk::Result<()> {
    /// let mut watch = sbx.files().watch_dir("/home/user", false).await?;
    /// sbx.files().write("/home/user/new.txt", "x").await?;
    /// if let Some(event) = watch.next_event().await {
    ///     let event = event?;
    ///     println!("{:?} {}", event.event_type, event.name);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn watch_dir(&self, path: &str, recursive: bool) -> Result<WatchHandle> {
        let req = WatchDirRequest { path: path.into(), recursive, include_entry: true, allow_network_mounts: false };
        let call = CallOpts { user: self.user.clone(), deadline: None, keepalive: true };
        let mut stream: EnvdStream<WatchDirResponse> = self.t.stream("filesystem.Filesystem/WatchDir", &req, call).await?;
        // envd answers `start` once the watch is in place: changes after this call are seen.
        loop {
            match stream.next().await {
                Some(Ok(WatchDirResponse::Start(_))) => break,
                Some(Ok(WatchDirResponse::Keepalive(_))) => continue,
                Some(Ok(WatchDirResponse::Filesystem(_))) => return Err(Error::Protocol("watch sent an event before its start".into())),
                Some(Err(e)) => return Err(e),
                None => return Err(Error::Protocol("watch ended before it started".into())),
            }
        }
        Ok(WatchHandle { stream })
    }
}

/// Changes in a watched directory.
pub struct WatchHandle {
    stream: EnvdStream<WatchDirResponse>,
}

impl std::fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHandle").finish_non_exhaustive()
    }
}

impl WatchHandle {
    /// The next change; `None` when the watch ends.
    pub async fn next_event(&mut self) -> Option<Result<FilesystemEvent>> {
        loop {
            match self.stream.next().await? {
                Ok(WatchDirResponse::Filesystem(ev)) => return Some(Ok(ev)),
                Ok(WatchDirResponse::Start(_) | WatchDirResponse::Keepalive(_)) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Stop watching.
    pub fn stop(self) {}
}
