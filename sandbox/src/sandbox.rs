//! A sandbox: one guest VM, the agent inside it, and the containers it runs.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use lightpod_proto::agent as pb;
use lightpod_vmm::{BootTimings, Hypervisor, NetDevice, SharedDir, Vm, VmExit, VmSpec};
use tokio::sync::Mutex;

use crate::{
    agent::AgentClient,
    agent_request,
    config::{Config, VmConfig},
    error::{chain, AgentCallError, SandboxError},
    guest,
    network::{self, forward::PortForwarder, NetworkAttachment, PodNetwork},
    rootfs_image::RootfsImages,
    share::{ContainerMounts, HostMounts, KernelMounts, ShareLayout, GUEST_SHARE_DIR, SHARE_TAG},
    spec::{ContainerSpec, ProcessSpec, ResourceSpec},
};

/// What a new sandbox needs beyond the configuration.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// Sandbox id; names its state directory.
    pub id: String,
    /// Size and boot parameters of the VM (the configuration with annotations applied).
    pub vm: VmConfig,
    /// The pod's network namespace, as CNI set it up; its interfaces are carried into the
    /// guest ([`crate::network`]). `None`: the guest has loopback only.
    pub network_namespace: Option<PathBuf>,
}

/// Where the time of a sandbox start went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StartTimings {
    /// Guest image resolved (built or found in the cache).
    pub image_ready: Duration,
    /// The VM creation began (image resolved, pod network attached), from the start.
    pub vm_start: Duration,
    /// The backend's own phases, from the start of the VM creation ([`Self::vm_start`]).
    pub vm: BootTimings,
    /// The VM was created (VMM running, guest started), from the start.
    pub vm_created: Duration,
    /// The agent answered its first call, from the start.
    pub agent_ready: Duration,
    /// Guest uptime when the agent's main() began.
    pub guest_agent_start: Duration,
    /// Guest uptime when the agent began serving.
    pub guest_agent_ready: Duration,
    /// The shared directory was mounted in the guest: the sandbox is ready.
    pub total: Duration,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Exit code, or 128 + signal number when a signal killed it (the shell's convention,
    /// which containerd reports too).
    pub code: u32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// Guest wall-clock time of the exit.
    pub exited_at: std::time::SystemTime,
    /// The OOM killer killed it.
    pub oom_killed: bool,
}

impl From<&pb::ProcessExit> for ExitStatus {
    fn from(exit: &pb::ProcessExit) -> ExitStatus {
        let signal = (exit.signal != 0).then_some(exit.signal);
        ExitStatus {
            code: match signal {
                Some(sig) => 128 + sig as u32,
                None => exit.exit_code as u32,
            },
            signal,
            exited_at: std::time::UNIX_EPOCH + Duration::from_nanos(exit.exited_at_ns),
            oom_killed: exit.oom_killed,
        }
    }
}

/// What is ready before the VM is created.
struct Prepared {
    image: lightpod_vmm::guest::GuestImage,
    image_ready: Duration,
    /// The backend shares directories; else root filesystems go in as disk images.
    shares: bool,
    net_devices: Vec<NetDevice>,
    pod_network: Option<PodNetwork>,
}

/// One running pod VM.
pub struct Sandbox {
    id: String,
    dir: PathBuf,
    share: ShareLayout,
    vm: Arc<dyn Vm>,
    agent: AgentClient,
    guest: pb::GuestInfo,
    timings: StartTimings,
    stop_grace: Duration,
    mounts: Arc<dyn HostMounts>,
    containers: Mutex<HashMap<String, ContainerMounts>>,
    /// The pod network carried into the guest, and its port forwarder.
    network: Mutex<Option<(NetworkAttachment, PortForwarder)>>,
    /// Root filesystem images, when the backend cannot share directories.
    images: Option<RootfsImages>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("id", &self.id)
            .field("dir", &self.dir)
            .finish()
    }
}

/// Directory of a sandbox's state under the configured state directory (long ids are cut,
/// see [`crate::task::layout`]).
pub fn sandbox_dir(config: &Config, id: &str) -> PathBuf {
    config
        .runtime
        .state_dir
        .join("sandboxes")
        .join(crate::task::layout::dir_name(id))
}

