//! Directory watchers on inotify (`WatchDir`, and the polled `CreateWatcher` family).
//!
//! inotify instances are checkpointed by CRIU with the watches they hold, provided the sandbox
//! root is an overlay mounted with `index=on,nfs_export=on` (see PLATFORM.md), so watchers keep
//! working across pause/resume.

use crate::creds;
use crate::fs::{entry_info, io_error};
use crate::users::SandboxUser;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use stasis_proto::connect::{Code, ConnectError};
use stasis_proto::filesystem::{EventType, FilesystemEvent};
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct InotifyFd(Inotify);

impl crate::fdio::OwnsFd for InotifyFd {}

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// What to watch.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    pub root: PathBuf,
    pub recursive: bool,
    pub include_entry: bool,
    pub allow_network_mounts: bool,
}

fn mask() -> AddWatchFlags {
    AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_MODIFY
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_DELETE_SELF
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_ONLYDIR
}

/// Add watches on `dir` (and, if `recursive`, every directory below it), recording each
/// watch's path relative to the root. Returns what was found below `dir` (relative paths).
fn add_tree(
    ino: &Inotify,
    root: &Path,
    dir: &Path,
    recursive: bool,
    wds: &mut HashMap<WatchDescriptor, PathBuf>,
) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(wd) = ino.add_watch(dir, mask()) else { return found };
    wds.insert(wd, dir.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default());
    if !recursive {
        return found;
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let path = e.path();
            found.push(path.strip_prefix(root).map(Path::to_path_buf).unwrap_or_default());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                found.extend(add_tree(ino, root, &path, true, wds));
            }
        }
    }
    found
}

fn is_network_fs(path: &Path) -> bool {
    use nix::sys::statfs::{statfs, FsType};
    const NETWORK: [i64; 6] = [
        0x6969,      // NFS
        0xFF53_4D42, // CIFS
        0xFE53_4D42, // SMB2
        0x517B,      // SMB
        0x6573_5546, // FUSE
        0x0102_1997, // 9P
    ];
    match statfs(path) {
        Ok(s) => {
            let FsType(t) = s.filesystem_type();
            #[allow(clippy::unnecessary_cast)]
            NETWORK.contains(&(t as i64))
        }
        Err(_) => false,
    }
}

/// Start watching; events arrive on the returned channel until it is dropped.
pub async fn start(user: &SandboxUser, spec: WatchSpec) -> Result<mpsc::Receiver<FilesystemEvent>, ConnectError> {
    let s = spec.clone();
    let (ino, wds) = creds::run_as(user, move || {
        let meta = match std::fs::metadata(&s.root) {
            Ok(m) => m,
            Err(e) => return Ok(Err(io_error(&e, "watch", &s.root))),
        };
        if !meta.is_dir() {
            return Ok(Err(ConnectError::invalid_argument(format!("path {} is not a directory", s.root.display()))));
        }
        if !s.allow_network_mounts && is_network_fs(&s.root) {
            return Ok(Err(ConnectError::failed_precondition(format!(
                "path {} is on a network mount; set allowNetworkMounts to watch it",
                s.root.display()
            ))));
        }
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        if let Err(e) = ino.add_watch(&s.root, mask()) {
            return Ok(Err(io_error(&std::io::Error::from(e), "watch", &s.root)));
        }
        let mut wds = HashMap::new();
        let _existing = add_tree(&ino, &s.root, &s.root, s.recursive, &mut wds);
        Ok(Ok((ino, wds)))
    })
    .await
    .map_err(|e| ConnectError::internal(format!("starting watcher: {e}")))??;

    let fd = Arc::new(crate::fdio::register(InotifyFd(ino)).map_err(|e| ConnectError::internal(format!("watcher: {e}")))?);
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(run(fd, wds, spec, user.clone(), tx));
    Ok(rx)
}

