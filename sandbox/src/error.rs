//! The error type of the sandbox core and the coarse kinds front ends map to status codes.

use std::time::Duration;

use lightpod_vmm::{guest::GuestImageError, VmError};

use crate::{config::ConfigError, spec::SpecError};

/// Why a sandbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The container spec cannot be run.
    #[error("invalid container spec")]
    Spec(#[from] SpecError),
    /// The configuration or a per-pod annotation is invalid.
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    /// The guest kernel or initramfs could not be prepared.
    #[error("prepare the guest image")]
    GuestImage(#[from] GuestImageError),
    /// The hypervisor backend failed.
    #[error("virtual machine")]
    Vm(#[from] VmError),
    /// The agent did not answer in time after boot.
    #[error("the guest agent did not answer within {0:?} (see the guest console log)")]
    AgentTimeout(Duration),
    /// The agent in the guest image speaks another API version.
    #[error(
        "guest agent speaks API v{found}, this host needs v{expected}: rebuild the guest image \
         with `lightpod image build`"
    )]
    AgentVersion {
        /// Version the agent reported.
        found: u32,
        /// Version this host speaks.
        expected: u32,
    },
    /// An agent call failed.
    #[error("guest agent {call}")]
    Agent {
        /// Name of the call (`CreateContainer`, …).
        call: &'static str,
        /// What the agent or the channel reported.
        #[source]
        source: AgentCallError,
    },
    /// No container with this id exists in the sandbox.
    #[error("container {0} not found in this sandbox")]
    ContainerNotFound(String),
    /// A container with this id already exists.
    #[error("container {0} already exists in this sandbox")]
    ContainerExists(String),
    /// No process with this exec id exists in the container.
    #[error("process {exec_id:?} not found in container {container_id}")]
    ProcessNotFound {
        /// Container id.
        container_id: String,
        /// Exec id.
        exec_id: String,
    },
    /// The container needs host directories shared into the guest, which this sandbox's
    /// backend cannot do.
    #[error("{0} need a backend that shares directories (qemu); this sandbox's cannot")]
    NeedsSharedDirectories(String),
    /// The sandbox's VM has stopped.
    #[error("the VM of sandbox {0} is not running")]
    VmGone(String),
    /// A host mount could not be made or removed.
    #[error("{action} {path}")]
    Mount {
        /// What was being done ("bind-mount into the share", "unmount").
        action: &'static str,
        /// The path involved.
        path: String,
        /// What the kernel said.
        #[source]
        source: nix::Error,
    },
    /// The pod network could not be carried into the guest.
    #[error("pod network")]
    Network(#[from] crate::network::NetworkError),
    /// Another host I/O error.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// How an agent call failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentCallError {
    /// The agent answered with an error status.
    #[error("{message}")]
    Status {
        /// The ttrpc status code the agent chose.
        code: ttrpc::Code,
        /// The agent's message.
        message: String,
    },
    /// The channel to the guest broke (the VM stopped or the agent died).
    #[error("channel to the guest failed: {0}")]
    Transport(String),
    /// The call did not finish in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Coarse classes of failure; each front end maps them to its status codes in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was malformed or names something impossible.
    InvalidArgument,
    /// The named object does not exist.
    NotFound,
    /// The object already exists.
    AlreadyExists,
    /// The object is in the wrong state for this request.
    FailedPrecondition,
    /// A dependency (VM, agent, host tool) is not available.
    Unavailable,
    /// Something did not finish in time.
    DeadlineExceeded,
    /// The operation is not supported.
    Unimplemented,
    /// Anything else.
    Internal,
}

impl SandboxError {
    /// The class of this failure, for mapping to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SandboxError::Spec(_) | SandboxError::Config(_) => ErrorKind::InvalidArgument,
            SandboxError::ContainerNotFound(_) | SandboxError::ProcessNotFound { .. } => {
                ErrorKind::NotFound
            }
            SandboxError::ContainerExists(_) => ErrorKind::AlreadyExists,
            SandboxError::VmGone(_) => ErrorKind::FailedPrecondition,
            SandboxError::AgentTimeout(_) => ErrorKind::DeadlineExceeded,
            SandboxError::AgentVersion { .. } => ErrorKind::FailedPrecondition,
            SandboxError::GuestImage(_) => ErrorKind::Unavailable,
            SandboxError::Vm(VmError::VmmMissing { .. } | VmError::GuestFile { .. }) => {
                ErrorKind::Unavailable
            }
            SandboxError::Vm(VmError::InvalidSpec(_)) => ErrorKind::InvalidArgument,
            SandboxError::Vm(VmError::OutOfMemory { .. } | VmError::BackendUnavailable { .. }) => {
                ErrorKind::Unavailable
            }
            SandboxError::Vm(VmError::Unsupported(_)) => ErrorKind::Unimplemented,
            SandboxError::Vm(VmError::AgentNotReady { .. }) => ErrorKind::DeadlineExceeded,
            SandboxError::NeedsSharedDirectories(_) => ErrorKind::FailedPrecondition,
            SandboxError::Vm(VmError::Timeout(..)) => ErrorKind::DeadlineExceeded,
            SandboxError::Vm(_) => ErrorKind::Internal,
            SandboxError::Agent { source, .. } => match source {
                AgentCallError::Status { code, .. } => kind_of_code(*code),
                AgentCallError::Transport(_) => ErrorKind::Unavailable,
                AgentCallError::Timeout(_) => ErrorKind::DeadlineExceeded,
            },
            SandboxError::Network(e) => network_kind(e),
            SandboxError::Mount { .. } | SandboxError::Io { .. } => ErrorKind::Internal,
        }
    }
}

fn network_kind(error: &crate::network::NetworkError) -> ErrorKind {
    use crate::network::NetworkError;
    match error {
        NetworkError::InNamespace { source, .. } => network_kind(source),
        NetworkError::OpenNamespace { .. } | NetworkError::NoInterface => {
            ErrorKind::FailedPrecondition
        }
        NetworkError::Iptables { .. } => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

fn kind_of_code(code: ttrpc::Code) -> ErrorKind {
    match code {
        ttrpc::Code::INVALID_ARGUMENT | ttrpc::Code::OUT_OF_RANGE => ErrorKind::InvalidArgument,
        ttrpc::Code::NOT_FOUND => ErrorKind::NotFound,
        ttrpc::Code::ALREADY_EXISTS => ErrorKind::AlreadyExists,
        ttrpc::Code::FAILED_PRECONDITION => ErrorKind::FailedPrecondition,
        ttrpc::Code::UNAVAILABLE => ErrorKind::Unavailable,
        ttrpc::Code::DEADLINE_EXCEEDED => ErrorKind::DeadlineExceeded,
        ttrpc::Code::UNIMPLEMENTED => ErrorKind::Unimplemented,
        _ => ErrorKind::Internal,
    }
}

/// Formats an error and its whole `source()` chain on one line: `a: b: c`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