impl Sandbox {
    /// Boots a sandbox's VM and connects to its agent. On error nothing is left behind.
    ///
    /// # Errors
    ///
    /// The guest image, the VM or the agent failed; the error says which.
    pub async fn start(
        config: &Config,
        hypervisor: &dyn Hypervisor,
        spec: SandboxSpec,
    ) -> Result<Sandbox, SandboxError> {
        let started = Instant::now();
        let dir = sandbox_dir(config, &spec.id);
        let share = ShareLayout::new(dir.join("shared"));
        if dir.exists() {
            return Err(SandboxError::Io {
                context: format!("sandbox {} already has state at {}", spec.id, dir.display()),
                source: std::io::ErrorKind::AlreadyExists.into(),
            });
        }
        std::fs::create_dir_all(share.host_root()).map_err(|source| SandboxError::Io {
            context: format!("create {}", share.host_root().display()),
            source,
        })?;

        match Sandbox::boot(config, hypervisor, &spec, &dir, share.clone(), started).await {
            Ok(sandbox) => Ok(sandbox),
            Err(e) => {
                remove_dir(&dir);
                Err(e)
            }
        }
    }

    async fn boot(
        config: &Config,
        hypervisor: &dyn Hypervisor,
        spec: &SandboxSpec,
        dir: &Path,
        share: ShareLayout,
        started: Instant,
    ) -> Result<Sandbox, SandboxError> {
        let image = guest::resolve(&config.guest).await?;
        let image_ready = started.elapsed();
        // Without shared directories, root filesystems go in as disk images (rootfs_image).
        let shares = hypervisor.shares_directories();

        let (pod_network, taps, attachment) = match &spec.network_namespace {
            Some(netns) => {
                let (found, taps, attachment) = network::attach(netns.clone()).await?;
                (Some(found), taps, Some(attachment))
            }
            None => (None, Vec::new(), None),
        };
        let net_devices = taps
            .into_iter()
            .map(|tap| NetDevice {
                tap_name: tap.tap_name,
                tap_fd: Some(tap.fd),
                mac: tap.interface.mac,
                mtu: tap.interface.mtu,
            })
            .collect();
        let prepared = Prepared {
            image,
            image_ready,
            shares,
            net_devices,
            pod_network,
        };
        let booted =
            Sandbox::boot_vm(config, hypervisor, spec, dir, share, started, prepared).await;
        match (booted, attachment) {
            (Ok(sandbox), None) => Ok(sandbox),
            (Ok(sandbox), Some(attachment)) => sandbox.forward_ports(attachment).await,
            (Err(e), attachment) => {
                if let Some(attachment) = attachment {
                    attachment.detach().await;
                }
                Err(e)
            }
        }
    }

    async fn boot_vm(
        config: &Config,
        hypervisor: &dyn Hypervisor,
        spec: &SandboxSpec,
        dir: &Path,
        share: ShareLayout,
        started: Instant,
        prepared: Prepared,
    ) -> Result<Sandbox, SandboxError> {
        let Prepared {
            image,
            image_ready,
            shares,
            net_devices,
            pod_network,
        } = prepared;
        let vm_spec = VmSpec {
            id: spec.id.clone(),
            state_dir: dir.join("vm"),
            vcpus: spec.vm.vcpus,
            memory_mib: spec.vm.memory_mib,
            kernel: image.kernel.clone(),
            initrd: image.initrd.clone(),
            kernel_params: spec.vm.kernel_params.clone(),
            shared_dirs: shares
                .then(|| SharedDir {
                    tag: SHARE_TAG.to_string(),
                    host_path: share.host_root().to_path_buf(),
                    readonly: false,
                })
                .into_iter()
                .collect(),
            net_devices,
            block_devices: Vec::new(),
            boot_timeout: spec.vm.boot_timeout(),
        };
        let vm_start = started.elapsed();
        let vm: Arc<dyn Vm> = Arc::from(hypervisor.create(vm_spec).await?);
        let vm_created = started.elapsed();

        match Sandbox::connect(
            vm.clone(),
            spec.vm.boot_timeout(),
            shares,
            pod_network.as_ref(),
        )
        .await
        {
            Ok((agent, guest, agent_answered)) => {
                let images = (!shares).then(|| RootfsImages::new(dir.join("images"), vm.clone()));
                let timings = StartTimings {
                    image_ready,
                    vm_start,
                    vm: vm.timings(),
                    vm_created,
                    agent_ready: agent_answered.duration_since(started),
                    guest_agent_start: Duration::from_nanos(guest.agent_start_ns),
                    guest_agent_ready: Duration::from_nanos(guest.agent_ready_ns),
                    total: started.elapsed(),
                };
                log_ready(&spec.id, &guest.kernel_release, &timings);
                Ok(Sandbox {
                    id: spec.id.clone(),
                    dir: dir.to_path_buf(),
                    share,
                    vm,
                    agent,
                    guest,
                    timings,
                    stop_grace: Duration::from_secs(config.runtime.stop_grace_secs),
                    mounts: Arc::new(KernelMounts),
                    containers: Mutex::new(HashMap::new()),
                    network: Mutex::new(None),
                    images,
                })
            }
            Err(e) => {
                if let Err(stop) = vm.stop(Duration::ZERO).await {
                    tracing::warn!(sandbox = %spec.id, error = %chain(&stop), "stop after failed boot");
                }
                Err(e)
            }
        }
    }

