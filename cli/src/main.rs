//! `lightpod`: the operator command of lightpod.
//!
//! - `lightpod run --rootfs DIR -- CMD…`: runs one process from a root filesystem in a fresh
//!   VM and gives back its output and exit code, as `runc run` does for a container.
//! - `lightpod demo`: a two-container pod in a VM through a private containerd's CRI plugin.
//! - `lightpod doctor`: what this host can run (QEMU, Xen), and the fix for each missing piece.
//! - `lightpod image build`: assembles (or finds cached) the guest initramfs.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod demo;
mod doctor;
mod doctor_xen;
mod image;
mod run;
mod terminal;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// lightpod: Kubernetes pods as lightweight VMs.
#[derive(Parser)]
#[command(name = "lightpod", version, about)]
struct Cli {
    /// Configuration file (default: $LIGHTPOD_CONFIG, then /etc/lightpod/config.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,

    /// Log filter (error, warn, info, debug, trace, or a tracing directive list).
    #[arg(long, global = true, env = "LIGHTPOD_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command from a root filesystem directory inside a new VM.
    Run(run::RunArgs),
    /// Check what this host can run and how to fix what is missing.
    Doctor,
    /// Run a two-container pod in a VM through a private containerd, then clean up.
    Demo(demo::DemoArgs),
    /// Guest image commands.
    #[command(subcommand)]
    Image(image::ImageCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("lightpod: start the async runtime: {e}");
            return ExitCode::from(125);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(cli.config.as_deref(), args).await,
            Command::Doctor => doctor::doctor(cli.config.as_deref()).await,
            // The demo drives containerd through a blocking CRI client of its own.
            Command::Demo(args) => {
                let config = cli.config.clone();
                tokio::task::spawn_blocking(move || demo::demo(config.as_deref(), args))
                    .await
                    .map_err(anyhow::Error::from)
                    .and_then(|done| done)
                    .map(|()| ExitCode::SUCCESS)
            }
            Command::Image(cmd) => image::image(cli.config.as_deref(), cmd).await,
        }
    });
    // A read of our stdin may still block in tokio's blocking pool after the contained
    // process exited; do not wait for it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lightpod: {e:#}");
            if e.downcast_ref::<run::CommandNotFound>().is_some() {
                return ExitCode::from(127);
            }
            // 125 is what `runc run` / `docker run` use for a failure of the runtime itself,
            // distinct from any exit code of the contained process.
            ExitCode::from(125)
        }
    }
}
