//! The runtime core of lightpod, shared by every front end (the containerd shim, the CLI).
//!
//! A [`Sandbox`] is one pod: one guest VM, booted through a `lightpod_vmm::Hypervisor`, and
//! one connection to the agent inside it. Containers are created in a sandbox from OCI
//! runtime specs; their root filesystems and volumes are shared into the guest.
