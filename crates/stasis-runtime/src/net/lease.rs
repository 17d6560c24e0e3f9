//! Address leases, host-wide: several Stasis data dirs (a server and its tests, say) may share a
//! host and a range, so a lease is a file created with O_EXCL under `/run/stasis/net/<range>/`,
//! naming the sandbox directory that holds it. A lease whose sandbox directory is gone (a data
//! dir removed while the server was down) is stale and taken over.

use crate::error::IoContext;
use crate::RuntimeError;
use ipnet::Ipv4Net;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// A sandbox's link: a /30 of the range; the host end takes the first address, the sandbox the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub index: u32,
    pub host: Ipv4Addr,
    pub sandbox: Ipv4Addr,
}

pub const PREFIX_LEN: u8 = 30;

pub fn slot(range: Ipv4Net, index: u32) -> Slot {
    let base = u32::from(range.network()) + index * 4;
    Slot { index, host: Ipv4Addr::from(base + 1), sandbox: Ipv4Addr::from(base + 2) }
}

pub fn capacity(range: Ipv4Net) -> u32 {
    (1u32 << (32 - u32::from(range.prefix_len()).min(30))) / 4
}

#[derive(Clone, Debug)]
pub struct Leases {
    dir: PathBuf,
    range: Ipv4Net,
}

impl Leases {
    pub fn open(root: &Path, range: Ipv4Net) -> Result<Leases, RuntimeError> {
        let dir = root.join(range.to_string().replace('/', "-"));
        std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        Ok(Leases { dir, range })
    }

    /// Lease the lowest free slot for the sandbox whose directory is `owner`.
    pub fn acquire(&self, owner: &Path) -> Result<Slot, RuntimeError> {
        for index in 0..capacity(self.range) {
            let path = self.dir.join(index.to_string());
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut f) => {
                    f.write_all(owner.as_os_str().as_encoded_bytes()).ctx(|| format!("write {}", path.display()))?;
                    return Ok(slot(self.range, index));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if is_stale(&path) {
                        let _ = std::fs::remove_file(&path);
                        // Another process may take it first; then the next slot will do.
                        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
                            f.write_all(owner.as_os_str().as_encoded_bytes()).ctx(|| format!("write {}", path.display()))?;
                            return Ok(slot(self.range, index));
                        }
                    }
                }
                Err(e) => return Err(RuntimeError::io(format!("create {}", path.display()), e)),
            }
        }
        Err(RuntimeError::Command {
            what: "address allocation".into(),
            detail: format!("all {} sandbox addresses of {} are in use", capacity(self.range), self.range),
        })
    }

    /// Give a slot back, if `owner` still holds it.
    pub fn release(&self, index: u32, owner: &Path) {
        let path = self.dir.join(index.to_string());
        if std::fs::read(&path).is_ok_and(|b| b == owner.as_os_str().as_encoded_bytes()) {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Whether `owner` holds `index` (after a restart: was the lease kept?).
    pub fn holds(&self, index: u32, owner: &Path) -> bool {
        std::fs::read(self.dir.join(index.to_string())).is_ok_and(|b| b == owner.as_os_str().as_encoded_bytes())
    }

    /// Take `index` again for `owner` (a paused sandbox whose lease was lost with /run).
    pub fn reclaim(&self, index: u32, owner: &Path) -> Result<bool, RuntimeError> {
        if self.holds(index, owner) {
            return Ok(true);
        }
        let path = self.dir.join(index.to_string());
        if path.exists() && is_stale(&path) {
            let _ = std::fs::remove_file(&path);
        }
        match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                f.write_all(owner.as_os_str().as_encoded_bytes()).ctx(|| format!("write {}", path.display()))?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(RuntimeError::io(format!("create {}", path.display()), e)),
        }
    }
}

/// A lease is stale when the sandbox directory it names no longer exists. An empty lease is
/// being written right now: not stale.
fn is_stale(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(b) if !b.is_empty() => !Path::new(std::ffi::OsStr::from_bytes(&b)).exists(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_disjoint_and_stale_leases_are_taken_over() {
        let range: Ipv4Net = "10.9.0.0/29".parse().unwrap();
        assert_eq!(capacity(range), 2);
        assert_eq!(slot(range, 1), Slot { index: 1, host: "10.9.0.5".parse().unwrap(), sandbox: "10.9.0.6".parse().unwrap() });
        let tmp = std::env::temp_dir().join(format!("stasis-lease-test-{}", std::process::id()));
        let (a, b) = (tmp.join("a"), tmp.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let leases = Leases::open(&tmp.join("leases"), range).unwrap();
        assert_eq!(leases.acquire(&a).unwrap().index, 0);
        assert_eq!(leases.acquire(&b).unwrap().index, 1);
        assert!(leases.acquire(&a).is_err(), "the range is full");
        leases.release(0, &b); // not b's: kept
        assert!(leases.holds(0, &a));
        std::fs::remove_dir(&b).unwrap(); // b's sandbox is gone: its lease is stale
        assert_eq!(leases.acquire(&a).unwrap().index, 1);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
