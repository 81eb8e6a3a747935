//! What happened to tasks, in the order it happened; front ends turn these into their own
//! events (containerd task events, CRI container events).

use std::path::PathBuf;

use crate::sandbox::ExitStatus;

use super::stdio::StdioPaths;

/// One event of a task registry, sent on its channel in the order the front end must
/// publish them: a task's `Created` before its `Started`, `Started` before `Exited`,
/// `Exited` before `Deleted`; an exec's `ExecAdded` before `ExecStarted` before `Exited`.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskEvent {
    /// A task (container) was created; its init process has not started.
    Created {
        /// Task id.
        id: String,
        /// OCI bundle directory.
        bundle: PathBuf,
        /// Its stdio.
        stdio: StdioPaths,
        /// Pid reported for the task (see [`super::TaskRegistry`] on pids).
        pid: u32,
    },
    /// A task's init process started.
    Started {
        /// Task id.
        id: String,
        /// Pid reported for the task.
        pid: u32,
    },
    /// A process (init when `exec_id` is empty) exited; its output has been copied.
    Exited {
        /// Task id.
        id: String,
        /// Exec id, empty for the init process.
        exec_id: String,
        /// Pid reported for the process.
        pid: u32,
        /// How it ended.
        status: ExitStatus,
    },
    /// The OOM killer acted in the task's container.
    Oom {
        /// Task id.
        id: String,
    },
    /// An exec process was added to a task (not started yet).
    ExecAdded {
        /// Task id.
        id: String,
        /// Exec id.
        exec_id: String,
    },
    /// An exec process started.
    ExecStarted {
        /// Task id.
        id: String,
        /// Exec id.
        exec_id: String,
        /// Guest pid of the process.
        pid: u32,
    },
    /// A task's processes were frozen.
    Paused {
        /// Task id.
        id: String,
    },
    /// A task's processes were thawed.
    Resumed {
        /// Task id.
        id: String,
    },
    /// A task was deleted with its exec processes.
    Deleted {
        /// Task id.
        id: String,
        /// Pid reported for the task.
        pid: u32,
        /// How its init process ended.
        status: ExitStatus,
    },
}