    async fn connect(
        vm: Arc<dyn Vm>,
        boot_timeout: Duration,
        shares: bool,
        pod_network: Option<&PodNetwork>,
    ) -> Result<(AgentClient, pb::GuestInfo, Instant), SandboxError> {
        let agent = AgentClient::new(vm.connect_agent().await?);

        // The first call waits for the guest to boot; a VM that dies meanwhile ends the wait.
        let info = tokio::select! {
            info = agent.guest_info_within(boot_timeout) => info,
            exit = vm.wait() => return Err(SandboxError::Vm(lightpod_vmm::VmError::VmmExited {
                status: format!("{exit:?}"),
                log: String::from("see the guest console log"),
            })),
        };
        let info = match info {
            Err(SandboxError::Agent {
                source: AgentCallError::Timeout(_),
                ..
            }) => return Err(SandboxError::AgentTimeout(boot_timeout)),
            other => other?,
        };
        let answered = Instant::now();
        if info.api_version != lightpod_proto::API_VERSION {
            return Err(SandboxError::AgentVersion {
                found: info.api_version,
                expected: lightpod_proto::API_VERSION,
            });
        }

        if shares {
            let mut share = pb::MountStorageRequest::new();
            share.driver = "virtiofs".into();
            share.source = SHARE_TAG.into();
            share.mount_point = GUEST_SHARE_DIR.into();
            agent.mount_storage(&share).await?;
        }
        if let Some(pod_network) = pod_network {
            agent.configure_network(&pod_network.to_request()).await?;
        }
        Ok((agent, info, answered))
    }

    /// Starts the port forwarder of a booted sandbox and keeps its network attachment; on
    /// error stops the sandbox.
    async fn forward_ports(self, attachment: NetworkAttachment) -> Result<Sandbox, SandboxError> {
        match PortForwarder::start(attachment.netns(), self.agent.clone(), &self.id).await {
            Ok(forwarder) => {
                *self.network.lock().await = Some((attachment, forwarder));
                Ok(self)
            }
            Err(e) => {
                if let Err(stop) = self.stop().await {
                    tracing::warn!(sandbox = %self.id, error = %chain(&stop),
                        "stop after a failed network set-up");
                }
                attachment.detach().await;
                Err(e.into())
            }
        }
    }

    /// The sandbox id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The agent client, for stdio copying and calls front ends make directly.
    pub fn agent(&self) -> &AgentClient {
        &self.agent
    }

    /// What the guest reported about itself at boot.
    pub fn guest_info(&self) -> &pb::GuestInfo {
        &self.guest
    }

    /// Where the start time went.
    pub fn timings(&self) -> &StartTimings {
        &self.timings
    }

    /// Host pids of the VM's processes (VMM and helpers).
    pub fn host_pids(&self) -> Vec<u32> {
        self.vm.host_pids()
    }

