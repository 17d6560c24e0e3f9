//! What restore needs, written next to the CRIU images: a plain, versioned, checksummed type.
//!
//! Kept apart from live objects so that an image written by one build of Stasis is either
//! restored correctly by another or refused with a clear error, never half-understood.

use crate::error::IoContext;
use crate::oci::IdMap;
use crate::{Limits, RuntimeError, SandboxId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const MANIFEST_VERSION: u32 = 1;
const MAGIC: &str = "stasis-checkpoint";
const MAX_MANIFEST_BYTES: u64 = 1 << 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointManifest {
    pub sandbox_id: SandboxId,
    pub template: String,
    /// The exact template rootfs the upper dir was made against.
    pub template_rootfs: PathBuf,
    /// The exact envd binary that is mapped into the checkpointed init (CRIU checks it).
    pub envd_binary: PathBuf,
    pub limits: Limits,
    pub id_map: IdMap,
    /// Unix milliseconds.
    pub paused_at_ms: u64,
    /// Bytes of CRIU images written.
    pub image_bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    magic: String,
    version: u32,
    sha256: String,
    body: serde_json::Value,
}

impl CheckpointManifest {
    pub fn to_bytes(&self) -> Vec<u8> {
        let body = serde_json::to_value(self).expect("manifest serialises");
        let sha256 = hex::encode(Sha256::digest(body.to_string().as_bytes()));
        let env = Envelope { magic: MAGIC.into(), version: MANIFEST_VERSION, sha256, body };
        serde_json::to_vec_pretty(&env).expect("envelope serialises")
    }

    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Self, RuntimeError> {
        let bad = |detail: String| RuntimeError::BadManifest { path: path.to_owned(), detail };
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(bad(format!("{} bytes is over the {MAX_MANIFEST_BYTES} byte limit", bytes.len())));
        }
        let env: Envelope = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
        if env.magic != MAGIC {
            return Err(bad(format!("magic is {:?}", env.magic)));
        }
        if env.version != MANIFEST_VERSION {
            return Err(bad(format!("version {} (this build reads {MANIFEST_VERSION})", env.version)));
        }
        let sum = hex::encode(Sha256::digest(env.body.to_string().as_bytes()));
        if sum != env.sha256 {
            return Err(bad("checksum mismatch".into()));
        }
        serde_json::from_value(env.body).map_err(|e| bad(format!("body: {e}")))
    }

    pub fn load(path: &Path) -> Result<Self, RuntimeError> {
        let len = std::fs::metadata(path).ctx(|| format!("stat {}", path.display()))?.len();
        if len > MAX_MANIFEST_BYTES {
            return Err(RuntimeError::BadManifest { path: path.to_owned(), detail: format!("{len} bytes is too large") });
        }
        let bytes = std::fs::read(path).ctx(|| format!("read {}", path.display()))?;
        Self::from_bytes(&bytes, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointManifest {
        CheckpointManifest {
            sandbox_id: SandboxId::generate(),
            template: "base".into(),
            template_rootfs: "/var/lib/stasis/templates/base/abc/rootfs".into(),
            envd_binary: "/var/lib/stasis/bin/envd-123".into(),
            limits: Limits::default(),
            id_map: IdMap::default(),
            paused_at_ms: 1,
            image_bytes: 2,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(CheckpointManifest::from_bytes(&m.to_bytes(), Path::new("m")).unwrap(), m);
    }

    #[test]
    fn tampering_and_garbage_are_refused() {
        let m = sample();
        let text = String::from_utf8(m.to_bytes()).unwrap().replace("\"base\"", "\"evil\"");
        assert!(matches!(CheckpointManifest::from_bytes(text.as_bytes(), Path::new("m")), Err(RuntimeError::BadManifest { .. })));
        for garbage in [&b""[..], b"{}", b"\x00\xff", b"[1,2]"] {
            assert!(CheckpointManifest::from_bytes(garbage, Path::new("m")).is_err());
        }
        let newer = String::from_utf8(m.to_bytes()).unwrap().replace("\"version\": 1", "\"version\": 99");
        let err = CheckpointManifest::from_bytes(newer.as_bytes(), Path::new("m")).unwrap_err();
        assert!(err.to_string().contains("version 99"), "{err}");
    }
}
