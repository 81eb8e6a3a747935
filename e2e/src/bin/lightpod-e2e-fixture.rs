//! The e2e runner's handle on its fixtures (`e2e/run.sh` calls it; so can a person):
//!
//! - `lightpod-e2e-fixture images`: builds the test images (once per machine, into
//!   `target/e2e-cache`) and prints one `<name> <archive>` line per image;
//! - `lightpod-e2e-fixture containerd-start DIR [SHIM_DIR]`: starts a private containerd in
//!   `DIR` with the test images imported into `k8s.io` and `SHIM_DIR` (default: the directory
//!   of this binary) first in its PATH, leaves it running, and prints the environment the tests
//!   read as `export NAME=value` lines on stdout (also written to `DIR/e2e.env`), so that
//!   `eval "$(lightpod-e2e-fixture containerd-start DIR)"` sets it. Reads
//!   `LIGHTPOD_E2E_CNI_BRIDGE`, `LIGHTPOD_E2E_CNI_SUBNET` and
//!   `LIGHTPOD_E2E_CONTAINERD_LOG_LEVEL`;
//! - `lightpod-e2e-fixture containerd-stop DIR`: stops that containerd and removes everything
//!   it made; fails and says what is left when something could not be removed.
//!
//! Progress goes to stderr (`RUST_LOG` filters it).

#![allow(clippy::print_stdout)]

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use lightpod_e2e::containerd::{ADDRESS_ENV, BRIDGE_ENV, DIR_ENV, LOG_LEVEL_ENV, SUBNET_ENV};
use lightpod_harness::containerd::{
    self, ContainerdOptions, LogLevel, PrivateContainerd, StartError, Subnet,
};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: lightpod-e2e-fixture images | containerd-start DIR [SHIM_DIR] | \
                     containerd-stop DIR";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("lightpod-e2e-fixture: {error:#}");
            if let Some(hint) = error.downcast_ref::<Hint>() {
                eprintln!("lightpod-e2e-fixture: hint: {}", hint.0);
            }
            ExitCode::FAILURE
        }
    }
}

/// What the person running the tests can do about a failure, carried as its outer context.
#[derive(Debug)]
struct Hint(String);

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("start a private containerd")
    }
}

fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["images"] => {
            for image in lightpod_e2e::images().all() {
                println!("{} {}", image.name, image.path.display());
            }
            Ok(())
        }
        ["containerd-start", dir] => containerd_start(Path::new(dir), None),
        ["containerd-start", dir, shim_dir] => {
            containerd_start(Path::new(dir), Some(Path::new(shim_dir)))
        }
        ["containerd-stop", dir] => containerd::stop(Path::new(dir))
            .with_context(|| format!("stop the private containerd in {dir}")),
        _ => bail!(USAGE),
    }
}

fn containerd_start(dir: &Path, shim_dir: Option<&Path>) -> anyhow::Result<()> {
    let mut options = ContainerdOptions::new(dir);
    options.shim_dir = Some(match shim_dir {
        Some(shim_dir) => shim_dir.to_path_buf(),
        None => own_dir()?,
    });
    if let Some(bridge) = env(BRIDGE_ENV) {
        options.bridge = bridge;
    }
    if let Some(subnet) = env(SUBNET_ENV) {
        options.subnet = subnet
            .parse::<Subnet>()
            .with_context(|| format!("{SUBNET_ENV}={subnet}"))?;
    }
    if let Some(level) = env(LOG_LEVEL_ENV) {
        options.log_level = level
            .parse::<LogLevel>()
            .with_context(|| format!("{LOG_LEVEL_ENV}={level}"))?;
    }
    // The CRI plugin's sandbox image is among them.
    options.images = lightpod_e2e::images().all().into_iter().cloned().collect();

    let instance = match PrivateContainerd::start(&options) {
        Ok(instance) => instance,
        Err(error) => {
            return match hint(&error, dir) {
                Some(hint) => Err(error).context(Hint(hint)),
                None => Err(error).context("start a private containerd"),
            };
        }
    };
    let env = format!(
        "export {ADDRESS_ENV}={}\nexport {DIR_ENV}={}\nexport {BRIDGE_ENV}={}\nexport {SUBNET_ENV}={}\n",
        instance.address().display(),
        instance.dir().display(),
        instance.bridge(),
        instance.subnet(),
    );
    let env_file = instance.dir().join("e2e.env");
    if let Err(e) = std::fs::write(&env_file, &env) {
        // Stop rather than leave an instance nobody was told about.
        instance.stop().ok();
        return Err(e).with_context(|| format!("write {}", env_file.display()));
    }
    instance.detach();
    print!("{env}");
    Ok(())
}

/// What the person running the tests can do about a failed start.
fn hint(error: &StartError, dir: &Path) -> Option<String> {
    let stop = format!("lightpod-e2e-fixture containerd-stop {}", dir.display());
    match error {
        StartError::AlreadyRunning { .. } | StartError::EarlierInstance { .. } => {
            Some(format!("run `{stop}` first"))
        }
        StartError::BridgeExists { .. } => Some(format!(
            "run `{stop}` if an earlier run left it, or set {BRIDGE_ENV} to another name"
        )),
        StartError::SubnetRouted { .. } => Some(format!("set {SUBNET_ENV} to a free subnet")),
        StartError::PluginNotLoaded { .. } => Some(
            "fix harness/containerd/config.toml.in (containerd's log says what it rejected)".into(),
        ),
        _ => None,
    }
}

/// The directory of this binary, where cargo also puts `containerd-shim-lightpod-v2`.
fn own_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("find this binary")?;
    exe.parent()
        .map(Path::to_path_buf)
        .context("this binary has no directory")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}
