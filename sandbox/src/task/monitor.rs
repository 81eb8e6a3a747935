//! Watchers of what happens in a pod without a request: process exits, OOM kills, and the
//! death of the VM itself.

use std::{sync::Arc, time::Duration};

use lightpod_proto::agent as pb;
use lightpod_vmm::VmExit;
use tokio::task::JoinHandle;

use super::{
    process::{lost_with_vm, ProcessState},
    stdio::write_notice,
    TaskEvent, TaskRegistry,
};
use crate::{error::chain, sandbox::Sandbox, ExitStatus};

/// How long output may keep flowing after a process exited, before its copies are cut: a
/// daemon it left behind may hold the pipes open forever.
const OUTPUT_DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// How long a process watcher whose channel broke waits for the VM's exit, to say why.
const VM_EXIT_WAIT: Duration = Duration::from_secs(5);

/// Starts the watchers of a new pod: its VM's exit, and OOM kills in its guest.
pub(super) fn spawn_pod_monitors(
    registry: &TaskRegistry,
    pod_id: &str,
    sandbox: &Arc<Sandbox>,
) -> Vec<JoinHandle<()>> {
    let vm = {
        let (registry, pod_id, sandbox) = (registry.clone(), pod_id.to_string(), sandbox.clone());
        tokio::spawn(async move {
            let exit = sandbox.wait_vm().await;
            registry.vm_lost(&pod_id, &exit).await;
        })
    };
    let oom = {
        let (registry, sandbox) = (registry.clone(), sandbox.clone());
        tokio::spawn(async move {
            loop {
                match sandbox.agent().wait_oom_event(&pb::Empty::new()).await {
                    Ok(event) => registry.oom_killed(&event.container_id),
                    Err(e) => {
                        tracing::debug!(sandbox = %sandbox.id(), error = %chain(&e),
                            "OOM watch ended");
                        return;
                    }
                }
            }
        })
    };
    vec![vm, oom]
}

/// Starts the watcher of a started process: waits for its exit in the guest, lets its
/// output drain, records the exit and announces it.
pub(super) fn spawn_exit_watch(
    registry: &TaskRegistry,
    sandbox: &Arc<Sandbox>,
    id: &str,
    exec_id: &str,
) {
    let (registry, sandbox) = (registry.clone(), sandbox.clone());
    let (id, exec_id) = (id.to_string(), exec_id.to_string());
    tokio::spawn(async move {
        let status = match sandbox.wait(&id, &exec_id).await {
            Ok(status) => status,
            Err(e) => {
                // The channel broke: the VM is going. Say why in the process's output
                // before its exit is announced (the VM's own watcher comes later).
                tracing::debug!(container = %id, exec = %exec_id, error = %chain(&e),
                    "waiting for the process failed");
                let reason = match tokio::time::timeout(VM_EXIT_WAIT, sandbox.wait_vm()).await {
                    Ok(exit) => exit.to_string(),
                    Err(_) => format!("the channel to its agent broke: {}", chain(&e)),
                };
                registry.notify_lost(&id, &exec_id, sandbox.id(), &reason);
                lost_with_vm()
            }
        };
        let outputs = {
            let mut table = registry.table();
            let process = table
                .task_mut(&id)
                .and_then(|task| task.process_mut(&id, &exec_id));
            process.ok().map(|p| p.io.take_outputs())
        };
        if let Some(mut outputs) = outputs {
            if !outputs.drain_output(OUTPUT_DRAIN_LIMIT).await {
                tracing::warn!(container = %id, exec = %exec_id,
                    "output still open after the process exited; cut it");
            }
        }
        registry.record_exit(&id, &exec_id, status);
    });
}

