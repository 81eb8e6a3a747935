//! The agent's request errors and their one mapping to ttrpc status codes.

use std::error::Error as StdError;

use ttrpc::Code;

use crate::{
    container::cgroup::CgroupError, convert::SpecError, init::SetupFailure, network::NetworkError,
    process::spawn::SpawnError, storage::StorageError,
};

/// Why a request to the agent failed. [`to_status`] turns it into the ttrpc status the host
/// sees; every variant picks its code there and nowhere else.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The request is malformed (missing field, relative path, unknown name …).
    #[error("invalid request")]
    InvalidRequest(#[from] SpecError),
    /// No container has this id.
    #[error("container {0:?} not found")]
    ContainerNotFound(String),
    /// The container exists but has no process with this exec id.
    #[error("process {exec_id:?} of container {container_id:?} not found")]
    ProcessNotFound {
        /// Container the host named.
        container_id: String,
        /// Exec id the host named ("" is the init process).
        exec_id: String,
    },
    /// No port-forward connection has this id.
    #[error("connection {0} not found")]
    ConnectionNotFound(u64),
    /// A container with this id exists already.
    #[error("container {0:?} already exists")]
    ContainerExists(String),
    /// A live process of the container already uses this exec id.
    #[error("exec id {exec_id:?} is already in use in container {container_id:?}")]
    ExecIdInUse {
        /// Container the host named.
        container_id: String,
        /// The exec id in use.
        exec_id: String,
    },
    /// The call does not fit the state the container or process is in.
    #[error("{0}")]
    WrongState(String),
    /// The process's executable does not exist in the container's root filesystem. The
    /// message starts with `executable ` so the host can tell it from other failures.
    #[error("executable {executable:?} not found in rootfs{path}")]
    ExecutableNotFound {
        /// `args[0]` as requested.
        executable: String,
        /// ` (PATH=…)` when the name was searched in PATH, empty otherwise.
        path: String,
    },
    /// Setting the container process up failed in the container init, before `execve`.
    #[error("set up container process: {step}: {detail}")]
    ProcessSetup {
        /// The setup step that failed (mount, pivot_root, setuid …).
        step: String,
        /// What the step reported.
        detail: String,
    },
    /// Starting the container init process failed.
    #[error("start container process")]
    Spawn(#[from] SpawnError),
    /// A cgroup operation failed.
    #[error("cgroup")]
    Cgroup(#[from] CgroupError),
    /// Mounting or unmounting storage failed.
    #[error("storage")]
    Storage(#[from] StorageError),
    /// Configuring the network failed.
    #[error("network")]
    Network(#[from] NetworkError),
    /// Dialling a port inside the guest failed.
    #[error("connect to 127.0.0.1:{port}")]
    Connect {
        /// Port the host asked for.
        port: u16,
        /// Why the connection failed.
        #[source]
        source: std::io::Error,
    },
    /// Reading, writing or signalling a process or connection failed.
    #[error("{context}")]
    Io {
        /// What the agent was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl From<SetupFailure> for AgentError {
    fn from(failure: SetupFailure) -> Self {
        match failure {
            SetupFailure::Step { step, detail } => AgentError::ProcessSetup { step, detail },
            SetupFailure::ExecutableNotFound { executable, path } => {
                AgentError::ExecutableNotFound { executable, path }
            }
        }
    }
}

/// Result of an agent operation.
pub type AgentResult<T> = Result<T, AgentError>;

impl AgentError {
    /// The ttrpc status code the host sees for this error.
    pub fn code(&self) -> Code {
        match self {
            AgentError::InvalidRequest(_) => Code::INVALID_ARGUMENT,
            AgentError::ContainerNotFound(_)
            | AgentError::ProcessNotFound { .. }
            | AgentError::ConnectionNotFound(_)
            | AgentError::ExecutableNotFound { .. } => Code::NOT_FOUND,
            AgentError::ContainerExists(_) | AgentError::ExecIdInUse { .. } => Code::ALREADY_EXISTS,
            AgentError::WrongState(_) => Code::FAILED_PRECONDITION,
            AgentError::Network(NetworkError::InterfaceNotFound { .. }) => Code::NOT_FOUND,
            AgentError::Network(NetworkError::InvalidAddress { .. }) => Code::INVALID_ARGUMENT,
            AgentError::Storage(StorageError::AlreadyMounted(_)) => Code::ALREADY_EXISTS,
            AgentError::Connect { .. } => Code::UNAVAILABLE,
            AgentError::ProcessSetup { .. }
            | AgentError::Spawn(_)
            | AgentError::Cgroup(_)
            | AgentError::Storage(_)
            | AgentError::Network(_)
            | AgentError::Io { .. } => Code::INTERNAL,
        }
    }
}

/// Converts an agent error into the ttrpc error the host receives: the status code of
/// [`AgentError::code`] and the whole cause chain as the message, `outer: inner: …`.
pub fn to_status(err: AgentError) -> ttrpc::Error {
    let code = err.code();
    let message = chain(&err);
    if code == Code::INTERNAL {
        tracing::error!(error = %message, "request failed");
    } else {
        tracing::debug!(error = %message, ?code, "request refused");
    }
    ttrpc::Error::RpcStatus(ttrpc::get_status(code, message))
}

/// Formats an error and its sources as one line.
pub fn chain(err: &dyn StdError) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_error_kind() {
        let io = || std::io::Error::from_raw_os_error(libc::EIO);
        let cases: Vec<(&str, AgentError, Code)> = vec![
            (
                "bad request",
                AgentError::InvalidRequest(SpecError::Missing("process")),
                Code::INVALID_ARGUMENT,
            ),
            (
                "unknown container",
                AgentError::ContainerNotFound("c".into()),
                Code::NOT_FOUND,
            ),
            (
                "unknown exec",
                AgentError::ProcessNotFound {
                    container_id: "c".into(),
                    exec_id: "e".into(),
                },
                Code::NOT_FOUND,
            ),
            (
                "duplicate container",
                AgentError::ContainerExists("c".into()),
                Code::ALREADY_EXISTS,
            ),
            (
                "duplicate exec",
                AgentError::ExecIdInUse {
                    container_id: "c".into(),
                    exec_id: "e".into(),
                },
                Code::ALREADY_EXISTS,
            ),
            (
                "wrong state",
                AgentError::WrongState("not started".into()),
                Code::FAILED_PRECONDITION,
            ),
            (
                "missing executable",
                AgentError::ExecutableNotFound {
                    executable: "foo".into(),
                    path: String::new(),
                },
                Code::NOT_FOUND,
            ),
            (
                "setup",
                AgentError::ProcessSetup {
                    step: "mount".into(),
                    detail: "x".into(),
                },
                Code::INTERNAL,
            ),
            (
                "refused",
                AgentError::Connect {
                    port: 80,
                    source: io(),
                },
                Code::UNAVAILABLE,
            ),
            (
                "io",
                AgentError::Io {
                    context: "read".into(),
                    source: io(),
                },
                Code::INTERNAL,
            ),
        ];
        for (name, err, code) in cases {
            assert_eq!(err.code(), code, "{name}");
        }
    }

    #[test]
    fn status_message_carries_the_chain() {
        let err = AgentError::Io {
            context: "write stdin".into(),
            source: std::io::Error::from_raw_os_error(libc::EPIPE),
        };
        let ttrpc::Error::RpcStatus(status) = to_status(err) else {
            panic!("not an RPC status");
        };
        assert_eq!(status.code(), Code::INTERNAL);
        assert!(
            status.message().starts_with("write stdin: "),
            "{}",
            status.message()
        );
        assert!(
            status.message().contains("Broken pipe"),
            "{}",
            status.message()
        );
    }

    #[test]
    fn executable_not_found_has_a_stable_prefix() {
        let err = AgentError::ExecutableNotFound {
            executable: "foo".into(),
            path: " (PATH=/bin)".into(),
        };
        assert_eq!(
            err.to_string(),
            "executable \"foo\" not found in rootfs (PATH=/bin)"
        );
    }
}
