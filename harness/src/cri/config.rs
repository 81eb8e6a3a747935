//! Builders of the CRI configs kubelet would send: a pod sandbox and a container.

use std::{
    path::Path,
    sync::atomic::{AtomicU32, Ordering},
};

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, DnsConfig, ImageSpec, KeyValue, LinuxContainerResources,
    LinuxPodSandboxConfig, Mount, MountPropagation, PodSandboxConfig, PodSandboxMetadata,
    PortMapping, Protocol,
};

/// The Kubernetes namespace pods claim to be in unless [`PodSandboxConfigBuilder::namespace`]
/// says otherwise.
pub const DEFAULT_POD_NAMESPACE: &str = "lightpod-e2e";

/// A [`PodSandboxConfig`] under construction. Every pod gets a unique uid, so two pods of the
/// same name (two tests, two runs) never collide in containerd's name index.
#[derive(Debug, Clone)]
pub struct PodSandboxConfigBuilder {
    config: PodSandboxConfig,
}

impl PodSandboxConfigBuilder {
    /// A pod named `name` in [`DEFAULT_POD_NAMESPACE`], hostname `name`, with a fresh uid.
    pub fn new(name: &str) -> PodSandboxConfigBuilder {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let uid = format!(
            "{name}-{}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            unique_suffix()
        );
        let config = PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name: name.into(),
                uid,
                namespace: DEFAULT_POD_NAMESPACE.into(),
                attempt: 0,
            }),
            hostname: name.into(),
            linux: Some(LinuxPodSandboxConfig::default()),
            ..Default::default()
        };
        PodSandboxConfigBuilder { config }
    }

    /// Sets the pod uid (Kubernetes' metadata.uid).
    pub fn uid(mut self, uid: &str) -> Self {
        self.metadata().uid = uid.into();
        self
    }

    /// Sets the Kubernetes namespace.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.metadata().namespace = namespace.into();
        self
    }

    /// Sets the hostname.
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.config.hostname = hostname.into();
        self
    }

    /// Sets the directory container log paths are relative to.
    pub fn log_directory(mut self, dir: &Path) -> Self {
        self.config.log_directory = dir.display().to_string();
        self
    }

    /// Sets the DNS servers and search domains of the pod's resolv.conf.
    pub fn dns(mut self, servers: &[&str], searches: &[&str]) -> Self {
        self.config.dns_config = Some(DnsConfig {
            servers: servers.iter().map(|s| s.to_string()).collect(),
            searches: searches.iter().map(|s| s.to_string()).collect(),
            options: Vec::new(),
        });
        self
    }

    /// Adds a TCP port mapping: `host_port` on the host to `container_port` in the pod.
    pub fn port_mapping(mut self, container_port: u16, host_port: u16) -> Self {
        self.config.port_mappings.push(PortMapping {
            protocol: Protocol::Tcp.into(),
            container_port: container_port.into(),
            host_port: host_port.into(),
            host_ip: String::new(),
        });
        self
    }

    /// Adds an annotation (those under `lightpod.io/` reach the lightpod shim).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the pod's cgroup parent.
    pub fn cgroup_parent(mut self, parent: &str) -> Self {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .cgroup_parent = parent.into();
        self
    }

    /// Sets the pod's summed container limits, as kubelet sends them
    /// (`LinuxPodSandboxConfig.resources`); containerd annotates the sandbox with them.
    pub fn resources(mut self, resources: LinuxContainerResources) -> Self {
        self.config
            .linux
            .get_or_insert_with(Default::default)
            .resources = Some(resources);
        self
    }

    /// The finished config.
    pub fn build(self) -> PodSandboxConfig {
        self.config
    }

    fn metadata(&mut self) -> &mut PodSandboxMetadata {
        self.config.metadata.get_or_insert_with(Default::default)
    }
}

/// A [`ContainerConfig`] under construction.
#[derive(Debug, Clone)]
pub struct ContainerConfigBuilder {
    config: ContainerConfig,
}

