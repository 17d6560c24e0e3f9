//! Sandbox ids: 20 characters of `[a-z0-9]`, about 103 bits of randomness, like E2B's.
//!
//! Ids become directory names, runc container names and cgroup paths, so anything else is refused
//! before it reaches the file system.

use crate::RuntimeError;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

const LEN: usize = 20;
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SandboxId(String);

impl SandboxId {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let s = (0..LEN).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
        SandboxId(s)
    }

    pub fn parse(s: &str) -> Result<Self, RuntimeError> {
        if s.len() != LEN {
            return Err(RuntimeError::InvalidId(s.into(), "must be 20 characters"));
        }
        if !s.bytes().all(|b| ALPHABET.contains(&b)) {
            return Err(RuntimeError::InvalidId(s.into(), "must be lowercase letters and digits"));
        }
        Ok(SandboxId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SandboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for SandboxId {
    type Error = RuntimeError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        SandboxId::parse(&s)
    }
}

impl From<SandboxId> for String {
    fn from(id: SandboxId) -> String {
        id.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = SandboxId::generate();
        let b = SandboxId::generate();
        assert_ne!(a, b);
        assert_eq!(SandboxId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn hostile_ids_are_refused() {
        for bad in ["", "../../../etc/passwd", "ABCDEFGHIJKLMNOPQRST", "abc", "aaaaaaaaaaaaaaaaaaa/", "aaaaaaaaaaaaaaaaaaaaa"] {
            assert!(SandboxId::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
