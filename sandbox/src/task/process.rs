//! One process of a task (its init, or an exec process) and its state machine.

use std::time::SystemTime;

use tokio::sync::watch;

use crate::{sandbox::ExitStatus, spec::ProcessSpec};

use super::stdio::{OpenedOutput, ProcessIo, StdioPaths};

/// Where a process is in its life.
///
/// `Created` → `Running` (started) ⇄ `Paused` (its container frozen) → `Stopped` (exited,
/// killed before it started, or lost with its VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Prepared, not started.
    Created,
    /// Running.
    Running,
    /// Its container is frozen.
    Paused,
    /// Exited; the exit status is known.
    Stopped,
}

impl ProcessState {
    /// Lower-case name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            ProcessState::Created => "created",
            ProcessState::Running => "running",
            ProcessState::Paused => "paused",
            ProcessState::Stopped => "stopped",
        }
    }
}

/// What a front end learns about a process.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessInfo {
    /// Pid reported for the process (see [`super::TaskRegistry`] on pids).
    pub pid: u32,
    /// Its state.
    pub state: ProcessState,
    /// Its stdio.
    pub stdio: StdioPaths,
    /// How it ended, once `Stopped`.
    pub exit: Option<ExitStatus>,
}

/// A process in the registry's table.
pub(super) struct Process {
    /// The spec to start it with (exec processes; the init's was given at create).
    pub spec: Option<ProcessSpec>,
    pub stdio: StdioPaths,
    pub pid: u32,
    pub state: ProcessState,
    pub exit: watch::Sender<Option<ExitStatus>>,
    /// Output sinks opened when the process was added, taken when it starts.
    pub output: Option<OpenedOutput>,
    pub io: ProcessIo,
    /// Where lightpod writes notices into the process's output; dropped with its exit.
    pub notice: Option<std::fs::File>,
}

impl Process {
    pub fn new(spec: Option<ProcessSpec>, stdio: StdioPaths, pid: u32) -> Process {
        Process {
            spec,
            stdio,
            pid,
            state: ProcessState::Created,
            exit: watch::Sender::new(None),
            output: None,
            io: ProcessIo::default(),
            notice: None,
        }
    }

    /// The state as seen from outside: a running process of a frozen container is paused.
    pub fn info(&self, container_paused: bool) -> ProcessInfo {
        let state = match self.state {
            ProcessState::Running if container_paused => ProcessState::Paused,
            other => other,
        };
        ProcessInfo {
            pid: self.pid,
            state,
            stdio: self.stdio.clone(),
            exit: *self.exit.borrow(),
        }
    }

    /// Records the exit once; returns false when an exit was recorded already.
    pub fn record_exit(&mut self, status: ExitStatus) -> bool {
        if self.state == ProcessState::Stopped {
            return false;
        }
        self.state = ProcessState::Stopped;
        self.exit.send_replace(Some(status));
        true
    }

    /// A receiver that sees the exit status once there is one.
    pub fn exit_receiver(&self) -> watch::Receiver<Option<ExitStatus>> {
        self.exit.subscribe()
    }
}

/// The exit status of a process that a signal killed (or that never ran and was killed).
pub(super) fn killed_by(signal: i32) -> ExitStatus {
    ExitStatus {
        code: 128 + signal as u32,
        signal: Some(signal),
        exited_at: SystemTime::now(),
        oom_killed: false,
    }
}

/// The exit status of a process lost with its VM: 255, containerd's code for a process
/// whose real exit status cannot be known (what it reports itself when a shim vanishes).
/// A status of 128 + n would claim a signal that nothing sent.
pub(super) fn lost_with_vm() -> ExitStatus {
    ExitStatus {
        code: VM_LOST_EXIT_CODE,
        signal: None,
        exited_at: SystemTime::now(),
        oom_killed: false,
    }
}

/// Exit code of every process whose VM died under it.
pub const VM_LOST_EXIT_CODE: u32 = 255;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_is_recorded_once_and_seen_by_waiters() {
        let mut process = Process::new(None, StdioPaths::default(), 7);
        let mut waiter = process.exit_receiver();
        process.state = ProcessState::Running;
        assert_eq!(process.info(true).state, ProcessState::Paused);

        assert!(process.record_exit(killed_by(9)));
        assert!(
            !process.record_exit(lost_with_vm()),
            "a second exit is ignored"
        );
        assert!(waiter.has_changed().expect("sender alive"));
        let seen = *waiter.borrow_and_update();
        assert_eq!(seen.map(|s| s.code), Some(137));
        assert_eq!(process.info(true).state, ProcessState::Stopped);
    }
}
