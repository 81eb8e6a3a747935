//! Tasks over pod VMs: the container lifecycle a front end (the containerd shim, a CRI
//! server) drives, with everything both need kept here.
//!
//! A [`TaskRegistry`] holds the tasks (containers) of one front-end process and their exec
//! processes. Each task runs in a pod: the first task of a pod ([`PodRole::Standalone`] or
//! [`PodRole::PodSandbox`]) boots the pod's VM, and [`PodRole::PodContainer`] tasks join it.
//! The registry wires each process's stdio to host paths ([`StdioPaths`]), watches for
//! process exits, OOM kills and the death of a VM, and reports all of it as [`TaskEvent`]s
//! on a channel, in the order a front end must publish them.
//!
//! Pids: a task's pid is the host pid of its pod's VMM process (a host process that lives
//! exactly as long as the task can), since guest pids mean nothing on the host. Exec
//! processes and [`TaskRegistry::pids`] report guest pids.
//!
//! Locking: operations that change a task's life (create, start, exec, kill, delete, pause,
//! resume, and the handling of a VM's death) run one at a time under an async lock; the
//! table itself sits behind a short synchronous lock, under which every state change and
//! the event announcing it happen together, so events keep their order.

mod control;
mod create;
mod error;
mod event;
pub mod layout;
mod lifecycle;
mod monitor;
mod process;
mod query;
mod role;
pub mod rootfs;
mod stats;
mod stdio;

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
};

use lightpod_vmm::Hypervisor;
use tokio::{
    sync::{mpsc, OnceCell},
    task::JoinHandle,
};

use self::process::Process;
pub use self::{
    create::CreateTask,
    error::TaskError,
    event::TaskEvent,
    process::{ProcessInfo, ProcessState, VM_LOST_EXIT_CODE},
    role::{PodRole, CONTAINER_TYPE_ANNOTATION, SANDBOX_ID_ANNOTATION},
    rootfs::RootfsMount,
    stats::TaskStats,
    stdio::StdioPaths,
};
use crate::{config::Config, sandbox::Sandbox};

/// The tasks of one front-end process (one containerd shim) in one namespace.
#[derive(Clone)]
pub struct TaskRegistry {
    shared: Arc<Shared>,
}

struct Shared {
    namespace: String,
    /// The configuration, with `state_dir` already made per namespace.
    config: Config,
    /// Created on the first VM start: probing the accelerator may boot a guest.
    hypervisor: OnceCell<Arc<dyn Hypervisor>>,
    events: mpsc::UnboundedSender<TaskEvent>,
    lifecycle: tokio::sync::Mutex<()>,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    pods: HashMap<String, Pod>,
    tasks: HashMap<String, Task>,
}

/// A running pod VM and the tasks in it.
struct Pod {
    sandbox: Arc<Sandbox>,
    tasks: BTreeSet<String>,
    /// Why the VM stopped under its tasks, once it has.
    dead: Option<String>,
    monitors: Vec<JoinHandle<()>>,
}

impl Drop for Pod {
    fn drop(&mut self) {
        for monitor in &self.monitors {
            monitor.abort();
        }
    }
}

/// A container: its init process and exec processes.
struct Task {
    pod_id: String,
    role: PodRole,
    bundle: PathBuf,
    /// The root filesystem this registry mounted from containerd's mounts, if it did.
    rootfs_mount: Option<PathBuf>,
    init: Process,
    execs: HashMap<String, Process>,
    paused: bool,
    /// An OOM event was published for the running init process.
    oom_reported: bool,
}

impl Task {
    fn process_mut(&mut self, id: &str, exec_id: &str) -> Result<&mut Process, TaskError> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| TaskError::ExecNotFound {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
    }

    fn process(&self, id: &str, exec_id: &str) -> Result<&Process, TaskError> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs
            .get(exec_id)
            .ok_or_else(|| TaskError::ExecNotFound {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
            })
    }
}

impl Table {
    fn task_mut(&mut self, id: &str) -> Result<&mut Task, TaskError> {
        self.tasks
            .get_mut(id)
            .ok_or_else(|| TaskError::TaskNotFound(id.to_string()))
    }

    fn task(&self, id: &str) -> Result<&Task, TaskError> {
        self.tasks
            .get(id)
            .ok_or_else(|| TaskError::TaskNotFound(id.to_string()))
    }

    /// The pod of a task, failing when its VM is gone.
    fn live_sandbox(&self, pod_id: &str) -> Result<Arc<Sandbox>, TaskError> {
        match self.pods.get(pod_id) {
            Some(pod) if pod.dead.is_none() => Ok(pod.sandbox.clone()),
            _ => Err(TaskError::Sandbox(crate::SandboxError::VmGone(
                pod_id.to_string(),
            ))),
        }
    }
}

impl TaskRegistry {
    /// An empty registry for the front-end namespace `namespace` (containerd's namespace:
    /// task ids are unique only within one), sending its events to `events`. Its sandboxes
    /// keep their state under [`layout::namespace_config`] of `config`.
    pub fn new(
        namespace: &str,
        config: &Config,
        events: mpsc::UnboundedSender<TaskEvent>,
    ) -> TaskRegistry {
        TaskRegistry {
            shared: Arc::new(Shared {
                namespace: namespace.to_string(),
                config: layout::namespace_config(config, namespace),
                hypervisor: OnceCell::new(),
                events,
                lifecycle: tokio::sync::Mutex::new(()),
                table: Mutex::new(Table::default()),
            }),
        }
    }

    /// The namespace this registry serves.
    pub fn namespace(&self) -> &str {
        &self.shared.namespace
    }

    /// Whether the registry holds no task (a shim may exit).
    pub fn is_empty(&self) -> bool {
        self.table().tasks.is_empty()
    }

    /// The configuration this registry's sandboxes start with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The backend, created on first use.
    async fn hypervisor(&self) -> Result<Arc<dyn Hypervisor>, TaskError> {
        let config = &self.shared.config;
        self.shared
            .hypervisor
            .get_or_try_init(|| async { crate::backend::hypervisor(config).map(Arc::from) })
            .await
            .cloned()
            .map_err(TaskError::Sandbox)
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock leaves a table that is still consistent enough to
        // clean up from, so poisoning is not propagated.
        self.shared
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Sends an event; called with the table locked so events keep the order of changes.
    fn emit(&self, _table: &Table, event: TaskEvent) {
        if self.shared.events.send(event).is_err() {
            tracing::debug!("task event dropped: nobody listens");
        }
    }
}

/// The host pid reported for the tasks of a pod: its VMM's.
fn task_pid(sandbox: &Sandbox) -> u32 {
    // The backend lists the VMM first, then its helpers.
    sandbox.host_pids().first().copied().unwrap_or(0)
}
