//! Creating a task: read and check its bundle, mount its root filesystem, boot its pod's VM
//! when it is the first task of the pod, and prepare the container in the guest.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use oci_spec::runtime::Spec;

use super::{
    layout, monitor,
    process::Process,
    role::PodRole,
    rootfs::{self, RootfsMount},
    stdio::{open_notice, open_output, StdioPaths},
    task_pid, Pod, Task, TaskError, TaskEvent, TaskRegistry,
};
use crate::{
    error::chain,
    sandbox::{Sandbox, SandboxSpec},
    spec::{validate_id, ContainerSpec},
};

/// A request to create a task, as a front end received it.
#[derive(Debug, Clone)]
pub struct CreateTask {
    /// Task (container) id, unique in the registry's namespace.
    pub id: String,
    /// OCI bundle directory holding `config.json`.
    pub bundle: PathBuf,
    /// The root filesystem as mounts to make on `<bundle>/rootfs`; empty when the bundle's
    /// rootfs is already in place.
    pub rootfs: Vec<RootfsMount>,
    /// The init process's stdio.
    pub stdio: StdioPaths,
    /// A configuration file for the pod this task starts, instead of the registry's: the
    /// `ConfigPath` of containerd's runtime options, one file per RuntimeClass handler
    /// (`lightpod-xen` selects the Xen backend this way). Ignored for tasks that join a pod.
    pub config_path: Option<PathBuf>,
}

/// What create checked before touching anything.
struct Checked {
    role: PodRole,
    annotations: HashMap<String, String>,
    container: ContainerSpec,
}

impl TaskRegistry {
    /// Creates a task. Its first process is prepared, not started. Returns the task's pid.
    /// On error nothing of the task is left: no mount, no VM, no guest container.
    ///
    /// # Errors
    ///
    /// The id is taken or malformed, the bundle's spec or annotations are invalid, the pod
    /// it names is not running here, a stdio path cannot be opened, or the VM, the mount or
    /// the guest failed.
    pub async fn create(&self, req: CreateTask) -> Result<u32, TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        let checked = self.check(&req)?;
        let output = open_output(&req.stdio)?;
        let pod_id = checked.role.pod_id(&req.id).to_string();

        let rootfs_dir = layout::rootfs_dir(&req.bundle);
        let rootfs_mount = if req.rootfs.is_empty() {
            None
        } else {
            rootfs::mount_rootfs(&req.rootfs, &rootfs_dir)?;
            Some(rootfs_dir.clone())
        };
        let unmount = |mounted: &Option<PathBuf>| {
            if let Some(dir) = mounted {
                rootfs::unmount_rootfs(dir, req.rootfs.len());
            }
        };

        let config_path = req.config_path.as_deref();
        let (sandbox, new_pod) = match self.pod_sandbox(&checked, &pod_id, config_path).await {
            Ok(found) => found,
            Err(e) => {
                unmount(&rootfs_mount);
                return Err(e);
            }
        };
        if let Err(e) = sandbox.create_container(&checked.container).await {
            if new_pod {
                stop_quietly(&sandbox).await;
            }
            unmount(&rootfs_mount);
            return Err(e.into());
        }