    /// Waits until the VM has stopped, for whatever reason.
    pub async fn wait_vm(&self) -> VmExit {
        self.vm.wait().await
    }

    /// Creates a container in the guest from its spec: shares its root filesystem and
    /// host-path volumes, then asks the agent to prepare it. On error nothing is left.
    ///
    /// # Errors
    ///
    /// The id is taken, a mount failed, or the agent refused the container.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<(), SandboxError> {
        let mut containers = self.containers.lock().await;
        if containers.contains_key(&spec.id) {
            return Err(SandboxError::ContainerExists(spec.id.clone()));
        }
        let mut mounts = ContainerMounts::default();
        match self.share_and_create(spec, &mut mounts).await {
            Ok(()) => {
                containers.insert(spec.id.clone(), mounts);
                tracing::debug!(sandbox = %self.id, container = %spec.id, "container created");
                Ok(())
            }
            Err(e) => {
                if let Err(release) = mounts.release(self.mounts.as_ref()) {
                    tracing::warn!(sandbox = %self.id, container = %spec.id,
                        error = %chain(&release), "release mounts after failed create");
                }
                remove_dir(&self.share.container_dir(&spec.id));
                Err(e)
            }
        }
    }

    async fn share_and_create(
        &self,
        spec: &ContainerSpec,
        mounts: &mut ContainerMounts,
    ) -> Result<(), SandboxError> {
        if let Some(images) = &self.images {
            return images
                .create_container(&self.agent, &self.share, spec)
                .await;
        }
        let host = self.mounts.as_ref();
        // Shared writable even for a read-only rootfs: the agent creates the mount points
        // of the container's mounts (`/etc/resolv.conf` in a pause image) first and makes
        // the root read-only last, as runc does.
        mounts.bind(host, &spec.rootfs, &self.share.rootfs(&spec.id), false)?;
        for (index, mount) in spec.mounts.iter().enumerate() {
            if let crate::spec::MountSource::Host(source) = &mount.source {
                let readonly = mount.options.iter().any(|o| o == "ro");
                mounts.bind(host, source, &self.share.volume(&spec.id, index), readonly)?;
            }
        }
        let req = agent_request::create_container(spec, &self.share);
        self.agent.create_container(&req).await.map(|_| ())
    }

    /// Starts a container's init process (`exec_id` empty, `process` ignored) or an extra
    /// process in it. Returns the guest pid.
    ///
    /// # Errors
    ///
    /// The container is unknown or the agent could not start the process.
    pub async fn start_process(
        &self,
        container_id: &str,
        exec_id: &str,
        process: Option<&ProcessSpec>,
    ) -> Result<u32, SandboxError> {
        let mut req = pb::StartProcessRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        if let Some(process) = process {
            req.process = protobuf::MessageField::some(agent_request::process(process));
        }
        Ok(self.agent.start_process(&req).await?.pid)
    }

    /// Sends `signal` to a process, or to every process of the container when `all`.
    ///
    /// # Errors
    ///
    /// The agent refused (unknown process, process gone).
    pub async fn signal(
        &self,
        container_id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), SandboxError> {
        let mut req = pb::SignalProcessRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.signal = signal;
        req.all = all;
        self.agent.signal_process(&req).await.map(|_| ())
    }

    /// Waits for a process to exit.
    ///
    /// # Errors
    ///
    /// The process is unknown, or the channel broke (the VM died).
    pub async fn wait(
        &self,
        container_id: &str,
        exec_id: &str,
    ) -> Result<ExitStatus, SandboxError> {
        let mut req = pb::ProcessRef::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        Ok(ExitStatus::from(&self.agent.wait_process(&req).await?))
    }

    /// Applies new cgroup limits to a running container.
    ///
    /// # Errors
    ///
    /// The agent refused.
    pub async fn update(
        &self,
        container_id: &str,
        resources: &ResourceSpec,
    ) -> Result<(), SandboxError> {
        let mut req = pb::UpdateContainerRequest::new();
        req.container_id = container_id.to_string();
        req.resources = protobuf::MessageField::some(agent_request::resources(resources));
        self.agent.update_container(&req).await.map(|_| ())
    }

    /// Removes a container: tears it down in the guest and releases its host mounts.
    /// A container the guest no longer knows is still released on the host.
    ///
    /// # Errors
    ///
    /// The container is unknown to the sandbox, or a step failed (all steps are tried).
    pub async fn remove_container(&self, container_id: &str) -> Result<(), SandboxError> {
        self.remove_container_parts(container_id, true).await
    }

    /// Removes a container; `detach` says whether its disk image, if any, is detached from
    /// the VM first (not when the VM is about to go, which releases it anyway).
    async fn remove_container_parts(
        &self,
        container_id: &str,
        detach: bool,
    ) -> Result<(), SandboxError> {
        let mut mounts = self
            .containers
            .lock()
            .await
            .remove(container_id)
            .ok_or_else(|| SandboxError::ContainerNotFound(container_id.to_string()))?;
        let mut req = pb::ContainerRef::new();
        req.container_id = container_id.to_string();
        let in_guest = match self.agent.remove_container(&req).await {
            Err(SandboxError::Agent {
                source: AgentCallError::Transport(_),
                ..
            }) => Ok(()),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(()),
            other => other.map(|_| ()),
        };
        let on_host = mounts.release(self.mounts.as_ref());
        remove_dir(&self.share.container_dir(container_id));
        let image = match &self.images {
            Some(images) if in_guest.is_ok() => images.release(container_id, detach).await,
            // The guest may still use the disk; it goes with the VM.
            Some(images) => images.release(container_id, false).await,
            None => Ok(()),
        };
        in_guest.and(on_host).and(image)
    }

    /// Stops the sandbox: removes its containers, powers the guest off (killing it after the
    /// grace period) and removes every host resource. Safe to call more than once.
    ///
    /// # Errors
    ///
    /// Stopping the VM failed; host state was removed as far as possible.
    pub async fn stop(&self) -> Result<VmExit, SandboxError> {
        let ids: Vec<String> = self.containers.lock().await.keys().cloned().collect();
        for id in ids {
            if let Err(e) = self.remove_container_parts(&id, false).await {
                tracing::warn!(sandbox = %self.id, container = %id, error = %chain(&e),
                    "remove container while stopping the sandbox");
            }
        }
        if let Err(e) = self.agent.shutdown(Duration::from_secs(2)).await {
            tracing::debug!(sandbox = %self.id, error = %chain(&e), "agent shutdown call");
        }
        let exit = self.vm.stop(self.stop_grace).await;
        if let Some((attachment, forwarder)) = self.network.lock().await.take() {
            forwarder.stop(attachment.netns()).await;
            attachment.detach().await;
        }
        remove_dir(&self.dir);
        Ok(exit?)
    }
}

