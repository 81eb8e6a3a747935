//! The host-to-agent API of lightpod: protobuf messages and async ttrpc stubs.
//!
//! The schema lives in `agent/v1/agent.proto`; this crate only compiles it. The host side
//! (`sandbox`) uses [`agent_ttrpc::AgentClient`]; the guest side (`agent`) implements
//! [`agent_ttrpc::Agent`] and serves it with [`agent_ttrpc::create_agent`].

/// Messages of `lightpod.agent.v1`.
#[allow(missing_docs, unused_mut, nonstandard_style, unused_imports, dead_code, clippy::all, clippy::unwrap_used, clippy::undocumented_unsafe_blocks)]
#[rustfmt::skip]
pub mod agent {
    include!(concat!(env!("OUT_DIR"), "/agent.rs"));
}

/// ttrpc client and server stubs of the `Agent` service.
#[allow(missing_docs, unused_mut, nonstandard_style, unused_imports, dead_code, clippy::all, clippy::unwrap_used, clippy::undocumented_unsafe_blocks)]
#[rustfmt::skip]
pub mod agent_ttrpc {
    include!(concat!(env!("OUT_DIR"), "/agent_ttrpc.rs"));
}

/// Major version of the agent API this build speaks (the `v1` of the proto package).
pub const API_VERSION: u32 = 1;

/// Name of the virtio-serial port that carries the agent channel under QEMU.
pub const AGENT_PORT_NAME: &str = "lightpod.agent";

pub use protobuf;
pub use ttrpc;
