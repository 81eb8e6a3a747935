//! Container init mode: the agent binary re-executed by itself (`/proc/self/exe
//! --container-init`) to set up one container process and `execve` it.
//!
//! Namespaces, mounts and credentials are changed here, in a fresh single-threaded process,
//! and not in a `fork` of the multi-threaded agent, where only async-signal-safe calls are
//! allowed. The agent sends an [`wire::InitRequest`] over the socket at fd 3; this process
//! answers with a pty master (when the process has a terminal) and, if a step fails, a
//! [`SetupFailure`], both before `execve`. The socket is close-on-exec, so a successful
//! `execve` shows as end of file on the agent's side.
//!
//! Containers get mount, UTS, IPC and cgroup namespaces but no PID namespace: the VM is the
//! isolation boundary, and the containers of a pod share the guest's PID namespace (so a
//! pod's processes always share their process namespace, whatever `share_pid_with` says).

pub mod wire;

use std::{io, os::fd::FromRawFd, os::unix::net::UnixStream};

use serde::{Deserialize, Serialize};

use crate::{container::setup, process::exec, syscall::LinuxSyscall};

/// The argument that selects container init mode.
pub const INIT_ARG: &str = "--container-init";

/// The descriptor the agent passes the control socket on.
pub const CONTROL_FD: i32 = 3;

/// A set-up step that failed before `execve`, as reported to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SetupFailure {
    /// A step failed.
    #[error("{step}: {detail}")]
    Step {
        /// What was being done (`mount proc on /proc`, `setuid` …).
        step: String,
        /// The error it met.
        detail: String,
    },
    /// `args[0]` does not exist in the container.
    #[error("executable {executable:?} not found in rootfs{path}")]
    ExecutableNotFound {
        /// `args[0]`.
        executable: String,
        /// ` (PATH=…)` when looked up in PATH.
        path: String,
    },
}

impl SetupFailure {
    /// Builds the failure of `step` from an I/O error: `.map_err(SetupFailure::io("chdir"))`.
    pub fn io(step: impl Into<String>) -> impl FnOnce(io::Error) -> SetupFailure {
        let step = step.into();
        move |err| SetupFailure::Step {
            step,
            detail: err.to_string(),
        }
    }
}

/// Entry point of container init mode; never returns. Exit status 120 means the set-up failed
/// (the agent already has the reason), 121 that the control socket was unusable.
pub fn main() -> ! {
    // SAFETY: the agent passes the control socket as fd 3 and nothing else in this fresh
    // process owns that descriptor.
    let mut control = unsafe { UnixStream::from_raw_fd(CONTROL_FD) };

    let request = match wire::read_request(&mut control) {
        Ok(request) => request,
        Err(_) => std::process::exit(121),
    };
    let sys = LinuxSyscall;
    let failure = match setup::enter_container(&sys, &request) {
        Ok(()) => exec::finish_and_exec(&mut control, &request.process),
        Err(failure) => failure,
    };
    // If even the report fails there is nobody left to tell; the exit status says it.
    let _ = wire::send_failure(&mut control, &failure);
    std::process::exit(120);
}