impl TaskRegistry {
    /// Records a process's exit once and announces it.
    pub(super) fn record_exit(&self, id: &str, exec_id: &str, status: ExitStatus) {
        let mut table = self.table();
        let Ok(task) = table.task_mut(id) else {
            return;
        };
        let Ok(process) = task.process_mut(id, exec_id) else {
            return;
        };
        if !process.record_exit(status) {
            return;
        }
        process.io.abort();
        process.notice = None;
        let pid = process.pid;
        // The agent attributes an OOM kill to the process it ended; when that came before
        // the OOM watch saw the cgroup's counter, the event is owed now, ahead of the exit
        // (a `ctr run --rm` deletes the task right after it).
        let oom_owed = status.oom_killed && !task.oom_reported;
        if oom_owed {
            task.oom_reported = true;
            tracing::warn!(container = %id, exec = %exec_id, "the OOM killer ended the process");
            self.emit(&table, TaskEvent::Oom { id: id.to_string() });
        }
        tracing::info!(container = %id, exec = %exec_id, code = status.code,
            oom = status.oom_killed, "process exited");
        self.emit(
            &table,
            TaskEvent::Exited {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                pid,
                status,
            },
        );
    }

    /// Writes why a process is lost with its VM into the process's output, once.
    fn notify_lost(&self, id: &str, exec_id: &str, pod_id: &str, reason: &str) {
        let mut stream = {
            let mut table = self.table();
            let Ok(process) = table
                .task_mut(id)
                .and_then(|task| task.process_mut(id, exec_id))
            else {
                return;
            };
            if process.state == ProcessState::Stopped {
                return;
            }
            // Taken: one notice per process.
            match process.notice.take() {
                Some(stream) => stream,
                None => return,
            }
        };
        // The backend appends the end of the guest console to a crash reason; the notice
        // keeps the cause.
        let reason = reason.split(": console:").next().unwrap_or(reason);
        write_notice(
            &mut stream,
            &format!(
                "lightpod: the VM of pod {pod_id} stopped ({reason}); this process is lost \
                 (exit code {})",
                super::VM_LOST_EXIT_CODE
            ),
        );
    }

    /// The OOM killer acted in container `id` of some pod.
    fn oom_killed(&self, id: &str) {
        let mut table = self.table();
        let Ok(task) = table.task_mut(id) else {
            return;
        };
        task.oom_reported = true;
        tracing::warn!(container = %id, "the OOM killer acted in the container");
        self.emit(&table, TaskEvent::Oom { id: id.to_string() });
    }

    /// The VM of `pod_id` stopped by itself: every process still running in it exits with
    /// [`super::VM_LOST_EXIT_CODE`], and the pod refuses new work until it is deleted.
    async fn vm_lost(&self, pod_id: &str, exit: &VmExit) {
        let _lifecycle = self.shared.lifecycle.lock().await;
        let reason = exit.to_string();
        let lost: Vec<(String, String)> = {
            let mut table = self.table();
            let Some(pod) = table.pods.get_mut(pod_id) else {
                // Deleted meanwhile: the stop was ours.
                return;
            };
            pod.dead = Some(reason.clone());
            let tasks: Vec<String> = pod.tasks.iter().cloned().collect();
            let mut lost = Vec::new();
            for id in tasks {
                let Ok(task) = table.task_mut(&id) else {
                    continue;
                };
                let running = |state| matches!(state, ProcessState::Running | ProcessState::Paused);
                if running(task.init.state) || task.init.state == ProcessState::Created {
                    lost.push((id.clone(), String::new()));
                }
                for (exec_id, process) in &task.execs {
                    if running(process.state) || process.state == ProcessState::Created {
                        lost.push((id.clone(), exec_id.clone()));
                    }
                }
            }
            lost
        };
        tracing::error!(sandbox = %pod_id, reason = %reason, processes = lost.len(),
            "the pod's VM stopped under its tasks; their processes are lost");
        for (id, exec_id) in lost {
            self.notify_lost(&id, &exec_id, pod_id, &reason);
            self.record_exit(&id, &exec_id, lost_with_vm());
        }
    }
}
