//! `stasis server`: wire the store, runtime, lifecycle and API together and serve.

use crate::config::ServerConfig;
use anyhow::Context;
use stasis_api::{ApiKeys, AppState};
use stasis_lifecycle::{EnvdGuest, Lifecycle, SystemClock};
use stasis_runtime::{RuncRuntime, Runtime};
use stasis_store::SqliteStore;
use std::sync::Arc;
use std::time::Duration;

pub async fn run(cfg: ServerConfig) -> anyhow::Result<()> {
    let rt_cfg = cfg.runtime.clone();
    std::fs::create_dir_all(&rt_cfg.data_dir).with_context(|| format!("create {}", rt_cfg.data_dir.display()))?;
    let keys = api_keys(&cfg)?;

    let store = rt_cfg.templates_dir.clone();
    let templates = stasis_runtime::TemplateStore::new(store, rt_cfg.id_map, rt_cfg.debian_mirror.clone());
    for name in templates.names() {
        if !templates.is_built(name) {
            eprintln!("building template {name} (first start only)");
        }
        let t = templates.clone();
        tokio::task::spawn_blocking(move || t.build(name, &|line| eprintln!("{line}")))
            .await?
            .with_context(|| format!("build template {name}"))?;
    }

    let runtime: Arc<dyn Runtime> = RuncRuntime::new(rt_cfg.clone()).await.context("open the sandbox runtime")?;
    let store = Arc::new(SqliteStore::open(&rt_cfg.data_dir.join("stasis.db")).await.context("open the database")?);
    let guest = Arc::new(EnvdGuest::new(runtime.clone(), Duration::from_secs(10)));
    let lifecycle = Lifecycle::new(store, runtime, guest, Arc::new(SystemClock), cfg.lifecycle.clone());
    lifecycle.reconcile().await.context("reconcile records with the runtime")?;
    lifecycle.spawn_sweeper();

    let app = stasis_api::app(AppState::new(lifecycle, keys));
    let listener = tokio::net::TcpListener::bind(cfg.listen).await.with_context(|| format!("listen on {}", cfg.listen))?;
    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    tracing::info!(listen = %cfg.listen, "stasis server ready");
    eprintln!("stasis server listening on {scheme}://{}", cfg.listen);
    tokio::select! {
        r = stasis_api::serve(listener, app, cfg.tls.clone()) => r.context("serve")?,
        _ = shutdown_signal() => eprintln!("shutting down; sandboxes keep running and are picked up at the next start"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Keys from `STASIS_API_KEYS`; without any, one generated on first start and kept in the data
/// dir (mode 0600). Only where it is kept is printed: the server's output usually ends up in a
/// log (the journal, a file), and keys never belong in logs.
fn api_keys(cfg: &ServerConfig) -> anyhow::Result<ApiKeys> {
    if !cfg.api_keys.is_empty() {
        return Ok(ApiKeys::new(&cfg.api_keys));
    }
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = cfg.runtime.data_dir.join("api-key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(ApiKeys::new([key.trim()]));
    }
    let key = format!("e2b_{}", random_hex(20));
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).with_context(|| format!("create {}", path.display()))?;
    f.write_all(key.as_bytes())?;
    f.sync_all()?;
    eprintln!("generated an API key, stored in {0} (mode 0600); to use it:\n\n    export E2B_API_KEY=$(sudo cat {0})\n", path.display());
    Ok(ApiKeys::new([key]))
}

fn random_hex(bytes: usize) -> String {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf)).expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}
