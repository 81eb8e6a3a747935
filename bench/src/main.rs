//! `lightpod-bench`: lightpod and runc side by side on one private containerd (see the
//! `lightpod_bench` crate). `bench/run.sh` builds what it needs and runs it as root.

#![allow(clippy::print_stdout)]

use std::{io::IsTerminal, process::ExitCode};

use clap::Parser;
use lightpod_bench::{interrupt, Options};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let options = Options::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .init();
    // Before any other thread: they all inherit the blocked signals.
    if let Err(error) = interrupt::install() {
        eprintln!("lightpod-bench: cannot take the signals: {error}");
        return ExitCode::FAILURE;
    }
    // containerd passes its environment on to the lightpod shims.
    if let Some(config) = &options.lightpod_config {
        if std::env::var_os("LIGHTPOD_CONFIG").as_deref() != Some(config.as_os_str()) {
            std::env::set_var("LIGHTPOD_CONFIG", config);
        }
    }
    match lightpod_bench::run(&options) {
        Ok(outcome) => match outcome.files {
            Some(files) => {
                println!("{}", lightpod_bench::report::render(&outcome.results));
                println!(
                    "results: {}, {}{}",
                    files.json.display(),
                    files.markdown.display(),
                    if outcome.chart {
                        format!(", {}", files.png.display())
                    } else {
                        " (no chart)".into()
                    }
                );
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("lightpod-bench: interrupted; every pod removed, containerd stopped, no results written");
                ExitCode::from(130)
            }
        },
        Err(error) => {
            let chain: Vec<String> =
                std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
                    .map(ToString::to_string)
                    .collect();
            eprintln!("lightpod-bench: {}", chain.join(": "));
            ExitCode::FAILURE
        }
    }
}
