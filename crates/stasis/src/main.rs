//! `stasis`: parses the command line and wires the libraries together; no logic of its own.

mod cli;
mod config;
mod demo;
mod server;

use anyhow::Context;
use clap::{Parser, Subcommand};
use config::Config;
use stasis_runtime::RuncRuntime;

#[derive(Parser)]
#[command(name = "stasis", version, about = "Self-hosted sandboxes that pause and resume with their whole memory")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the E2B-compatible API and the sandbox proxy.
    Server(config::ServerArgs),
    /// Build or list templates.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Create a sandbox, run a counter in it, pause, resume and kill it, printing what happens.
    Demo,
    /// Manage sandboxes on a server (create, list, info, pause, resume, kill, exec, shell, timeout).
    Sandbox {
        #[command(flatten)]
        client: config::ClientArgs,
        #[command(subcommand)]
        command: cli::SandboxCommand,
    },
    /// Running and paused time of your sandboxes, from the server.
    Usage {
        #[command(flatten)]
        client: config::ClientArgs,
        #[command(flatten)]
        args: cli::UsageArgs,
    },
}

#[derive(Subcommand)]
enum TemplateCommand {
    /// Build templates whose current recipe is not built yet (all built-in ones by default).
    Build { names: Vec<String> },
    /// List templates and whether they are built.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("STASIS_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        // Colours for a terminal only: a log file or the journal gets plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let rt_config = cli.config.runtime_config()?;
    match cli.command {
        Command::Server(args) => server::run(cli.config.server_config(&args)?).await?,
        Command::Template { command: TemplateCommand::Build { names } } => {
            let store = stasis_runtime::TemplateStore::new(rt_config.templates_dir.clone(), rt_config.id_map, rt_config.debian_mirror.clone());
            let names = if names.is_empty() { store.names().into_iter().map(String::from).collect() } else { names };
            for name in names {
                let store = store.clone();
                let path = tokio::task::spawn_blocking(move || store.build(&name, &|line| eprintln!("{line}")))
                    .await?
                    .context("template build failed")?;
                println!("{}", path.display());
            }
        }
        Command::Template { command: TemplateCommand::List } => {
            let store = stasis_runtime::TemplateStore::new(rt_config.templates_dir.clone(), rt_config.id_map, rt_config.debian_mirror.clone());
            for name in store.names() {
                let recipe = store.recipe(name)?;
                println!("{name}\t{}\t{}", recipe.hash(), if store.is_built(name) { "built" } else { "not built" });
            }
        }
        Command::Sandbox { client, command } => std::process::exit(cli::sandbox(cli.config.client_config(&client), command).await),
        Command::Usage { client, args } => std::process::exit(cli::usage(cli.config.client_config(&client), args).await),
        Command::Demo => {
            let rt = RuncRuntime::new(rt_config).await.context("open the runtime")?;
            demo::run(&rt).await?;
        }
    }
    Ok(())
}
