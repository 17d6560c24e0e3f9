//! Registering owned file descriptors (PTY masters, inotify) with tokio's epoll reactor.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// A type that owns exactly one file descriptor for its whole life.
pub trait OwnsFd: AsRawFd {}
impl OwnsFd for OwnedFd {}

/// Register `inner` with the reactor.
pub fn register<T: OwnsFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: `OwnsFd` types own their descriptor: it stays open, and `as_raw_fd` keeps
    // returning it, until the value (here moved into the AsyncFd) is dropped.
    unsafe { AsyncFd::register(inner) }.map_err(std::io::Error::from)
}
