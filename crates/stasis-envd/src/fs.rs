//! Filesystem operations behind `filesystem.Filesystem` and `/files`. Each runs through
//! [`crate::creds::run_as`], so the kernel checks the requesting user's permissions.

use crate::users::{group_name, user_name, SandboxUser};
use stasis_proto::connect::{Code, ConnectError};
use stasis_proto::filesystem::{EntryInfo, FileType};
use stasis_proto::json::rfc3339;
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Prefix of the extended attributes that hold user metadata of files (`X-Metadata-*`).
pub const METADATA_XATTR_PREFIX: &str = "user.e2b.";

/// Resolve a request path: `~` and relative paths are taken from the user's home; `.` and `..`
/// are folded lexically.
pub fn expand(user: &SandboxUser, path: &str) -> PathBuf {
    let raw = if path == "~" {
        user.home.clone()
    } else if let Some(rest) = path.strip_prefix("~/") {
        user.home.join(rest)
    } else if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        user.home.join(path)
    };
    let mut out = PathBuf::from("/");
    for c in raw.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Map an I/O error to the Connect code the SDKs turn into the right exception.
pub fn io_error(err: &std::io::Error, what: &str, path: &Path) -> ConnectError {
    let code = match err.kind() {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::NotADirectory | ErrorKind::IsADirectory | ErrorKind::InvalidInput | ErrorKind::DirectoryNotEmpty => {
            Code::InvalidArgument
        }
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => Code::ResourceExhausted,
        _ => match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EROFS) => Code::PermissionDenied,
            Some(libc::ENOTDIR) | Some(libc::EISDIR) | Some(libc::EXDEV) | Some(libc::ELOOP) => Code::InvalidArgument,
            _ => Code::Internal,
        },
    };
    ConnectError::new(code, format!("{what} {}: {err}", path.display()))
}

/// Go's `FileMode.String()`, as E2B's envd reports `permissions`.
pub fn permissions_string(mode: u32) -> String {
    let fmt = mode & libc::S_IFMT;
    let mut s = String::new();
    match fmt {
        libc::S_IFDIR => s.push('d'),
        libc::S_IFLNK => s.push('L'),
        libc::S_IFBLK => s.push('D'),
        libc::S_IFIFO => s.push('p'),
        libc::S_IFSOCK => s.push('S'),
        libc::S_IFCHR => s.push_str("Dc"),
        _ => {}
    }
    if mode & libc::S_ISUID != 0 {
        s.push('u');
    }
    if mode & libc::S_ISGID != 0 {
        s.push('g');
    }
    if mode & libc::S_ISVTX != 0 {
        s.push('t');
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

/// Read the `user.e2b.*` extended attributes of a path.
pub fn read_metadata(path: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(names) = xattr::list(path) {
        for name in names {
            let Some(name) = name.to_str() else { continue };
            if let Some(key) = name.strip_prefix(METADATA_XATTR_PREFIX) {
                if let Ok(Some(v)) = xattr::get(path, name) {
                    out.insert(key.to_string(), String::from_utf8_lossy(&v).into_owned());
                }
            }
        }
    }
    out
}

/// `EntryInfo` of a path, without following a final symlink.
pub fn entry_info(path: &Path) -> std::io::Result<EntryInfo> {
    let meta = std::fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let (file_type, symlink_target, is_symlink) = if ft.is_symlink() {
        let target = std::fs::read_link(path).ok().map(|t| {
            let abs = if t.is_absolute() { t } else { path.parent().unwrap_or(Path::new("/")).join(t) };
            std::fs::canonicalize(&abs).unwrap_or(abs).to_string_lossy().into_owned()
        });
        (FileType::Symlink, target, true)
    } else if ft.is_dir() {
        (FileType::Directory, None, false)
    } else {
        (FileType::File, None, false)
    };
    let modified_time = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| {
        rfc3339(i64::try_from(d.as_secs()).unwrap_or(i64::MAX), d.subsec_nanos())
    });
    Ok(EntryInfo {
        name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into()),
        file_type,
        path: path.to_string_lossy().into_owned(),
        size: i64::try_from(meta.len()).unwrap_or(i64::MAX),
        mode: meta.permissions().mode() & 0o7777,
        permissions: permissions_string(meta.mode()),
        owner: user_name(meta.uid()),
        group: group_name(meta.gid()),
        modified_time,
        symlink_target,
        metadata: if is_symlink { BTreeMap::new() } else { read_metadata(path) },
        is_symlink,
    })
}

