//! The private containerd of a test run (never the system one), and `ctr` against it.
//!
//! The runner starts one containerd per run with `lightpod-e2e-fixture containerd-start`
//! (a [`lightpod_harness::containerd::PrivateContainerd`]) and exports its address; tests
//! isolate from each other through containerd namespaces: each `ctr` test works in a
//! [`TestNamespace`] of its own, and CRI tests share `k8s.io` (the CRI plugin's namespace)
//! with pods of unique uids.

mod footprint;
mod namespace;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub use footprint::{mounts_mentioning, PodFootprint};
pub use lightpod_harness::containerd::{CRI_NAMESPACE, LIGHTPOD_RUNTIME, RUNC_RUNTIME};
use lightpod_harness::{
    containerd::{DEFAULT_BRIDGE, DEFAULT_SUBNET},
    cri::CriClient,
};
pub use namespace::TestNamespace;

/// The containerd socket; printed by `lightpod-e2e-fixture containerd-start`.
pub const ADDRESS_ENV: &str = "LIGHTPOD_E2E_CONTAINERD_ADDRESS";
/// The instance directory (root, state, config, log); printed by `containerd-start`.
pub const DIR_ENV: &str = "LIGHTPOD_E2E_CONTAINERD_DIR";
/// The CNI bridge of the pod network; printed by `containerd-start`, which also reads it.
pub const BRIDGE_ENV: &str = "LIGHTPOD_E2E_CNI_BRIDGE";
/// The pod subnet; printed by `containerd-start`, which also reads it.
pub const SUBNET_ENV: &str = "LIGHTPOD_E2E_CNI_SUBNET";
/// containerd's log level for `containerd-start` (default `info`).
pub const LOG_LEVEL_ENV: &str = "LIGHTPOD_E2E_CONTAINERD_LOG_LEVEL";

/// A running private containerd.
#[derive(Debug, Clone)]
pub struct Containerd {
    address: PathBuf,
    dir: PathBuf,
    bridge: String,
    subnet: String,
}

/// One line of `ctr tasks ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    /// The container id.
    pub id: String,
    /// The pid of the task's init process (on the host, as the shim reports it).
    pub pid: u32,
    /// RUNNING, STOPPED, PAUSED, ...
    pub status: String,
}

impl Containerd {
    /// The containerd the runner started, from the environment `containerd-start` printed.
    /// Fails the test with instructions when it is not there.
    pub fn from_env() -> Containerd {
        crate::require_root();
        let Some(address) = std::env::var_os(ADDRESS_ENV).map(PathBuf::from) else {
            panic!(
                "{ADDRESS_ENV} is not set: these tests need the private containerd that \
                 `lightpod-e2e-fixture containerd-start` starts. Run them with e2e/run.sh, or by \
                 hand (see e2e/containerd/README.md):\n  \
                 eval \"$(target/release/lightpod-e2e-fixture containerd-start /tmp/lpe2e \
                 target/release)\" && cargo test --release -p lightpod-e2e ...; \
                 target/release/lightpod-e2e-fixture containerd-stop /tmp/lpe2e"
            )
        };
        assert!(
            address.exists(),
            "{} (from {ADDRESS_ENV}) does not exist: is the containerd of \
             `lightpod-e2e-fixture containerd-start` still running?",
            address.display()
        );
        let dir = std::env::var_os(DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| address.parent().unwrap().to_path_buf());
        let var = |name, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        Containerd {
            address,
            dir,
            bridge: var(BRIDGE_ENV, DEFAULT_BRIDGE),
            subnet: var(SUBNET_ENV, &DEFAULT_SUBNET.to_string()),
        }
    }

    /// A CRI client connected to this containerd; fails the test when it cannot connect.
    pub fn cri(&self) -> CriClient {
        CriClient::connect(&self.address).unwrap_or_else(|e| panic!("{:#}", anyhow::Error::new(e)))
    }

    /// The gRPC socket (CRI is served there too).
    pub fn address(&self) -> &Path {
        &self.address
    }

    /// containerd's root directory (content, snapshots, metadata).
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// containerd's state directory (task bundles, CRI state, pod network namespaces).
    pub fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// containerd's log, where shim logs also land.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    /// The CNI bridge pods are attached to.
    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// The pod subnet, e.g. `10.250.87.0/24`.
    pub fn subnet(&self) -> &str {
        &self.subnet
    }

    /// Runs `ctr --address <socket> --namespace <namespace> <args>`.
    pub fn ctr(&self, namespace: &str, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(&self.address)
            .args(["--namespace", namespace])
            .args(args)
            .output()
            .expect("run ctr (apt-get install containerd)")
    }

    /// Runs `ctr` and returns its stdout, failing the test if it fails.
    pub fn ctr_ok(&self, namespace: &str, args: &[&str]) -> String {
        let out = self.ctr(namespace, args);
        assert!(
            out.status.success(),
            "ctr -n {namespace} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Imports an OCI image archive into `namespace` (and unpacks it for overlayfs).
    pub fn import(&self, namespace: &str, archive: &Path) {
        self.ctr_ok(
            namespace,
            &["images", "import", &archive.display().to_string()],
        );
    }

    /// Tasks of `namespace`.
    pub fn tasks(&self, namespace: &str) -> Vec<TaskInfo> {
        self.ctr_ok(namespace, &["tasks", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some(TaskInfo {
                    id: fields.next()?.to_string(),
                    pid: fields.next()?.parse().ok()?,
                    status: fields.next()?.to_string(),
                })
            })
            .collect()
    }

    /// Container ids of `namespace`.
    pub fn containers(&self, namespace: &str) -> Vec<String> {
        quiet_list(&self.ctr_ok(namespace, &["containers", "ls", "-q"]))
    }

    /// Snapshot keys of `namespace` (overlayfs snapshotter).
    pub fn snapshots(&self, namespace: &str) -> Vec<String> {
        self.ctr_ok(namespace, &["snapshots", "ls"])
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next().map(str::to_string))
            .collect()
    }

    /// Image names of `namespace`.
    pub fn images(&self, namespace: &str) -> Vec<String> {
        quiet_list(&self.ctr_ok(namespace, &["images", "ls", "-q"]))
    }

    /// All namespaces.
    pub fn namespaces(&self) -> Vec<String> {
        quiet_list(&self.ctr_ok("default", &["namespaces", "ls", "-q"]))
    }
}

fn quiet_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}