        let pid = task_pid(&sandbox);
        let mut init = Process::new(None, req.stdio.clone(), pid);
        init.output = Some(output);
        init.notice = open_notice(&req.stdio);
        let task = Task {
            pod_id: pod_id.clone(),
            role: checked.role,
            bundle: req.bundle.clone(),
            rootfs_mount,
            init,
            execs: HashMap::new(),
            paused: false,
            oom_reported: false,
        };
        let mut table = self.table();
        if new_pod {
            let monitors = monitor::spawn_pod_monitors(self, &pod_id, &sandbox);
            table.pods.insert(
                pod_id.clone(),
                Pod {
                    sandbox: sandbox.clone(),
                    tasks: Default::default(),
                    dead: None,
                    monitors,
                },
            );
        }
        if let Some(pod) = table.pods.get_mut(&pod_id) {
            pod.tasks.insert(req.id.clone());
        }
        table.tasks.insert(req.id.clone(), task);
        tracing::info!(sandbox = %pod_id, container = %req.id, new_vm = new_pod, "task created");
        self.emit(
            &table,
            TaskEvent::Created {
                id: req.id,
                bundle: req.bundle,
                stdio: req.stdio,
                pid,
            },
        );
        Ok(pid)
    }

    /// Validates the request and its bundle; touches nothing.
    fn check(&self, req: &CreateTask) -> Result<Checked, TaskError> {
        validate_id(&req.id).map_err(|e| TaskError::InvalidRequest(format!("task id: {e}")))?;
        if self.table().tasks.contains_key(&req.id) {
            return Err(TaskError::AlreadyExists(format!("task {}", req.id)));
        }
        let config_json = req.bundle.join("config.json");
        let spec = Spec::load(&config_json).map_err(|e| {
            TaskError::InvalidRequest(format!("read the OCI spec {}: {e}", config_json.display()))
        })?;
        let annotations = spec.annotations().clone().unwrap_or_default();
        let role = PodRole::from_annotations(&annotations).map_err(TaskError::InvalidRequest)?;
        let mut container =
            ContainerSpec::from_oci(&req.id, &spec, Some(layout::rootfs_dir(&req.bundle)))
                .map_err(crate::SandboxError::Spec)?;
        container.process.stdin = req.stdio.stdin.is_some();
        if let PodRole::PodContainer { sandbox_id } = &role {
            container.pod_sandbox_id = Some(sandbox_id.clone());
        }
        if role.starts_vm() {
            // Checked here so a bad annotation fails before any mount or VM.
            self.shared
                .config
                .vm
                .with_annotations(&annotations)
                .map_err(crate::SandboxError::from)?;
        }
        Ok(Checked {
            role,
            annotations,
            container,
        })
    }

    /// The sandbox the task runs in: a new VM for a task that starts its pod, else the
    /// running VM of the pod it names. The flag says whether the VM is new.
    async fn pod_sandbox(
        &self,
        checked: &Checked,
        pod_id: &str,
        config_path: Option<&Path>,
    ) -> Result<(Arc<Sandbox>, bool), TaskError> {
        if let PodRole::PodContainer { sandbox_id } = &checked.role {
            let table = self.table();
            return match table.pods.get(sandbox_id) {
                None => Err(TaskError::SandboxNotFound {
                    id: checked.container.id.clone(),
                    sandbox: sandbox_id.clone(),
                }),
                Some(_) => Ok((table.live_sandbox(sandbox_id)?, false)),
            };
        }
        if self.table().pods.contains_key(pod_id) {
            return Err(TaskError::AlreadyExists(format!("pod sandbox {pod_id}")));
        }
        let (own_config, hypervisor) = match config_path {
            Some(path) => {
                let loaded = crate::Config::load(Some(path)).map_err(crate::SandboxError::from)?;
                let config = layout::namespace_config(&loaded, &self.shared.namespace);
                let hypervisor: Arc<dyn lightpod_vmm::Hypervisor> =
                    Arc::from(crate::backend::hypervisor(&config)?);
                tracing::info!(sandbox = %pod_id, config = %path.display(),
                    backend = %config.runtime.backend, "pod configuration from the runtime options");
                (Some(config), hypervisor)
            }
            None => (None, self.hypervisor().await?),
        };
        let config = own_config.as_ref().unwrap_or(&self.shared.config);
        let vm = config
            .vm
            .with_annotations(&checked.annotations)
            .map_err(crate::SandboxError::from)?;
        let spec = SandboxSpec {
            id: pod_id.to_string(),
            vm,
            network_namespace: checked.container.network_namespace.clone(),
        };
        let sandbox = Sandbox::start(config, hypervisor.as_ref(), spec).await?;
        Ok((Arc::new(sandbox), true))
    }
}

/// Stops a VM on an error path, logging what fails: the caller reports the first error.
pub(super) async fn stop_quietly(sandbox: &Sandbox) {
    if let Err(e) = sandbox.stop().await {
        tracing::warn!(sandbox = %sandbox.id(), error = %chain(&e), "stop the VM");
    }
}
