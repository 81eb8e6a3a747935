//! Why the pod network could not be carried into the VM.

use std::path::{Path, PathBuf};

/// Why attaching, detaching or forwarding the pod network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The network namespace file could not be opened.
    #[error("open the network namespace {path}")]
    OpenNamespace {
        /// The namespace's path (a bind mount under `/var/run/netns` or containerd's state).
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// setns(2) into the namespace failed.
    #[error("enter the network namespace")]
    EnterNamespace(#[source] nix::Error),
    /// The thread that works inside the namespace could not start or died.
    #[error("run a thread in the network namespace")]
    NamespaceThread(#[source] std::io::Error),
    /// The rtnetlink socket could not be opened.
    #[error("open an rtnetlink socket")]
    Netlink(#[source] std::io::Error),
    /// A netlink request failed.
    #[error("{step}")]
    Request {
        /// What was being done.
        step: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
    /// The namespace holds no interface to carry into the guest.
    #[error("the namespace has no network interface besides lo (did CNI run?)")]
    NoInterface,
    /// A tap device could not be created.
    #[error("create tap device {name}")]
    CreateTap {
        /// The tap's name.
        name: String,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The port-forward redirect could not be installed.
    #[error("install the port-forward redirect: {command}: {detail}")]
    Iptables {
        /// The command that failed.
        command: String,
        /// Its output or the spawn error.
        detail: String,
    },
    /// The port-forward listener could not be created.
    #[error("listen for port-forward connections")]
    Listen(#[source] std::io::Error),
    /// Something failed inside the namespace at `path`.
    #[error("pod network namespace {path}")]
    InNamespace {
        /// The namespace.
        path: PathBuf,
        /// What failed.
        #[source]
        source: Box<NetworkError>,
    },
}

impl NetworkError {
    /// This error, saying which namespace it happened in.
    pub(super) fn in_namespace(self, path: &Path) -> NetworkError {
        match self {
            already @ (NetworkError::InNamespace { .. } | NetworkError::OpenNamespace { .. }) => {
                already
            }
            other => NetworkError::InNamespace {
                path: path.to_path_buf(),
                source: Box::new(other),
            },
        }
    }
}

/// A netlink error mapper for the step `step`.
pub(super) fn request(step: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let step = step.into();
    move |source| NetworkError::Request { step, source }
}
