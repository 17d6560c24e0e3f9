//! Work inside a sandbox's network namespace from the host, without any IP plumbing.
//!
//! A dedicated thread `setns()`es into the namespace, does its work and exits, so no pooled
//! thread is ever left in a sandbox's namespace. A socket keeps the namespace it was created in,
//! so a stream connected there can be used from any thread afterwards.
#![allow(unsafe_code)]

use nix::sched::{setns, CloneFlags};
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::time::Duration;

/// An open handle on a network namespace (`/proc/<pid>/ns/net`); valid as long as it is open.
#[derive(Clone, Debug)]
pub struct NetNs(Arc<File>);

impl NetNs {
    pub fn of_pid(pid: i32) -> io::Result<Self> {
        Ok(NetNs(Arc::new(File::open(format!("/proc/{pid}/ns/net"))?)))
    }

    /// Run `f` on a fresh thread inside this namespace.
    pub async fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let ns = self.0.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("stasis-netns".into()).spawn(move || {
            let result = setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io::Error::from).and_then(|()| f());
            let _ = tx.send(result);
        })?;
        rx.await.unwrap_or_else(|_| Err(io::Error::other("netns thread died")))
    }

    pub async fn connect(&self, port: u16, timeout: Duration) -> io::Result<tokio::net::TcpStream> {
        let std_stream = self
            .run(move || {
                TcpStream::connect_timeout(&SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into(), timeout)
            })
            .await?;
        std_stream.set_nonblocking(true)?;
        std_stream.set_nodelay(true)?;
        tokio::net::TcpStream::from_std(std_stream)
    }

    /// Bring `lo` up: runc leaves it down after create and after restore.
    pub async fn loopback_up(&self) -> io::Result<()> {
        self.run(set_loopback_up).await
    }
}

fn set_loopback_up() -> io::Result<()> {
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| {
        // No address family bind needed for the ioctl; any AF_INET socket in this netns will do.
        std::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
    })?;
    // SAFETY: `ifreq` is plain old data; zeroed is a valid value for every field.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: valid socket fd and a properly initialised ifreq that outlives the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
    unsafe { req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
