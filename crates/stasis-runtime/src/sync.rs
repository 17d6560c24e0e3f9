//! Durability helpers: flushing a checkpoint and the upper dir it goes with to disk.

use crate::error::IoContext;
use crate::RuntimeError;
use std::fs::File;
use std::path::Path;

/// fsync every file and directory below `root`, then `root` itself.
pub fn fsync_tree(root: &Path) -> Result<(), RuntimeError> {
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.map_err(|e| RuntimeError::io(format!("walk {}", root.display()), e.into()))?;
        if entry.file_type().is_file() || entry.file_type().is_dir() {
            File::open(entry.path())
                .and_then(|f| f.sync_all())
                .ctx(|| format!("fsync {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// fsync a directory so that a rename or create inside it is durable.
pub fn fsync_dir(dir: &Path) -> Result<(), RuntimeError> {
    File::open(dir).and_then(|f| f.sync_all()).ctx(|| format!("fsync {}", dir.display()))
}

/// Flush the whole file system holding `path` (the sandbox's upper dir lives there).
pub fn syncfs(path: &Path) -> Result<(), RuntimeError> {
    let f = File::open(path).ctx(|| format!("open {}", path.display()))?;
    nix::unistd::syncfs(&f).map_err(std::io::Error::from).ctx(|| format!("syncfs {}", path.display()))
}
