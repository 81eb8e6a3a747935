//! A private containerd: its own root, state, sockets, log and CNI bridge under one
//! directory, never the system one; `runc` and the lightpod shim as runtimes, and the CRI
//! plugin with a pod network of its own.
//!
//! [`PrivateContainerd::start`] checks the host first (root, the programs and CNI plugins,
//! the socket path, no earlier instance in the directory, the bridge free, the subnet not
//! routed) and fails with what to do when a check does not pass. Then it records the
//! host-wide state it may change, renders `config.toml` and the CNI network list from the
//! templates in `harness/containerd/`, starts containerd in a session of its own with the shim
//! directory first in its PATH, waits until it answers, checks that its `tasks` and `cri`
//! plugins loaded, and imports the images into `k8s.io`. A start that fails after its checks
//! removes what it made before it returns.
//!
//! [`stop`] undoes an instance from its directory alone, so another process can stop it:
//! CRI pods (through CRI, so CNI tears their networks down), tasks and containers of every
//! namespace, containerd, shims that outlived it, mounts under the directory, the bridge and
//! its veths, portmap's iptables chains when the instance brought them in,
//! `net.ipv4.ip_forward`, `/run/containerd` and `/var/run/netns` when the instance created
//! them and they are empty, and the directory.
//!
//! Under the directory: `config.toml`, `root/`, `state/` (pod network namespaces in
//! `state/io.containerd.grpc.v1.cri/netns/`), `containerd.sock` (gRPC, CRI too),
//! `containerd.sock.ttrpc`, `containerd.log` (shim logs land there too),
//! `cni/net.d/10-lightpod-e2e.conflist`, `cni/ipam/` (host-local IPAM state) and
//! `instance.json`, the record [`stop`] works from.

mod config;
mod ctr;
mod mounts;
mod network;
mod options;
mod preflight;
mod process;
mod start;
mod state;
mod stop;

use std::path::{Path, PathBuf};

pub use self::{
    ctr::{Ctr, CtrError},
    options::{
        ContainerdOptions, LogLevel, LogLevelError, OptionsError, Subnet, SubnetError,
        DEFAULT_BRIDGE, DEFAULT_SUBNET,
    },
    start::StartError,
    stop::{stop, StopError},
};
use crate::cri::{CriClient, CriConnectError};

/// The namespace of the CRI plugin, where pods run and images are imported.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// containerd's runtime type for runc.
pub const RUNC_RUNTIME: &str = "io.containerd.runc.v2";
/// containerd's runtime type for lightpod.
pub const LIGHTPOD_RUNTIME: &str = "io.containerd.lightpod.v2";
/// containerd's log, under the instance directory.
const LOG_FILE: &str = "containerd.log";

/// A running private containerd. Dropping it stops it and removes all of it, as [`stop`]
/// does; [`PrivateContainerd::detach`] leaves it running instead.
#[derive(Debug)]
pub struct PrivateContainerd {
    dir: PathBuf,
    address: PathBuf,
    bridge: String,
    subnet: Subnet,
    pid: u32,
    stop_on_drop: bool,
}

impl PrivateContainerd {
    /// Checks the host, then starts an instance as `options` say (see the module
    /// documentation for the steps).
    ///
    /// # Errors
    ///
    /// The check or step that failed. A failed start leaves the host as it found it.
    pub fn start(options: &ContainerdOptions) -> Result<PrivateContainerd, StartError> {
        let started = start::start(options)?;
        Ok(PrivateContainerd {
            dir: started.dir,
            address: started.address,
            bridge: options.bridge.clone(),
            subnet: options.subnet,
            pid: started.pid,
            stop_on_drop: true,
        })
    }

    /// The instance directory (absolute).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The gRPC socket; CRI is served there too.
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// The CNI bridge pods are attached to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The pod subnet.
    pub fn subnet(&self) -> Subnet {
        self.subnet
    }

    /// containerd's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// containerd's log, where shim logs also land.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join(LOG_FILE)
    }

    /// `ctr` against this instance.
    pub fn ctr(&self) -> Ctr {
        Ctr::new(&self.address)
    }

    /// A CRI client connected to this instance.
    ///
    /// # Errors
    ///
    /// As [`CriClient::connect`].
    pub fn cri(&self) -> Result<CriClient, CriConnectError> {
        CriClient::connect(&self.address)
    }

    /// Stops the instance and removes all of it, reporting what could not be removed.
    ///
    /// # Errors
    ///
    /// As [`stop`].
    pub fn stop(mut self) -> Result<(), StopError> {
        self.stop_on_drop = false;
        stop(&self.dir)
    }

    /// Leaves the instance running beyond this value (and this process); [`stop`] with the
    /// returned directory stops it later.
    pub fn detach(mut self) -> PathBuf {
        self.stop_on_drop = false;
        self.dir.clone()
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        if !self.stop_on_drop {
            return;
        }
        if let Err(error) = stop(&self.dir) {
            tracing::error!(dir = %self.dir.display(), %error, "stopping the private containerd");
        }
    }
}
