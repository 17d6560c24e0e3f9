//! API keys: `X-API-KEY` on every control-plane route but `/health`.
//!
//! Keys are kept only as SHA-256 digests, so neither memory dumps of the map nor logs carry
//! them. A key's owner id (the first 16 hex digits of its digest) owns the sandboxes it creates.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct ApiKeys {
    /// digest → owner id
    owners: HashMap<[u8; 32], String>,
}

impl ApiKeys {
    pub fn new<I, S>(keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let owners = keys
            .into_iter()
            .filter(|k| !k.as_ref().is_empty())
            .map(|k| {
                let digest: [u8; 32] = Sha256::digest(k.as_ref().as_bytes()).into();
                (digest, hex::encode(&digest[..8]))
            })
            .collect();
        ApiKeys { owners }
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The owner id of `key`, if it is a valid key.
    pub fn owner_of(&self, key: &str) -> Option<&str> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        self.owners.get(&digest).map(String::as_str)
    }
}

/// The authenticated caller of a control-plane route.
pub struct Owner(pub String);

impl FromRequestParts<AppState> for Owner {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts.headers.get("x-api-key").and_then(|v| v.to_str().ok());
        match key.and_then(|k| state.keys.owner_of(k)) {
            Some(owner) => Ok(Owner(owner.to_owned())),
            None if key.is_none() => Err(ApiError::Unauthorized("missing X-API-KEY header".into())),
            None => Err(ApiError::Unauthorized("invalid API key".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_to_stable_owners_and_wrong_keys_do_not() {
        let keys = ApiKeys::new(["alpha", "beta", ""]);
        let a = keys.owner_of("alpha").unwrap().to_owned();
        assert_eq!(keys.owner_of("alpha").unwrap(), a);
        assert_ne!(keys.owner_of("beta").unwrap(), a);
        assert!(keys.owner_of("gamma").is_none());
        assert!(keys.owner_of("").is_none());
        assert!(!a.contains("alpha"));
    }
}