/// Logs where the time of a sandbox start went, every phase in ms from the start of
/// [`Sandbox::start`] on the host clock except the two guest uptimes (`*_guest_ms`); the
/// benchmarks read these fields from containerd's log.
fn log_ready(id: &str, kernel: &str, timings: &StartTimings) {
    let ms = |d: Duration| d.as_millis() as u64;
    let vm_phase = |d: Option<Duration>| d.map(|d| ms(timings.vm_start + d));
    tracing::info!(
        sandbox = %id,
        kernel = %kernel,
        accelerator = timings.vm.accelerator.map(tracing::field::display),
        image_ready_ms = ms(timings.image_ready),
        vm_start_ms = ms(timings.vm_start),
        vmm_spawned_ms = vm_phase(timings.vm.vmm_spawned),
        vmm_ready_ms = vm_phase(timings.vm.vmm_ready),
        guest_started_ms = vm_phase(timings.vm.guest_started),
        vm_created_ms = ms(timings.vm_created),
        agent_start_guest_ms = ms(timings.guest_agent_start),
        agent_ready_guest_ms = ms(timings.guest_agent_ready),
        agent_ready_ms = ms(timings.agent_ready),
        total_ms = ms(timings.total),
        "sandbox ready"
    );
}

/// Removes a state directory, never while something is still mounted below it.
fn remove_dir(dir: &Path) {
    let _ = crate::cleanup::remove_state_dir(dir);
}
