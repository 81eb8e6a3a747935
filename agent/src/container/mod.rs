//! Containers in the guest: their cgroups, filesystems and processes.

pub mod caps;
pub mod cgroup;
pub mod cgroup_stats;
pub mod mount_options;
pub mod mounts;
pub mod registry;
pub mod rlimits;
pub mod setup;
mod start;

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{atomic::AtomicU64, Arc, Mutex, MutexGuard, PoisonError},
};

use crate::{
    container::cgroup::Cgroup,
    error::{AgentError, AgentResult},
    process::Process,
    spec::ContainerSpec,
};

/// A process slot: reserved while its container init sets up, then the process.
#[derive(Debug, Clone)]
enum Slot {
    Starting,
    Started(Arc<Process>),
}

/// One container.
#[derive(Debug)]
pub struct Container {
    /// Container id.
    pub id: String,
    spec: ContainerSpec,
    cgroup: Cgroup,
    /// Storage mount points this container mounted, in mount order.
    storages: Vec<PathBuf>,
    /// Processes by exec id; "" is the init process.
    processes: Mutex<HashMap<String, Slot>>,
    /// OOM kills already reported by `WaitOomEvent`.
    oom_reported: AtomicU64,
    /// OOM kills already attributed to an exited process (`ProcessExit.oom_killed`).
    oom_attributed: AtomicU64,
}

impl Container {
    fn processes(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.processes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The process with this exec id ("" for init).
    ///
    /// # Errors
    ///
    /// No such process, or it is still being set up.
    pub fn process(&self, exec_id: &str) -> AgentResult<Arc<Process>> {
        match self.processes().get(exec_id) {
            Some(Slot::Started(process)) => Ok(Arc::clone(process)),
            Some(Slot::Starting) => Err(AgentError::WrongState(format!(
                "process {exec_id:?} of container {:?} is still starting",
                self.id
            ))),
            None if exec_id.is_empty() => Err(AgentError::WrongState(format!(
                "container {:?} has not been started",
                self.id
            ))),
            None => Err(AgentError::ProcessNotFound {
                container_id: self.id.clone(),
                exec_id: exec_id.to_string(),
            }),
        }
    }

    /// The init process while it runs.
    fn running_init(&self) -> Option<Arc<Process>> {
        match self.processes().get("") {
            Some(Slot::Started(init)) if init.is_running() => Some(Arc::clone(init)),
            _ => None,
        }
    }
}
