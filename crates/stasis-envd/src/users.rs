//! Linux users as envd sees them: who a request acts as.

use nix::unistd::{Gid, Group, Uid, User};
use std::ffi::CString;
use std::path::PathBuf;

/// A resolved Linux user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups, including the primary group.
    pub groups: Vec<u32>,
    pub home: PathBuf,
    pub shell: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {0:?} does not exist")]
    Unknown(String),
    #[error("looking up user {0:?}: {1}")]
    Lookup(String, nix::Error),
}

impl SandboxUser {
    /// Look a user up by name in the sandbox's user database.
    pub fn lookup(name: &str) -> Result<Self, UserError> {
        let user = User::from_name(name)
            .map_err(|e| UserError::Lookup(name.to_string(), e))?
            .ok_or_else(|| UserError::Unknown(name.to_string()))?;
        let mut groups = CString::new(name)
            .ok()
            .and_then(|c| nix::unistd::getgrouplist(&c, user.gid).ok())
            .map(|g| g.into_iter().map(Gid::as_raw).collect::<Vec<_>>())
            .unwrap_or_default();
        if !groups.contains(&user.gid.as_raw()) {
            groups.push(user.gid.as_raw());
        }
        Ok(Self {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            groups,
            home: user.dir,
            shell: user.shell,
        })
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Name of a uid, or the number when it has none.
pub fn user_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => uid.to_string(),
    }
}

/// Name of a gid, or the number when it has none.
pub fn group_name(gid: u32) -> String {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(Some(g)) => g.name,
        _ => gid.to_string(),
    }
}
