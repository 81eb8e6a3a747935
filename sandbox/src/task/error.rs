//! Why a task operation failed, and the coarse kind front ends map to status codes.

use crate::error::{ErrorKind, SandboxError};

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// No task with this id in this registry.
    #[error("task {0} not found")]
    TaskNotFound(String),
    /// No exec process with this id in the task.
    #[error("exec process {exec_id} not found in task {id}")]
    ExecNotFound {
        /// Task (container) id.
        id: String,
        /// Exec id.
        exec_id: String,
    },
    /// A task or exec process with this id exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A container names a pod sandbox that this registry does not run.
    #[error(
        "pod sandbox {sandbox} of container {id} is not running here (create the sandbox first)"
    )]
    SandboxNotFound {
        /// The container.
        id: String,
        /// The sandbox it named.
        sandbox: String,
    },
    /// The process has exited already.
    #[error("process {0} already finished")]
    ProcessFinished(String),
    /// The request does not fit the state the task is in.
    #[error("task {id} is {state}: {reason}")]
    WrongState {
        /// Task (container) id, with the exec id if any.
        id: String,
        /// Its current state.
        state: &'static str,
        /// What the caller should do instead.
        reason: &'static str,
    },
    /// The request itself is invalid (bad id, bad annotation, bad spec part).
    #[error("{0}")]
    InvalidRequest(String),
    /// A stdio FIFO could not be opened.
    #[error("open {stream} {path}")]
    OpenFifo {
        /// stdin, stdout or stderr.
        stream: &'static str,
        /// The FIFO.
        path: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A mount of containerd's root filesystem failed.
    #[error("mount the {fs_type} rootfs {source_path} on {target}")]
    MountRootfs {
        /// Filesystem type of the mount.
        fs_type: String,
        /// Its source.
        source_path: String,
        /// The bundle's rootfs directory.
        target: String,
        /// What mount(2) said.
        #[source]
        source: nix::Error,
    },
    /// The guest could not start the process (its executable is missing, its cwd is bad…).
    #[error("start process {exec_id:?} of task {id}")]
    StartProcess {
        /// Task id.
        id: String,
        /// Exec id, empty for the init process.
        exec_id: String,
        /// What the guest said.
        #[source]
        source: Box<SandboxError>,
    },
    /// The runtime core failed (VM, agent, mounts, spec, configuration).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

impl TaskError {
    /// The class of this failure, for mapping to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaskError::TaskNotFound(_)
            | TaskError::ExecNotFound { .. }
            | TaskError::SandboxNotFound { .. }
            | TaskError::ProcessFinished(_) => ErrorKind::NotFound,
            TaskError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            TaskError::WrongState { .. } => ErrorKind::FailedPrecondition,
            TaskError::InvalidRequest(_) => ErrorKind::InvalidArgument,
            TaskError::OpenFifo { .. } => ErrorKind::InvalidArgument,
            TaskError::MountRootfs { .. } => ErrorKind::Internal,
            // The agent answers NotFound for an executable missing from the rootfs: a
            // request that cannot be run, not a missing task.
            TaskError::StartProcess { source, .. } => match source.kind() {
                ErrorKind::NotFound => ErrorKind::InvalidArgument,
                kind => kind,
            },
            TaskError::Sandbox(e) => e.kind(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_failure() {
        let cases = [
            (TaskError::TaskNotFound("a".into()), ErrorKind::NotFound),
            (TaskError::ProcessFinished("a".into()), ErrorKind::NotFound),
            (
                TaskError::AlreadyExists("a".into()),
                ErrorKind::AlreadyExists,
            ),
            (
                TaskError::WrongState {
                    id: "a".into(),
                    state: "running",
                    reason: "kill it first",
                },
                ErrorKind::FailedPrecondition,
            ),
            (
                TaskError::Sandbox(SandboxError::ContainerExists("a".into())),
                ErrorKind::AlreadyExists,
            ),
            (
                TaskError::Sandbox(SandboxError::VmGone("p".into())),
                ErrorKind::FailedPrecondition,
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error}");
        }
    }
}
