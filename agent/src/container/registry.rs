//! Every container of the guest, by id, and the calls that act on a whole container.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use nix::sys::signal::Signal;

use crate::{
    container::{cgroup::Cgroup, cgroup_stats::CgroupStats, Container},
    error::{AgentError, AgentResult},
    process::reaper::Reaper,
    spec::{ContainerSpec, Resources},
    storage,
};

/// How often `WaitOomEvent` looks at the containers' `memory.events`.
const OOM_POLL: Duration = Duration::from_millis(250);

/// The containers of this guest.
#[derive(Debug)]
pub struct Containers {
    cgroup_root: PathBuf,
    reaper: Arc<Reaper>,
    by_id: Mutex<HashMap<String, Arc<Container>>>,
    /// Serialises create and remove, which take a while and must not interleave for one id.
    lifecycle: tokio::sync::Mutex<()>,
}

impl Containers {
    /// No containers yet; their cgroups go under `cgroup_root`.
    pub fn new(cgroup_root: PathBuf, reaper: Arc<Reaper>) -> Containers {
        Containers {
            cgroup_root,
            reaper,
            by_id: Mutex::new(HashMap::new()),
            lifecycle: tokio::sync::Mutex::new(()),
        }
    }

    fn by_id(&self) -> MutexGuard<'_, HashMap<String, Arc<Container>>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The container with this id.
    ///
    /// # Errors
    ///
    /// [`AgentError::ContainerNotFound`].
    pub fn get(&self, id: &str) -> AgentResult<Arc<Container>> {
        self.by_id()
            .get(id)
            .cloned()
            .ok_or_else(|| AgentError::ContainerNotFound(id.to_string()))
    }

    /// Every container.
    pub fn all(&self) -> Vec<Arc<Container>> {
        self.by_id().values().cloned().collect()
    }

    /// Mounts the container's storages, creates its cgroup with its limits, and records it.
    /// A failure undoes what was done.
    ///
    /// # Errors
    ///
    /// The id is taken, the rootfs is missing, or a mount or the cgroup failed.
    pub async fn create(&self, spec: ContainerSpec) -> AgentResult<()> {
        let _lifecycle = self.lifecycle.lock().await;
        if self.by_id().contains_key(&spec.id) {
            return Err(AgentError::ContainerExists(spec.id));
        }

        let mut mounted = Vec::new();
        for storage in &spec.storages {
            if let Err(err) = storage::mount(storage).await {
                storage::unmount_all(&mounted).await;
                return Err(err.into());
            }
            mounted.push(storage.mount_point.clone());
        }
        let undo = |mounted: Vec<PathBuf>| async move { storage::unmount_all(&mounted).await };

        if !spec.setup.rootfs.is_dir() {
            undo(mounted).await;
            let message = format!(
                "rootfs {} is not a directory in the guest",
                spec.setup.rootfs.display()
            );
            return Err(AgentError::WrongState(message));
        }
        let cgroup = match Cgroup::create(&self.cgroup_root, &spec.id) {
            Ok(cgroup) => cgroup,
            Err(err) => {
                undo(mounted).await;
                return Err(err.into());
            }
        };
        if let Err(err) = cgroup.apply(&spec.resources) {
            let _ = cgroup.destroy().await;
            undo(mounted).await;
            return Err(err.into());
        }

        let id = spec.id.clone();
        let container = Container {
            id: id.clone(),
            spec,
            cgroup,
            storages: mounted,
            processes: Mutex::default(),
            oom_reported: AtomicU64::new(0),
            oom_attributed: AtomicU64::new(0),
        };
        self.by_id().insert(id.clone(), Arc::new(container));
        tracing::info!(container = %id, "container created");
        Ok(())
    }

