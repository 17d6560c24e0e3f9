//! The benchmark workload: a python process holding N MiB of touched memory and a counter,
//! answering on 127.0.0.1:7000 with its count (so each resume is checked, not just timed).

use anyhow::{bail, Context};
use stasis_runtime::{ExecRequest, Runtime, RuncRuntime, SandboxId};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

pub const PORT: u16 = 7000;

pub async fn start(rt: &RuncRuntime, id: &SandboxId, mib: u64) -> anyhow::Result<()> {
    let script = format!(
        "import os, socket, time\nblob = bytearray(os.urandom(1 << 20)) * {mib}\nn = 0\ns = socket.socket()\ns.bind(('127.0.0.1', {PORT}))\ns.listen(8)\ns.settimeout(0.05)\nwhile True:\n    n += 1\n    try:\n        c, _ = s.accept(); c.sendall(str(n).encode()); c.close()\n    except socket.timeout:\n        pass\n"
    );
    let out = rt.exec(id, ExecRequest::new(["/bin/sh", "-c", "nohup python3 -c \"$0\" >/dev/null 2>&1 &", &script])).await?;
    if out.exit_code != 0 {
        bail!("workload did not start: {}", String::from_utf8_lossy(&out.stderr));
    }
    check(rt, id).await.map(drop)
}

/// The workload answers (retrying while it starts or restarts listening).
pub async fn check(rt: &RuncRuntime, id: &SandboxId) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut s) = rt.connect(id, PORT).await {
            let mut text = String::new();
            if s.read_to_string(&mut text).await.is_ok() {
                if let Ok(n) = text.trim().parse() {
                    return Ok(n);
                }
            }
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!("no answer on port {PORT}")).context(id.to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
