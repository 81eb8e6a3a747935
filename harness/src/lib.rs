//! What a front end needs to drive lightpod through a real containerd: the OCI images built
//! locally from Debian's `busybox-static` ([`image`]), a blocking CRI client that calls
//! containerd's CRI plugin as kubelet does ([`cri`]), and a private containerd instance with
//! its own root, state, socket and CNI bridge, never the system one ([`containerd`]).
//!
//! Three front ends share it: the operator's `lightpod demo`, the benchmarks, and the
//! end-to-end tests of `lightpod-e2e`. Everything here drives real parts (containerd, runc,
//! the CNI plugins, the lightpod shim); nothing is mocked.

pub mod containerd;
pub mod cri;
pub mod image;
