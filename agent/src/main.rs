//! `lightpod-agent`: PID 1 of every lightpod guest.
//!
//! It mounts what a Linux userland needs, loads the kernel modules the initramfs lists,
//! opens the channel to the host and serves the `lightpod.agent.v1` API on it: containers,
//! their processes and stdio, signals, stats, and power-off.
//!
//! The same binary, started as `lightpod-agent --container-init` by the agent itself, is the
//! short-lived init of one container process (see `init`).
//!
//! Outside a guest (not PID 1) it skips the early boot and reads its parameters from
//! `LIGHTPOD_AGENT_CMDLINE` when set, e.g. `lightpod.channel=unix:/tmp/agent.sock`.

mod boot;
mod channel;
mod clock;
mod cmdline;
mod container;
mod convert;
mod error;
mod fdio;
mod init;
mod logging;
mod network;
mod process;
mod serve;
mod service;
mod spec;
mod storage;
mod syscall;

use std::panic::{self, AssertUnwindSafe};

use crate::{boot::power, cmdline::AgentParams, syscall::LinuxSyscall};

/// Environment variable that replaces `/proc/cmdline` outside a guest.
const CMDLINE_ENV: &str = "LIGHTPOD_AGENT_CMDLINE";

fn main() {
    let agent_start_ns = clock::boottime_ns();
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == init::INIT_ARG)
    {
        init::main();
    }
    let pid1 = power::is_pid1();

    let first_stage = if pid1 {
        boot::first_stage(&LinuxSyscall)
    } else {
        Ok(())
    };
    let cmdline = match std::env::var(CMDLINE_ENV) {
        Ok(text) if !pid1 => text,
        _ => std::fs::read_to_string("/proc/cmdline").unwrap_or_default(),
    };
    let (params, cmdline_error) = match cmdline::parse(&cmdline) {
        Ok(params) => (params, None),
        Err(err) => (AgentParams::default(), Some(err)),
    };
    logging::init(params.log_level);
    install_panic_hook();
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid1,
        "lightpod-agent starting"
    );
    if let Err(err) = first_stage {
        power::fatal("early boot", &err);
    }
    if let Some(err) = cmdline_error {
        tracing::warn!(%err, "ignoring the kernel command line's lightpod parameters");
    }

    if pid1 {
        if let Err(err) = boot::second_stage(&LinuxSyscall) {
            power::fatal("early boot", &err);
        }
        let loaded = boot::modules::load_all(std::path::Path::new(boot::modules::MODULES_LOAD));
        tracing::info!(loaded, "kernel modules loaded");
        if let Some(order) = params.page_reporting_order {
            boot::page_reporting(order);
        }
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => power::fatal("start the async runtime", &err),
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        runtime.block_on(serve::serve(params, agent_start_ns))
    }));
    match outcome {
        Ok(Ok(never)) => match never {},
        Ok(Err(err)) => power::fatal("serve the host", &err),
        Err(_) => power::fatal(
            "serve the host",
            &std::io::Error::other("the agent panicked"),
        ),
    }
}

/// Logs panics through `tracing` (the console). With `panic = "abort"` a panic would end PID 1
/// and panic the kernel, so the hook powers the guest off cleanly instead.
fn install_panic_hook() {
    panic::set_hook(Box::new(|info| {
        tracing::error!(panic = %info, "agent panicked");
        if cfg!(panic = "abort") && power::is_pid1() {
            power::power_off();
        }
    }));
}
