//! Proxied connections per sandbox, so a pause can close them all before the checkpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct Connections {
    tokens: Mutex<HashMap<String, CancellationToken>>,
}

impl Connections {
    /// The token a new proxied connection to `id` watches; it is cancelled when `id` pauses or
    /// is killed.
    pub fn token(&self, id: &str) -> CancellationToken {
        self.tokens.lock().expect("connections lock").entry(id.to_owned()).or_default().clone()
    }

    /// Close every connection to `id` opened so far.
    pub fn close_all(&self, id: &str) {
        if let Some(token) = self.tokens.lock().expect("connections lock").remove(id) {
            token.cancel();
        }
    }
}
