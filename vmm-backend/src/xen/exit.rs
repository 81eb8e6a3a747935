//! Watching a guest end: `xl create -F` stays in the foreground for exactly as long as its
//! domain lives, and says in its log why the domain went.

use std::{
    os::unix::process::ExitStatusExt,
    path::PathBuf,
    process::ExitStatus,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use tokio::{
    process::Child,
    sync::{oneshot, watch},
};

use crate::{qemu::logs, VmExit};

/// Xen's shutdown reason codes (`SHUTDOWN_*` in the public `sched.h`), as xl logs them.
const REASON_POWEROFF: u32 = 0;
const REASON_REBOOT: u32 = 1;
const REASON_CRASH: u32 = 3;
const REASON_WATCHDOG: u32 = 4;

/// Files the exit classification reads.
#[derive(Debug, Clone)]
pub struct ExitLogs {
    /// Output of `xl create -F`.
    pub xl: PathBuf,
    /// The guest console up to the agent's takeover.
    pub console: PathBuf,
}

impl ExitLogs {
    /// The end of xl's log and of the guest's boot log, labelled, for error messages.
    pub fn tail(&self) -> String {
        let mut parts = Vec::new();
        let xl = logs::tail(&self.xl, 6);
        if !xl.is_empty() {
            parts.push(format!("xl: {xl}"));
        }
        let console = logs::tail(&self.console, 10);
        if !console.is_empty() {
            parts.push(format!("console: {console}"));
        }
        if parts.is_empty() {
            "no output".into()
        } else {
            parts.join("; ")
        }
    }
}

/// Handle to the task that owns the `xl create -F` child and publishes how the guest ended.
#[derive(Debug, Clone)]
pub struct ExitWatch {
    /// `None` while the domain runs.
    pub exit: watch::Receiver<Option<VmExit>>,
    /// Set by `stop` before it destroys the domain, so the end reads as `Killed`.
    pub host_stopping: Arc<AtomicBool>,
}

/// Spawns the task that waits for `child`, kills it when `kill` fires, and classifies the
/// end from xl's log.
pub fn watch_exit(mut child: Child, kill: oneshot::Receiver<()>, logs: ExitLogs) -> ExitWatch {
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
        let text = std::fs::read_to_string(&logs.xl).unwrap_or_default();
        let vm_exit = match status {
            Ok(status) => classify(&text, status, stopping.load(Ordering::SeqCst), || {
                logs.tail()
            }),
            Err(e) => VmExit::Crashed(format!("waiting for xl failed: {e}")),
        };
        tracing::debug!(?vm_exit, "xl create -F exited");
        let _ = tx.send(Some(vm_exit));
    });
    ExitWatch {
        exit,
        host_stopping,
    }
}

/// The last shutdown reason code in xl's log (`Domain 3 has shut down, reason code 0 0x0`).
pub fn shutdown_reason(xl_log: &str) -> Option<u32> {
    xl_log
        .lines()
        .rev()
        .filter_map(|l| l.split_once("has shut down, reason code "))
        .find_map(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
}

/// How a guest ended, from xl's log, its exit status, and whether the host was stopping it.
pub fn classify(
    xl_log: &str,
    status: ExitStatus,
    host_stopping: bool,
    log_tail: impl FnOnce() -> String,
) -> VmExit {
    let reason = shutdown_reason(xl_log);
    if reason == Some(REASON_POWEROFF) {
        return VmExit::PoweredOff;
    }
    if host_stopping {
        return VmExit::Killed;
    }
    let what = match reason {
        Some(REASON_CRASH) => "the guest kernel crashed".to_string(),
        Some(REASON_REBOOT) => "the guest rebooted".to_string(),
        Some(REASON_WATCHDOG) => "the guest's watchdog fired".to_string(),
        Some(other) => format!("the guest shut down with reason code {other}"),
        None if xl_log.contains("has been destroyed") => {
            "the domain was destroyed outside lightpod".to_string()
        }
        None => match (status.code(), status.signal()) {
            (Some(code), _) => format!("xl exit status {code}"),
            (None, Some(signal)) => format!("xl killed by signal {signal}"),
            _ => status.to_string(),
        },
    };
    VmExit::Crashed(format!("{what}: {}", log_tail()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const WAITING: &str = "Parsing config from /run/x/vm/domain.cfg\n\
        Waiting for domain lightpod-p (domid 4) to die [pid 309]\n";

    fn exited(code: i32) -> ExitStatus {
        ExitStatus::from_raw(code << 8)
    }

    /// A case: name, xl's log, its exit status, whether the host was stopping, and the
    /// expected exit (`Err` holds a text the crash reason must contain).
    type Case<'a> = (&'a str, &'a str, ExitStatus, bool, Result<VmExit, &'a str>);

    #[test]
    fn exit_classification() {
        let poweroff = format!(
            "{WAITING}Domain 4 has shut down, reason code 0 0x0\n\
             Action for shutdown reason code 0 is destroy\nDone. Exiting now\n"
        );
        let crash = format!("{WAITING}Domain 4 has shut down, reason code 3 0x0\n");
        let destroyed = format!("{WAITING}Domain 4 has been destroyed.\n");
        let tail = || "console: Kernel panic - not syncing".to_string();
        let cases: Vec<Case> = vec![
            (
                "guest poweroff",
                &poweroff,
                exited(0),
                false,
                Ok(VmExit::PoweredOff),
            ),
            (
                "poweroff during stop",
                &poweroff,
                exited(0),
                true,
                Ok(VmExit::PoweredOff),
            ),
            (
                "destroyed by stop",
                &destroyed,
                exited(0),
                true,
                Ok(VmExit::Killed),
            ),
            (
                "monitor killed by stop",
                WAITING,
                ExitStatus::from_raw(9),
                true,
                Ok(VmExit::Killed),
            ),
            ("crash", &crash, exited(0), false, Err("kernel crashed")),
            (
                "destroyed elsewhere",
                &destroyed,
                exited(0),
                false,
                Err("outside lightpod"),
            ),
            (
                "xl failed",
                WAITING,
                exited(3),
                false,
                Err("xl exit status 3"),
            ),
            (
                "xl killed",
                WAITING,
                ExitStatus::from_raw(9),
                false,
                Err("signal 9"),
            ),
        ];
        for (name, log, status, stopping, want) in cases {
            let got = classify(log, status, stopping, tail);
            match want {
                Ok(want) => assert_eq!(got, want, "{name}"),
                Err(text) => match got {
                    VmExit::Crashed(reason) => {
                        assert!(reason.contains(text), "{name}: {reason}");
                        assert!(reason.contains("Kernel panic"), "{name}: carries the tail");
                    }
                    other => panic!("{name}: {other:?}"),
                },
            }
        }
    }

    #[test]
    fn the_last_shutdown_reason_wins() {
        let log = "Domain 1 has shut down, reason code 2 0x0\nDomain 1 has shut down, reason code 0 0x0\n";
        assert_eq!(shutdown_reason(log), Some(0));
        assert_eq!(shutdown_reason(WAITING), None);
    }
}