    /// Starts a process of a container; see [`Container::start`].
    ///
    /// # Errors
    ///
    /// As [`Container::start`], or the container is unknown.
    pub async fn start(
        &self,
        id: &str,
        exec_id: &str,
        process: Option<crate::spec::ProcessSpec>,
    ) -> AgentResult<u32> {
        let container = self.get(id)?;
        let pod_init_pid = match &container.spec.pod_sandbox_id {
            Some(sandbox) if exec_id.is_empty() && sandbox != id => {
                Some(self.pod_init_pid(id, sandbox)?)
            }
            _ => None,
        };
        container
            .start(&self.reaper, exec_id, process, pod_init_pid)
            .await
    }

    /// Guest pid of the running init of `sandbox`, the pod sandbox container of `id`.
    fn pod_init_pid(&self, id: &str, sandbox: &str) -> AgentResult<i32> {
        let init = self
            .get(sandbox)
            .ok()
            .and_then(|s| s.running_init())
            .ok_or_else(|| {
                AgentError::WrongState(format!(
                    "container {id:?} joins pod sandbox {sandbox:?}, which is not running"
                ))
            })?;
        Ok(init.pid.as_raw())
    }

    /// Kills what is left of a container, removes its cgroup and unmounts its storages.
    ///
    /// # Errors
    ///
    /// The container is unknown, or its cgroup does not empty.
    pub async fn remove(&self, id: &str) -> AgentResult<()> {
        let _lifecycle = self.lifecycle.lock().await;
        let container = self.get(id)?;
        container.cgroup.destroy().await?;
        storage::unmount_all(&container.storages).await;
        self.by_id().remove(id);
        tracing::info!(container = %id, "container removed");
        Ok(())
    }

    /// Signals one process, or with `all` every process of the container.
    ///
    /// # Errors
    ///
    /// Unknown container or process, exited process, or the signal failed.
    pub fn signal(&self, id: &str, exec_id: &str, signal: Signal, all: bool) -> AgentResult<()> {
        let container = self.get(id)?;
        if all {
            container.cgroup.signal_all(signal)?;
            return Ok(());
        }
        container.process(exec_id)?.signal(signal)
    }

    /// Freezes or thaws the container.
    ///
    /// # Errors
    ///
    /// Unknown container, or the freezer failed.
    pub async fn set_paused(&self, id: &str, paused: bool) -> AgentResult<()> {
        let container = self.get(id)?;
        container.cgroup.set_frozen(paused).await?;
        tracing::info!(container = %id, paused, "container freezer changed");
        Ok(())
    }

    /// Applies new limits.
    ///
    /// # Errors
    ///
    /// Unknown container, or a limit was refused.
    pub fn update(&self, id: &str, resources: &Resources) -> AgentResult<()> {
        Ok(self.get(id)?.cgroup.apply(resources)?)
    }

    /// The container's figures.
    ///
    /// # Errors
    ///
    /// Unknown container.
    pub fn stats(&self, id: &str) -> AgentResult<CgroupStats> {
        Ok(self.get(id)?.cgroup.stats())
    }

    /// Guest pids of the container's processes.
    ///
    /// # Errors
    ///
    /// Unknown container, or its cgroup cannot be read.
    pub fn pids(&self, id: &str) -> AgentResult<Vec<u32>> {
        Ok(self.get(id)?.cgroup.pids()?)
    }

    /// Waits until the OOM killer has acted in some container since the last report, and
    /// returns its id. Polls `memory.events`, which is cheap: one small read per container.
    pub async fn wait_oom(&self) -> String {
        loop {
            for container in self.all() {
                let Ok(kills) = container.cgroup.oom_kills() else {
                    continue;
                };
                let reported = container.oom_reported.load(Ordering::Acquire);
                let claimed = kills > reported
                    && container
                        .oom_reported
                        .compare_exchange(reported, kills, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok();
                if claimed {
                    tracing::warn!(container = %container.id, kills, "OOM killer acted");
                    return container.id.clone();
                }
            }
            tokio::time::sleep(OOM_POLL).await;
        }
    }
}