pub fn stat(path: &Path) -> Result<EntryInfo, ConnectError> {
    entry_info(path).map_err(|e| io_error(&e, "stat", path))
}

pub fn make_dir(path: &Path) -> Result<EntryInfo, ConnectError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(ConnectError::new(Code::AlreadyExists, format!("directory {} already exists", path.display())))
        }
        Ok(_) => {
            return Err(ConnectError::invalid_argument(format!(
                "path {} already exists and is not a directory",
                path.display()
            )))
        }
        Err(_) => {}
    }
    std::fs::create_dir_all(path).map_err(|e| io_error(&e, "create directory", path))?;
    stat(path)
}

pub fn move_entry(from: &Path, to: &Path) -> Result<EntryInfo, ConnectError> {
    std::fs::symlink_metadata(from).map_err(|e| io_error(&e, "move", from))?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| io_error(&e, "create directory", parent))?;
    }
    std::fs::rename(from, to).map_err(|e| io_error(&e, "move to", to))?;
    stat(to)
}

pub fn remove(path: &Path) -> Result<(), ConnectError> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| io_error(&e, "remove", path))?;
    let res = if meta.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
    res.map_err(|e| io_error(&e, "remove", path))
}

pub fn list_dir(path: &Path, depth: u32) -> Result<Vec<EntryInfo>, ConnectError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(&e, "list", path))?;
    if !meta.is_dir() {
        return Err(ConnectError::invalid_argument(format!("path {} is not a directory", path.display())));
    }
    let mut out = Vec::new();
    walk(path, depth.max(1), &mut out, true)?;
    Ok(out)
}

fn walk(dir: &Path, depth: u32, out: &mut Vec<EntryInfo>, top: bool) -> Result<(), ConnectError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        // Deeper directories the user cannot read are skipped, as `ls -R` would report and go on.
        Err(e) if !top => {
            tracing::debug!(dir = %dir.display(), error = %e, "skipping unreadable directory");
            return Ok(());
        }
        Err(e) => return Err(io_error(&e, "list", dir)),
    };
    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in names {
        let Ok(info) = entry_info(&p) else { continue };
        let recurse = depth > 1 && info.file_type == FileType::Directory;
        out.push(info);
        if recurse {
            walk(&p, depth - 1, out, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> SandboxUser {
        SandboxUser { name: "u".into(), uid: 1, gid: 1, groups: vec![1], home: "/home/u".into(), shell: "/bin/sh".into() }
    }

    #[test]
    fn expands_paths() {
        let u = user();
        assert_eq!(expand(&u, "a/b"), PathBuf::from("/home/u/a/b"));
        assert_eq!(expand(&u, "~/x/../y"), PathBuf::from("/home/u/y"));
        assert_eq!(expand(&u, "/../../etc/./passwd"), PathBuf::from("/etc/passwd"));
        assert_eq!(expand(&u, ""), PathBuf::from("/home/u"));
    }

    #[test]
    fn permission_strings() {
        assert_eq!(permissions_string(libc::S_IFREG | 0o644), "-rw-r--r--");
        assert_eq!(permissions_string(libc::S_IFDIR | 0o755), "drwxr-xr-x");
        assert_eq!(permissions_string(libc::S_IFLNK | 0o777), "Lrwxrwxrwx");
        assert_eq!(permissions_string(libc::S_IFDIR | 0o1777), "dtrwxrwxrwx");
    }
}
