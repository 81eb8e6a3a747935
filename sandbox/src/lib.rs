//! The runtime core of lightpod, shared by every front end (the containerd shim, the CLI).
//!
//! A [`Sandbox`] is one pod: one guest VM, booted through a `lightpod_vmm::Hypervisor`, and
//! one connection to the agent inside it. Containers are created in a sandbox from OCI
//! runtime specs ([`ContainerSpec::from_oci`]); their root filesystems and volumes are
//! shared into the guest through one directory per sandbox ([`share`]), or, where the
//! backend cannot share directories (Xen), handed over as disk images ([`rootfs_image`]).

pub mod agent;
mod agent_request;
pub mod backend;
pub mod cleanup;
pub mod config;
mod control;
mod error;
pub mod guest;
pub mod network;
pub mod pod_size;
pub mod rootfs_image;
mod sandbox;
pub mod share;
pub mod spec;
pub mod stdio;
pub mod task;

pub use agent::AgentClient;
pub use config::Config;
pub use error::{chain, AgentCallError, ErrorKind, SandboxError};
pub use sandbox::{sandbox_dir, ExitStatus, Sandbox, SandboxSpec, StartTimings};
pub use spec::{ContainerSpec, MountSource, MountSpec, ProcessSpec, ResourceSpec, SpecError};
pub use task::{TaskError, TaskEvent, TaskRegistry};
