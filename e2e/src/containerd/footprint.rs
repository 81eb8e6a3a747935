//! What a CRI pod leaves on the host while it runs, recorded so a test can check afterwards
//! that all of it is gone.

use std::path::PathBuf;

use lightpod_harness::cri::CriClient;

use super::{Containerd, CRI_NAMESPACE};

/// The host-side traces of one pod: its network namespace, the host end of its veth, its
/// containers. Take it while the pod runs, check it after the pod was removed.
#[derive(Debug, Clone)]
pub struct PodFootprint {
    /// The pod sandbox id.
    pub pod_id: String,
    /// Container ids of the pod (the sandbox's own container excluded).
    pub container_ids: Vec<String>,
    /// The pod's IP address.
    pub pod_ip: String,
    /// The network namespace the CRI plugin created for the pod.
    pub netns: Option<PathBuf>,
    /// Host-side interfaces CNI created for the pod (the veth end on the bridge).
    pub host_interfaces: Vec<String>,
}

impl PodFootprint {
    /// Records the footprint of the running pod `pod_id` from its verbose PodSandboxStatus.
    pub fn record(cri: &mut CriClient, containerd: &Containerd, pod_id: &str) -> PodFootprint {
        let status = cri.pod_sandbox_status(pod_id).expect("PodSandboxStatus");
        let pod_ip = status
            .status
            .as_ref()
            .and_then(|s| s.network.as_ref())
            .map(|n| n.ip.clone())
            .unwrap_or_default();
        // containerd puts its own view of the sandbox, as JSON, under the key "info".
        let info: serde_json::Value = status
            .info
            .get("info")
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default();
        let netns = netns_path(&info);
        let host_interfaces = info["cniResult"]["Interfaces"]
            .as_object()
            .map(|interfaces| {
                interfaces
                    .iter()
                    .filter(|(name, details)| {
                        details["Sandbox"].as_str().unwrap_or_default().is_empty()
                            && name.as_str() != containerd.bridge()
                    })
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let container_ids = cri
            .list_containers(Some(pod_id))
            .expect("ListContainers")
            .into_iter()
            .map(|c| c.id)
            .collect();
        PodFootprint {
            pod_id: pod_id.into(),
            container_ids,
            pod_ip,
            netns,
            host_interfaces,
        }
    }

    /// What of the pod is still there: tasks, containers, processes, mounts, network
    /// namespace, host interfaces. Empty when the pod is completely gone.
    pub fn leftovers(&self, containerd: &Containerd) -> Vec<String> {
        let mut left = Vec::new();
        let ids: Vec<&str> = std::iter::once(self.pod_id.as_str())
            .chain(self.container_ids.iter().map(String::as_str))
            .collect();
        let tasks = containerd.tasks(CRI_NAMESPACE);
        let containers = containerd.containers(CRI_NAMESPACE);
        for id in &ids {
            if tasks.iter().any(|t| t.id == *id) {
                left.push(format!("task {id}"));
            }
            if containers.iter().any(|c| c == id) {
                left.push(format!("container {id}"));
            }
            for process in crate::leaks::processes_mentioning(id) {
                left.push(format!("process {process}"));
            }
            for mount in mounts_mentioning(id) {
                left.push(format!("mount {mount}"));
            }
        }
        if let Some(netns) = &self.netns {
            if netns.exists() {
                left.push(format!("network namespace {}", netns.display()));
            }
        }
        for interface in &self.host_interfaces {
            if PathBuf::from("/sys/class/net").join(interface).exists() {
                left.push(format!("interface {interface}"));
            }
        }
        left
    }

    /// Fails the test if anything of the pod is left (see [`PodFootprint::leftovers`]).
    pub fn assert_gone(&self, containerd: &Containerd) {
        let left = self.leftovers(containerd);
        assert!(
            left.is_empty(),
            "pod {} left behind: {left:#?}",
            self.pod_id
        );
    }
}

/// The pod's network namespace: where CNI put the pod's interfaces, else the network
/// namespace of the sandbox's OCI spec.
fn netns_path(info: &serde_json::Value) -> Option<PathBuf> {
    let from_cni = info["cniResult"]["Interfaces"]
        .as_object()
        .and_then(|interfaces| {
            interfaces
                .values()
                .find_map(|i| i["Sandbox"].as_str().filter(|s| !s.is_empty()))
        });
    let from_spec = || {
        info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .and_then(|namespaces| {
                namespaces
                    .iter()
                    .find(|n| n["type"] == "network")
                    .and_then(|n| n["path"].as_str())
                    .filter(|p| !p.is_empty())
            })
    };
    from_cni.or_else(from_spec).map(PathBuf::from)
}

/// Lines of /proc/self/mountinfo whose source or mount point mentions `needle`.
pub fn mounts_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(needle))
        .map(str::to_string)
        .collect()
}
