//! Reaps every child of the agent, orphans included (as PID 1 it inherits them all).
//!
//! A `SIGCHLD`-driven loop calls `waitpid(-1, WNOHANG)` until nothing is left, hands the
//! status of each tracked pid to its waiter and discards the others. Nothing else in the
//! agent may wait for children (no `tokio::process`, no `std::process::Child::wait`), or it
//! would race with this loop for the statuses.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use nix::{
    errno::Errno,
    sys::wait::{waitpid, WaitPidFlag, WaitStatus},
    unistd::Pid,
};
use tokio::{
    signal::unix::{signal, SignalKind},
    sync::oneshot,
};

use crate::{clock, process::exit::ExitStatus};

/// The end of a tracked child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// How it ended.
    pub status: ExitStatus,
    /// `CLOCK_REALTIME` when it was reaped, in nanoseconds.
    pub at_ns: u64,
}

/// The reaper and its table of tracked children.
#[derive(Debug, Default)]
pub struct Reaper {
    tracked: Mutex<HashMap<i32, oneshot::Sender<Reaped>>>,
}

impl Reaper {
    /// A reaper that tracks nothing yet; [`Reaper::run`] starts reaping.
    pub fn new() -> Arc<Reaper> {
        Arc::new(Reaper::default())
    }

    /// Starts the reaping loop on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The `SIGCHLD` handler cannot be installed.
    pub fn run(self: &Arc<Self>) -> std::io::Result<()> {
        let mut sigchld = signal(SignalKind::child())?;
        let reaper = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                reaper.reap();
                if sigchld.recv().await.is_none() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// Runs `fork` (which creates a child and returns its pid) with the table locked, and
    /// tracks the new pid. The lock makes sure the child's status cannot be reaped, and
    /// discarded, before it is tracked.
    ///
    /// # Errors
    ///
    /// Whatever `fork` returns.
    pub fn spawn_tracked<E>(
        &self,
        fork: impl FnOnce() -> Result<Pid, E>,
    ) -> Result<(Pid, oneshot::Receiver<Reaped>), E> {
        let mut tracked = self.tracked.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = fork()?;
        let (tx, rx) = oneshot::channel();
        tracked.insert(pid.as_raw(), tx);
        Ok((pid, rx))
    }

    /// Collects every status the kernel has for us.
    fn reap(&self) {
        let mut tracked = self.tracked.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let status = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(err) => {
                    tracing::warn!(%err, "waitpid failed");
                    return;
                }
                Ok(status) => status,
            };
            let (Some(pid), Some(exit)) = (status.pid(), ExitStatus::from_wait(status)) else {
                continue;
            };
            match tracked.remove(&pid.as_raw()) {
                Some(waiter) => {
                    let _ = waiter.send(Reaped {
                        status: exit,
                        at_ns: clock::realtime_ns(),
                    });
                }
                None => tracing::debug!(pid = pid.as_raw(), ?exit, "reaped an untracked process"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{os::unix::process::CommandExt, process::Command};

    use super::*;

    /// Spawns `sh -c <script>` without keeping a `Child` (whose wait would race the reaper).
    fn spawn_sh(script: &str) -> Result<Pid, std::io::Error> {
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .spawn()?;
        Ok(Pid::from_raw(child.id() as i32))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn reports_exit_codes_and_signals() {
        let reaper = Reaper::new();
        reaper.run().expect("install SIGCHLD handler");
        let (_, exited) = reaper.spawn_tracked(|| spawn_sh("exit 7")).expect("spawn");
        let (_, killed) = reaper
            .spawn_tracked(|| spawn_sh("kill -TERM $$"))
            .expect("spawn");
        assert_eq!(exited.await.expect("reaped").status, ExitStatus::Exited(7));
        assert_eq!(
            killed.await.expect("reaped").status,
            ExitStatus::Signaled(15)
        );
    }
}
