//! Pause and resume sandboxes — E2B's guide ("暂停和恢复沙箱"), section by section, in Rust.
//!
//! A paused sandbox keeps its file system and its memory: running processes, loaded
//! variables, data. While it is paused, its running time is not counted.
//!
//! Good to know (from the guide):
//! - pausing takes time in proportion to the sandbox's RAM (E2B: about 4 s per GiB);
//! - resuming takes about 1 s;
//! - a sandbox stays paused for at most 30 days; after that its data is deleted, and
//!   resuming a deleted or unknown sandbox fails with `Error::NotFound` (JS `NotFoundError`,
//!   Python `NotFoundException`).
//!
//! Run it against a server, with the same variables the JS and Python SDKs read:
//! ```sh
//! E2B_API_KEY=... E2B_API_URL=http://127.0.0.1:3000 E2B_SANDBOX_URL=http://127.0.0.1:3000 \
//!     cargo run -p stasis-sdk --example pause_resume
//! ```

use stasis_sdk::{CommandOptions, ConnectOptions, Error, ListOptions, Sandbox, SandboxInfo, SandboxOptions, SandboxState};
use std::time::Duration;

#[tokio::main]
async fn main() -> stasis_sdk::Result<()> {
    run().await
}

/// The whole guide, in order.
pub async fn run() -> stasis_sdk::Result<()> {
    let sandbox_id = pause_a_sandbox().await?;
    resume_a_sandbox(&sandbox_id).await?;
    resume_with_a_timeout(&sandbox_id).await?;
    list_paused_sandboxes(&sandbox_id).await?;
    Sandbox::kill_by_id(&sandbox_id, &Default::default()).await?;
    kill_a_paused_sandbox().await?;
    network_services_across_a_pause().await?;
    Ok(())
}

/// 暂停沙箱 — Pause a sandbox: its file system and memory are saved, with every file, running
/// process, loaded variable and piece of data.
async fn pause_a_sandbox() -> stasis_sdk::Result<String> {
    let sbx = Sandbox::create(SandboxOptions::new()).await?;
    println!("Sandbox created {}", sbx.sandbox_id());

    // Pause the sandbox. Keep its id (in your database, say) to resume it later.
    // `pause()` answers true once the snapshot is written (false if it was paused already).
    assert!(sbx.pause().await?);
    let sandbox_id = sbx.sandbox_id().to_owned();
    println!("Sandbox paused {sandbox_id}");
    Ok(sandbox_id)
}

/// 恢复沙箱 — Resume a sandbox: every file, running process, loaded variable and piece of data
/// it had before the pause is back.
async fn resume_a_sandbox(sandbox_id: &str) -> stasis_sdk::Result<()> {
    let same_sbx = Sandbox::resume(sandbox_id, ConnectOptions::new()).await?;
    println!("Sandbox resumed {}", same_sbx.sandbox_id());
    assert_eq!(same_sbx.sandbox_id(), sandbox_id);
    assert_eq!(same_sbx.info().await?.state, SandboxState::Running);
    // Pause it again for the next sections.
    assert!(same_sbx.pause().await?);
    Ok(())
}

/// 恢复时指定超时时间 — Resume with a timeout: on resume the sandbox's timeout is reset to the
/// default five minutes; pass another one like this.
async fn resume_with_a_timeout(sandbox_id: &str) -> stasis_sdk::Result<()> {
    let sbx = Sandbox::resume(sandbox_id, ConnectOptions::new().timeout(Duration::from_secs(60))).await?; // 60 seconds
    let info = sbx.info().await?;
    let left = info.end_at - chrono::Utc::now();
    println!("Sandbox resumed {} with {} s to live", sbx.sandbox_id(), left.num_seconds());
    assert!(left.num_seconds() <= 60 && left.num_seconds() > 30, "timeout not applied: {left}");
    assert!(sbx.pause().await?);
    Ok(())
}

/// 列出暂停的沙箱 — List paused sandboxes, page by page.
async fn list_paused_sandboxes(paused_id: &str) -> stasis_sdk::Result<()> {
    // Only the paused sandboxes.
    let mut paginator = Sandbox::list(ListOptions::new().state(SandboxState::Paused));

    // Fetch every page of paused sandboxes.
    let mut sandboxes: Vec<SandboxInfo> = Vec::new();
    while paginator.has_next() {
        let items = paginator.next_items().await?;
        sandboxes.extend(items);
    }

    println!("all paused sandboxes {:?}", sandboxes.iter().map(|s| &s.sandbox_id).collect::<Vec<_>>());
    assert!(sandboxes.iter().any(|s| s.sandbox_id == paused_id));
    assert!(sandboxes.iter().all(|s| s.state == SandboxState::Paused));
    Ok(())
}

/// 删除暂停的沙箱 — Kill a paused sandbox with `kill` on the sandbox, or by its id.
async fn kill_a_paused_sandbox() -> stasis_sdk::Result<()> {
    let sbx = Sandbox::create(SandboxOptions::new()).await?;
    println!("Sandbox created {}", sbx.sandbox_id());

    // Pause the sandbox.
    assert!(sbx.pause().await?);
    let sandbox_id = sbx.sandbox_id().to_owned();

    // Kill the paused sandbox.
    assert!(sbx.kill().await?);

    // Or kill a paused sandbox by its id (it is gone already, hence `false`).
    assert!(!Sandbox::kill_by_id(&sandbox_id, &Default::default()).await?);

    // Resuming a deleted sandbox fails with NotFound.
    match Sandbox::resume(&sandbox_id, ConnectOptions::new()).await {
        Err(Error::NotFound { .. }) => println!("Sandbox {sandbox_id} is gone: NotFound, as documented"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    Ok(())
}

/// 网络连接 — Networking: a service running in the sandbox cannot be reached while the sandbox
/// is paused, and every client is disconnected. After the resume it can be reached again, but
/// clients must reconnect.
async fn network_services_across_a_pause() -> stasis_sdk::Result<()> {
    let sbx = Sandbox::create(SandboxOptions::new()).await?;
    let server = sbx
        .commands()
        .run_background("python3 -m http.server 8000", CommandOptions::new().no_timeout())
        .await?;
    // Wait until the server listens, then ask it for a status code.
    let probe = "for i in $(seq 50); do curl -s -o /dev/null localhost:8000 && break; sleep 0.1; done; \
                 curl -s -o /dev/null -w '%{http_code}' localhost:8000";
    assert_eq!(sbx.commands().run(probe).await?.stdout, "200");
    let pid = server.pid();
    server.disconnect();

    assert!(sbx.pause().await?);
    // While paused, nothing in the sandbox answers.
    assert!(!sbx.is_running().await?);

    let sbx = Sandbox::resume(sbx.sandbox_id(), ConnectOptions::new()).await?;
    assert!(sbx.commands().list().await?.iter().any(|p| p.pid == pid), "the server process survived the pause");
    // A new connection (a reconnecting client) is served by the same process.
    assert_eq!(sbx.commands().run(probe).await?.stdout, "200");
    println!("Sandbox {} serves again after the resume (pid {pid})", sbx.sandbox_id());
    sbx.kill().await?;
    Ok(())
}
