//! How a process ended, as `waitpid` reports it and as `ProcessExit` carries it.

use nix::sys::wait::WaitStatus;

/// The end of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal of this number killed it.
    Signaled(i32),
}

impl ExitStatus {
    /// The terminal statuses of `waitpid`: exited or killed. Stops and continues are not ends.
    pub fn from_wait(status: WaitStatus) -> Option<ExitStatus> {
        match status {
            WaitStatus::Exited(_, code) => Some(ExitStatus::Exited(code)),
            WaitStatus::Signaled(_, signal, _) => Some(ExitStatus::Signaled(signal as i32)),
            _ => None,
        }
    }

    /// `ProcessExit.exit_code`: the code, or 0 when a signal killed the process.
    pub fn exit_code(self) -> i32 {
        match self {
            ExitStatus::Exited(code) => code,
            ExitStatus::Signaled(_) => 0,
        }
    }

    /// `ProcessExit.signal`: the killing signal, or 0 when the process exited.
    pub fn signal(self) -> i32 {
        match self {
            ExitStatus::Exited(_) => 0,
            ExitStatus::Signaled(signal) => signal,
        }
    }
}

/// What `WaitProcess` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// How it ended.
    pub status: ExitStatus,
    /// `CLOCK_REALTIME` when the agent reaped it, in nanoseconds since the epoch.
    pub exited_at_ns: u64,
    /// The OOM killer of its cgroup killed it.
    pub oom_killed: bool,
}

#[cfg(test)]
mod tests {
    use nix::{sys::signal::Signal, unistd::Pid};

    use super::*;

    #[test]
    fn wait_statuses_map_to_code_or_signal() {
        let pid = Pid::from_raw(7);
        let cases = [
            ("exit 0", WaitStatus::Exited(pid, 0), Some((0, 0))),
            ("exit 3", WaitStatus::Exited(pid, 3), Some((3, 0))),
            (
                "killed",
                WaitStatus::Signaled(pid, Signal::SIGKILL, false),
                Some((0, 9)),
            ),
            (
                "term with core",
                WaitStatus::Signaled(pid, Signal::SIGSEGV, true),
                Some((0, 11)),
            ),
            ("stopped", WaitStatus::Stopped(pid, Signal::SIGSTOP), None),
            ("continued", WaitStatus::Continued(pid), None),
            ("still alive", WaitStatus::StillAlive, None),
        ];
        for (name, status, want) in cases {
            let got = ExitStatus::from_wait(status).map(|s| (s.exit_code(), s.signal()));
            assert_eq!(got, want, "{name}");
        }
    }
}
