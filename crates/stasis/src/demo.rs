//! A short tour of the runtime for people trying Stasis before the server exists.

use stasis_runtime::{ExecRequest, Runtime, RuncRuntime, SandboxId, SandboxSpec};
use std::time::Instant;

const COUNTER: &str = "import time\nn = 0\nwhile True:\n    n += 1\n    open('/tmp/count', 'w').write(str(n))\n    time.sleep(0.1)\n";

pub async fn run(rt: &RuncRuntime) -> anyhow::Result<()> {
    let t = Instant::now();
    let id = SandboxId::generate();
    rt.create(&id, SandboxSpec { template: "base".into(), limits: Default::default(), env: Default::default(), network: Default::default() }).await?;
    println!("created sandbox {id} in {:?}", t.elapsed());
    let result = tour(rt, &id).await;
    rt.kill(&id).await?;
    println!("killed {id}");
    result
}

async fn tour(rt: &RuncRuntime, id: &stasis_runtime::SandboxId) -> anyhow::Result<()> {
    let sh = |cmd: &str| ExecRequest::new(["/bin/sh", "-c", cmd]);
    rt.exec(id, sh(&format!("nohup python3 -c \"{COUNTER}\" >/dev/null 2>&1 &"))).await?;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let before = rt.exec(id, sh("cat /tmp/count")).await?.stdout_str();
    let t = Instant::now();
    rt.pause(id).await?;
    println!("paused in {:?} with the counter at {before}", t.elapsed());
    let t = Instant::now();
    rt.resume(id).await?;
    println!("resumed in {:?}", t.elapsed());
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let after = rt.exec(id, sh("cat /tmp/count")).await?.stdout_str();
    println!("the counter went on from {before} to {after}: memory and processes survived");
    Ok(())
}
