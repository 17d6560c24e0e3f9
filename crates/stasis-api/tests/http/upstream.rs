//! A tiny hand-written HTTP/1.1 server standing in for a port inside a sandbox, so the tests
//! control exactly when bytes are written.
//!
//! - `/ws` with `Upgrade`: answers 101, writes `welcome\n`, then echoes what it reads in upper case.
//! - `/stream`: a chunked `first\n`, then `second\n` once `release` is notified.
//! - `/forever`: a chunk every 20 ms until writing fails; counts such ends in `ended`.
//! - `/hang`: never answers; counts the connection's close in `ended`.
//! - anything else: one response describing the request (method, target, host, body).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub release: Arc<Notify>,
    pub ended: Arc<AtomicUsize>,
    pub accepted: Arc<AtomicUsize>,
}

impl Upstream {
    pub async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Upstream {
            addr: listener.local_addr().unwrap(),
            release: Arc::new(Notify::new()),
            ended: Arc::new(AtomicUsize::new(0)),
            accepted: Arc::new(AtomicUsize::new(0)),
        };
        let me = up.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                me.accepted.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(me.clone().handle(s));
            }
        });
        up
    }

    pub fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }

    async fn handle(self, mut s: TcpStream) {
        let Some((head, mut body)) = read_head(&mut s).await else { return };
        let mut first = head.lines().next().unwrap_or("").split(' ');
        let (method, target) = (first.next().unwrap_or("").to_owned(), first.next().unwrap_or("").to_owned());
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| l.split_once(':').filter(|(k, _)| k.trim().eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
        };
        if target.starts_with("/ws") && header("upgrade").is_some() {
            let _ = s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nwelcome\n").await;
            let mut buf = [0u8; 4096];
            if !body.is_empty() {
                let _ = s.write_all(&body.to_ascii_uppercase()).await;
            }
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n].to_ascii_uppercase()).await.is_err() {
                            break;
                        }
                    }
                }
            }
            self.ended.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if target.starts_with("/hang") {
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
            self.ended.fetch_add(1, Ordering::SeqCst);
            return;
        }
        if target.starts_with("/stream") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n6\r\nfirst\n\r\n").await;
            self.release.notified().await;
            let _ = s.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n").await;
            return;
        }
        if target.starts_with("/forever") {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await;
            loop {
                if s.write_all(b"5\r\ntick\n\r\n").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            self.ended.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let len: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        while body.len() < len {
            let mut buf = [0u8; 4096];
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        let text = format!(
            "{method} {target}\nhost={}\nbody={}\n",
            header("host").unwrap_or_default(),
            String::from_utf8_lossy(&body)
        );
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Upstream: yes\r\nConnection: close\r\n\r\n{text}", text.len());
        let _ = s.write_all(resp.as_bytes()).await;
    }
}

/// The request head as text, and whatever was read past it.
pub async fn read_head(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