async fn run(
    fd: Arc<AsyncFd<InotifyFd>>,
    mut wds: HashMap<WatchDescriptor, PathBuf>,
    spec: WatchSpec,
    user: SandboxUser,
    tx: mpsc::Sender<FilesystemEvent>,
) {
    loop {
        let events = tokio::select! {
            _ = tx.closed() => return,
            r = fd.readable() => {
                let Ok(mut guard) = r else { return };
                match guard.try_io(|f| f.get_ref().0.read_events().map_err(std::io::Error::from)) {
                    Ok(Ok(evs)) => evs,
                    Ok(Err(_)) => return,
                    Err(_would_block) => continue,
                }
            }
        };
        for ev in events {
            if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                let was_root = wds.remove(&ev.wd).is_some_and(|p| p.as_os_str().is_empty());
                if was_root {
                    return; // the watched directory itself is gone
                }
                continue;
            }
            let Some(dir) = wds.get(&ev.wd).cloned() else { continue };
            let rel = match &ev.name {
                Some(n) => dir.join(n),
                None => dir.clone(),
            };
            let m = ev.mask;
            let kind = if m.intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO) {
                EventType::Create
            } else if m.contains(AddWatchFlags::IN_MODIFY) {
                EventType::Write
            } else if m.intersects(AddWatchFlags::IN_DELETE | AddWatchFlags::IN_DELETE_SELF) {
                EventType::Remove
            } else if m.contains(AddWatchFlags::IN_MOVED_FROM) {
                EventType::Rename
            } else if m.contains(AddWatchFlags::IN_ATTRIB) {
                EventType::Chmod
            } else {
                continue;
            };
            if ev.name.is_none() && kind != EventType::Remove {
                continue; // events on a watched directory itself are reported by its parent
            }
            let full = spec.root.join(&rel);
            // A new directory gets its watches; whatever was created in it before they were in
            // place is reported as created too (it may then be reported twice, never missed).
            let mut created_inside = Vec::new();
            if spec.recursive && kind == EventType::Create && m.contains(AddWatchFlags::IN_ISDIR) {
                let (fd2, root, full2) = (fd.clone(), spec.root.clone(), full.clone());
                let added = creds::run_as(&user, move || {
                    let mut new = HashMap::new();
                    let found = add_tree(&fd2.get_ref().0, &root, &full2, true, &mut new);
                    Ok((new, found))
                })
                .await;
                if let Ok((new, found)) = added {
                    wds.extend(new);
                    created_inside = found;
                }
            }
            for (rel, kind) in std::iter::once((rel, kind)).chain(created_inside.into_iter().map(|r| (r, EventType::Create))) {
                let entry = if spec.include_entry && kind != EventType::Remove && kind != EventType::Rename {
                    let p = spec.root.join(&rel);
                    creds::run_as(&user, move || entry_info(&p)).await.ok()
                } else {
                    None
                };
                let event = FilesystemEvent { name: rel.to_string_lossy().into_owned(), event_type: kind, entry };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

struct Watcher {
    events: Arc<Mutex<VecDeque<FilesystemEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Watchers made by `CreateWatcher`, polled by `GetWatcherEvents`.
pub struct WatcherRegistry {
    watchers: Mutex<HashMap<String, Watcher>>,
    max_events: usize,
}

impl WatcherRegistry {
    pub fn new(max_events: usize) -> Self {
        Self { watchers: Mutex::new(HashMap::new()), max_events }
    }

    pub async fn create(&self, user: &SandboxUser, spec: WatchSpec) -> Result<String, ConnectError> {
        let mut rx = start(user, spec).await?;
        let events = Arc::new(Mutex::new(VecDeque::new()));
        let (buf, max) = (events.clone(), self.max_events);
        let task = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let mut b = lock(&buf);
                if b.len() >= max {
                    b.pop_front();
                }
                b.push_back(ev);
            }
        });
        let id = new_id();
        lock(&self.watchers).insert(id.clone(), Watcher { events, task });
        Ok(id)
    }

    pub fn take_events(&self, id: &str) -> Result<Vec<FilesystemEvent>, ConnectError> {
        let w = lock(&self.watchers);
        let w = w.get(id).ok_or_else(|| unknown(id))?;
        let evs = lock(&w.events).drain(..).collect();
        Ok(evs)
    }

    pub fn remove(&self, id: &str) -> Result<(), ConnectError> {
        let w = lock(&self.watchers).remove(id).ok_or_else(|| unknown(id))?;
        w.task.abort();
        Ok(())
    }
}

fn unknown(id: &str) -> ConnectError {
    ConnectError::new(Code::NotFound, format!("watcher with id {id:?} not found"))
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
