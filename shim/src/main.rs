//! `containerd-shim-lightpod-v2`: the containerd shim v2 of lightpod (runtime type
//! `io.containerd.lightpod.v2`).
//!
//! containerd starts one shim per pod: a task whose OCI spec carries the CRI annotations of
//! a pod sandbox boots the pod's VM, the pod's containers join that shim and that VM (the
//! shim socket is grouped by `io.kubernetes.cri.sandbox-id`), and a task without CRI
//! annotations (`ctr run`) gets a shim and a VM of its own. All behaviour lives in
//! `lightpod_sandbox::task`; this binary translates the shim v2 task API to it.

mod convert;
mod error;
mod events;
mod logging;
mod service;
mod shim;

/// The runtime type containerd knows this shim by.
const RUNTIME_ID: &str = "io.containerd.lightpod.v2";

#[tokio::main]
async fn main() {
    containerd_shim::asynchronous::run::<shim::LightpodShim>(RUNTIME_ID, Some(shim::shim_config()))
        .await;
}