impl ContainerConfigBuilder {
    /// A container named `name` running `image` (a name the CRI plugin resolves, such as
    /// [`crate::image::BUSYBOX_IMAGE`]), logging to `<name>.log` in the pod's log directory.
    pub fn new(name: &str, image: &str) -> ContainerConfigBuilder {
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            log_path: format!("{name}.log"),
            ..Default::default()
        };
        ContainerConfigBuilder { config }
    }

    /// Sets the command (the image's entrypoint is replaced).
    pub fn command(mut self, command: &[&str]) -> Self {
        self.config.command = command.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets the arguments (the image's cmd is replaced).
    pub fn args(mut self, args: &[&str]) -> Self {
        self.config.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.config.envs.push(KeyValue {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: &str) -> Self {
        self.config.working_dir = dir.into();
        self
    }

    /// Adds a bind mount of `host_path` at `container_path` (private propagation).
    pub fn mount(self, host_path: &Path, container_path: &str, readonly: bool) -> Self {
        self.mount_with_propagation(
            host_path,
            container_path,
            readonly,
            MountPropagation::PropagationPrivate,
        )
    }

    /// Adds a bind mount with the given propagation.
    pub fn mount_with_propagation(
        mut self,
        host_path: &Path,
        container_path: &str,
        readonly: bool,
        propagation: MountPropagation,
    ) -> Self {
        self.config.mounts.push(Mount {
            container_path: container_path.into(),
            host_path: host_path.display().to_string(),
            readonly,
            propagation: propagation.into(),
            ..Default::default()
        });
        self
    }

    /// Sets the log path, relative to the pod's log directory.
    pub fn log_path(mut self, path: &str) -> Self {
        self.config.log_path = path.into();
        self
    }

    /// Allocates a terminal.
    pub fn tty(mut self, tty: bool) -> Self {
        self.config.tty = tty;
        self
    }

    /// Keeps stdin open; with `once`, it closes after the first attach ends.
    pub fn stdin(mut self, stdin: bool, once: bool) -> Self {
        self.config.stdin = stdin;
        self.config.stdin_once = once;
        self
    }

    /// Adds an annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.config.annotations.insert(key.into(), value.into());
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// The finished config.
    pub fn build(self) -> ContainerConfig {
        self.config
    }
}

/// Nanoseconds of the wall clock: tells apart pods of two runs that share a pid.
fn unique_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pods_get_distinct_uids_and_keep_what_was_set() {
        let a = PodSandboxConfigBuilder::new("web").build();
        let b = PodSandboxConfigBuilder::new("web")
            .namespace("other")
            .port_mapping(8080, 18080)
            .dns(&["10.0.0.10"], &["svc.local"])
            .annotation("lightpod.io/vcpus", "1")
            .build();
        let (ma, mb) = (a.metadata.unwrap(), b.metadata.clone().unwrap());
        assert_ne!(ma.uid, mb.uid, "uids must differ");
        assert_eq!(mb.namespace, "other");
        assert_eq!(b.port_mappings[0].container_port, 8080);
        assert_eq!(b.port_mappings[0].host_port, 18080);
        assert_eq!(b.dns_config.unwrap().servers, ["10.0.0.10"]);
        assert_eq!(b.annotations["lightpod.io/vcpus"], "1");
    }

    #[test]
    fn containers_log_to_their_name_by_default() {
        let c = ContainerConfigBuilder::new("app", "img")
            .command(&["sh", "-c"])
            .args(&["echo hi"])
            .env("A", "1")
            .mount(Path::new("/srv"), "/data", true)
            .build();
        assert_eq!(c.log_path, "app.log");
        assert_eq!(c.image.unwrap().image, "img");
        assert_eq!(c.command, ["sh", "-c"]);
        assert_eq!(c.envs[0].key, "A");
        assert!(c.mounts[0].readonly);
        assert_eq!(c.mounts[0].host_path, "/srv");
    }
}
