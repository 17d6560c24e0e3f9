//! `stasis-envd`: started by the runtime as PID 1 of every sandbox.

use stasis_envd::{init, reaper, Config};
use std::sync::Mutex;

fn setup_logging(config: &Config) -> anyhow::Result<()> {
    if config.log == "off" {
        return Ok(());
    }
    let file = std::fs::OpenOptions::new().create(true).append(true).open(&config.log)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_filter)?;
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(Mutex::new(file)).init();
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let config = Config::load();
    config.validate().map_err(anyhow::Error::msg)?;
    if !config.keep_stdio {
        init::close_inherited_fds();
        // Nothing to report to once stdio is gone; exiting would kill the sandbox, so go on.
        let _ = init::detach_stdio();
    }
    // A log file that cannot be opened must not stop the sandbox's init either.
    let _ = setup_logging(&config);
    init::own_session();
    init::become_subreaper()?;
    reaper::start()?;
    std::panic::set_hook(Box::new(|info| tracing::error!(%info, "panic")));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    loop {
        let result = runtime.block_on(stasis_envd::serve(config.clone()));
        // As PID 1 envd must never exit: retry binding (e.g. the port is briefly taken).
        tracing::error!(?result, "server stopped; restarting in 1s");
        if std::process::id() != 1 && result.is_err() {
            anyhow::bail!("serving failed: {result:?}");
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}
