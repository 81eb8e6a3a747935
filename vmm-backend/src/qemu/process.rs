//! The QEMU process: spawning it with inherited tap descriptors, and watching it exit.

use std::{
    os::{fd::RawFd, unix::process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    sync::{oneshot, watch},
};

use crate::{
    qemu::{
        logs,
        qmp::{QmpState, ShutdownEvent},
    },
    VmExit,
};

/// Starts QEMU with `args`, its stderr appended to `stderr_log`, in its own process group
/// (a Ctrl-C on the caller's terminal must not kill the guest behind the caller's back), and
/// with `inherit` (tap descriptors) kept open across exec at the same numbers.
pub fn spawn_qemu(
    binary: &Path,
    args: &[String],
    stderr_log: &Path,
    inherit: &[RawFd],
) -> std::io::Result<Child> {
    let stderr = std::fs::File::create(stderr_log)?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true);
    let fds = inherit.to_vec();
    // SAFETY: the closure runs in the child between fork and exec, and only calls fcntl(2),
    // which is async-signal-safe; it allocates nothing and touches no lock. The descriptors
    // are owned by the caller and stay open until spawn returns.
    unsafe {
        command.pre_exec(move || {
            for &fd in &fds {
                // The caller's descriptors are close-on-exec; clear the flag in the child only,
                // so QEMU inherits them at the numbers its `fd=` options name.
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Files the exit classification reads.
#[derive(Debug, Clone)]
pub struct ExitLogs {
    /// QEMU's stderr.
    pub stderr: PathBuf,
    /// The guest console.
    pub console: PathBuf,
}

/// Handle to the task that owns the QEMU child and publishes how it ended.
#[derive(Debug, Clone)]
pub struct ExitWatch {
    /// `None` while QEMU runs.
    pub exit: watch::Receiver<Option<VmExit>>,
    /// Set by `stop` before it ends QEMU, so the exit reads as `Killed`.
    pub host_stopping: Arc<AtomicBool>,
}

/// Spawns the task that waits for `child`, kills it when `kill` fires, and classifies the exit
/// with what QMP saw.
pub fn watch_exit(
    mut child: Child,
    kill: oneshot::Receiver<()>,
    mut qmp: watch::Receiver<QmpState>,
    logs: ExitLogs,
) -> ExitWatch {
    let (tx, exit) = watch::channel(None);
    let host_stopping = Arc::new(AtomicBool::new(false));
    let stopping = host_stopping.clone();
    tokio::spawn(async move {
        let status = tokio::select! {
            status = child.wait() => status,
            _ = kill => {
                let _ = child.start_kill();
                child.wait().await
            }
        };
        // QEMU writes SHUTDOWN before it exits; let the reader drain the socket to its end.
        let _ = tokio::time::timeout(Duration::from_secs(1), qmp.wait_for(|s| s.closed)).await;
        let shutdown = qmp.borrow().shutdown.clone();
        let stopped = stopping.load(Ordering::SeqCst);
        let vm_exit = match status {
            Ok(status) => classify(status, shutdown.as_ref(), stopped, || {
                logs::vm_tail(&logs.stderr, &logs.console)
            }),
            Err(e) => VmExit::Crashed(format!("waiting for QEMU failed: {e}")),
        };
        tracing::debug!(?vm_exit, "QEMU exited");
        let _ = tx.send(Some(vm_exit));
    });
    ExitWatch {
        exit,
        host_stopping,
    }
}

/// How a VM ended, from QEMU's exit status, the last `SHUTDOWN` event, whether the host was
/// stopping it, and (for crashes) the end of its logs.
pub fn classify(
    status: ExitStatus,
    shutdown: Option<&ShutdownEvent>,
    host_stopping: bool,
    log_tail: impl FnOnce() -> String,
) -> VmExit {
    if shutdown.is_some_and(ShutdownEvent::is_guest_poweroff) {
        return VmExit::PoweredOff;
    }
    if host_stopping {
        return VmExit::Killed;
    }
    let tail = log_tail();
    if status.success() && shutdown.is_none() && !tail.contains("Kernel panic") {
        // The event was lost (QMP closed early) but QEMU ended cleanly, which it only does
        // on its own after the guest powered off.
        return VmExit::PoweredOff;
    }
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("QEMU exit status {code}"),
        (None, Some(signal)) => format!("QEMU killed by signal {signal}"),
        _ => status.to_string(),
    };
    let why = match shutdown {
        Some(event) => format!(" after {}", event.reason),
        None => String::new(),
    };
    VmExit::Crashed(format!("{how}{why}: {tail}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    fn event(guest: bool, reason: &str) -> Option<ShutdownEvent> {
        Some(ShutdownEvent {
            guest,
            reason: reason.into(),
        })
    }

    #[test]
    fn exit_classification() {
        let killed = ExitStatus::from_raw(libc::SIGKILL);
        let tail = || "console: Kernel panic - not syncing".to_string();
        let quiet = || "no output".to_string();
        let cases: Vec<(&str, ExitStatus, Option<ShutdownEvent>, bool, VmExit)> = vec![
            (
                "guest poweroff",
                exited(0),
                event(true, "guest-shutdown"),
                false,
                VmExit::PoweredOff,
            ),
            (
                "poweroff during stop",
                exited(0),
                event(true, "guest-shutdown"),
                true,
                VmExit::PoweredOff,
            ),
            (
                "quit by stop",
                exited(0),
                event(false, "host-qmp-quit"),
                true,
                VmExit::Killed,
            ),
            ("sigkill by stop", killed, None, true, VmExit::Killed),
            (
                "lost event, clean exit",
                exited(0),
                None,
                false,
                VmExit::PoweredOff,
            ),
        ];
        for (name, status, shutdown, stopping, want) in cases {
            assert_eq!(
                classify(status, shutdown.as_ref(), stopping, quiet),
                want,
                "{name}"
            );
        }

        let crashed = [
            (
                "panic reset",
                exited(0),
                event(true, "guest-reset"),
                "after guest-reset",
            ),
            ("killed elsewhere", killed, None, "signal 9"),
            ("qemu error", exited(1), None, "exit status 1"),
            ("panic, event lost", exited(0), None, "Kernel panic"),
        ];
        for (name, status, shutdown, want) in crashed {
            match classify(status, shutdown.as_ref(), false, tail) {
                VmExit::Crashed(reason) => {
                    assert!(reason.contains(want), "{name}: {reason:?}");
                    assert!(
                        reason.contains("Kernel panic"),
                        "{name}: carries the log tail"
                    );
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
