//! Starting processes, adding exec processes, and deleting tasks.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use super::{
    create::stop_quietly,
    monitor,
    process::{killed_by, lost_with_vm, Process, ProcessState},
    rootfs,
    stdio::{open_notice, open_output, ProcessIo, StdioPaths},
    Pod, TaskError, TaskEvent, TaskRegistry,
};
use crate::{error::chain, sandbox::Sandbox, spec::ProcessSpec, ExitStatus};

impl TaskRegistry {
    /// Starts a task's init process (`exec_id` empty) or one of its exec processes.
    /// Returns the pid reported for it.
    ///
    /// # Errors
    ///
    /// The task or process is unknown, was started already, its VM is gone, or the guest
    /// could not start it (its executable is missing, …).
    pub async fn start(&self, id: &str, exec_id: &str) -> Result<u32, TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        let (sandbox, spec, stdio) = {
            let table = self.table();
            let task = table.task(id)?;
            let process = task.process(id, exec_id)?;
            if process.state != ProcessState::Created {
                return Err(TaskError::WrongState {
                    id: process_name(id, exec_id),
                    state: process.state.name(),
                    reason: "only a created process can be started",
                });
            }
            let sandbox = table.live_sandbox(&task.pod_id)?;
            (sandbox, process.spec.clone(), process.stdio.clone())
        };

        let guest_pid = sandbox
            .start_process(id, exec_id, spec.as_ref())
            .await
            .map_err(|source| TaskError::StartProcess {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                source: Box::new(source),
            })?;

        let mut table = self.table();
        let task = table.task_mut(id)?;
        let process = task.process_mut(id, exec_id)?;
        let opened = process.output.take().unwrap_or_else(|| {
            // Opened at create/exec; only a start that raced a failed one lands here.
            super::stdio::no_output()
        });
        process.io = ProcessIo::start(sandbox.agent(), id, exec_id, &stdio, opened);
        process.state = ProcessState::Running;
        let pid = if exec_id.is_empty() {
            process.pid
        } else {
            process.pid = guest_pid;
            guest_pid
        };
        monitor::spawn_exit_watch(self, &sandbox, id, exec_id);
        tracing::info!(container = %id, exec = %exec_id, guest_pid, "process started");
        let event = if exec_id.is_empty() {
            TaskEvent::Started {
                id: id.to_string(),
                pid,
            }
        } else {
            TaskEvent::ExecStarted {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
                pid,
            }
        };
        self.emit(&table, event);
        Ok(pid)
    }

    /// Adds an exec process to a running task; [`TaskRegistry::start`] starts it.
    ///
    /// # Errors
    ///
    /// The task is unknown or not running, the exec id is taken or malformed, or a stdio
    /// path cannot be opened.
    pub async fn exec(
        &self,
        id: &str,
        exec_id: &str,
        mut spec: ProcessSpec,
        stdio: StdioPaths,
    ) -> Result<(), TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        crate::spec::validate_id(exec_id)
            .map_err(|e| TaskError::InvalidRequest(format!("exec id: {e}")))?;
        spec.stdin = stdio.stdin.is_some();
        spec.terminal = stdio.terminal;
        let output = open_output(&stdio)?;

        let mut table = self.table();
        let task = table.task(id)?;
        if !matches!(
            task.init.state,
            ProcessState::Running | ProcessState::Paused
        ) {
            return Err(TaskError::WrongState {
                id: id.to_string(),
                state: task.init.state.name(),
                reason: "exec needs a running task",
            });
        }
        table.live_sandbox(&task.pod_id)?;
        let task = table.task_mut(id)?;
        if task.execs.contains_key(exec_id) {
            return Err(TaskError::AlreadyExists(format!(
                "exec process {exec_id} in task {id}"
            )));
        }
        let notice = open_notice(&stdio);
        let mut process = Process::new(Some(spec), stdio, 0);
        process.output = Some(output);
        process.notice = notice;
        task.execs.insert(exec_id.to_string(), process);
        self.emit(
            &table,
            TaskEvent::ExecAdded {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
            },
        );
        Ok(())
    }

    /// Deletes an exited exec process, or a task whose init process is not running: its
    /// container goes from the guest, its rootfs is unmounted, and the VM stops with the
    /// task that started it. Returns the pid and exit status of the process.
    ///
    /// # Errors
    ///
    /// The task or process is unknown or still running.
    pub async fn delete(&self, id: &str, exec_id: &str) -> Result<(u32, ExitStatus), TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        if !exec_id.is_empty() {
            return self.delete_exec(id, exec_id);
        }

        let (task, pod, sandbox) = {
            let mut table = self.table();
            let task = table.task(id)?;
            if matches!(
                task.init.state,
                ProcessState::Running | ProcessState::Paused
            ) {
                return Err(TaskError::WrongState {
                    id: id.to_string(),
                    state: task.init.state.name(),
                    reason: "kill it before deleting it",
                });
            }
            let Some(task) = table.tasks.remove(id) else {
                return Err(TaskError::TaskNotFound(id.to_string()));
            };
            let sandbox = table.pods.get(&task.pod_id).map(|p| p.sandbox.clone());
            if let Some(pod) = table.pods.get_mut(&task.pod_id) {
                pod.tasks.remove(id);
            }
            // The task that started the VM takes it along; so does the last task of a pod
            // whose VM is gone.
            let pod = if task.role.starts_vm() {
                table.pods.remove(&task.pod_id)
            } else {
                None
            };
            (task, pod, sandbox)
        };

        let status = (*task.init.exit.borrow()).unwrap_or_else(|| killed_by(libc::SIGKILL));
        let pid = task.init.pid;
        self.release(id, task.rootfs_mount.as_ref(), sandbox.as_ref(), pod)
            .await;

        let table = self.table();
        tracing::info!(container = %id, "task deleted");
        self.emit(
            &table,
            TaskEvent::Deleted {
                id: id.to_string(),
                pid,
                status,
            },
        );
        Ok((pid, status))
    }

    fn delete_exec(&self, id: &str, exec_id: &str) -> Result<(u32, ExitStatus), TaskError> {
        let mut table = self.table();
        let task = table.task_mut(id)?;
        let process = task.process(id, exec_id)?;
        if matches!(process.state, ProcessState::Running | ProcessState::Paused) {
            return Err(TaskError::WrongState {
                id: process_name(id, exec_id),
                state: process.state.name(),
                reason: "kill it before deleting it",
            });
        }
        let Some(process) = task.execs.remove(exec_id) else {
            return Err(TaskError::ExecNotFound {
                id: id.to_string(),
                exec_id: exec_id.to_string(),
            });
        };
        let status = (*process.exit.borrow()).unwrap_or_else(|| killed_by(libc::SIGKILL));
        Ok((process.pid, status))
    }

    /// Releases what a deleted task held: its guest container, its rootfs mount, and the
    /// VM when the task started it.
    async fn release(
        &self,
        id: &str,
        rootfs_mount: Option<&PathBuf>,
        sandbox: Option<&Arc<Sandbox>>,
        pod: Option<Pod>,
    ) {
        if let Some(sandbox) = sandbox {
            if let Err(e) = sandbox.remove_container(id).await {
                tracing::debug!(container = %id, error = %chain(&e), "remove the container");
            }
        }
        if let Some(pod) = pod {
            // Stopping before the monitors go would read as the VM dying under its tasks.
            drop_monitors(&pod);
            stop_quietly(&pod.sandbox).await;
            // Containers left in the pod (their sandbox went first) lose their processes
            // and can then be deleted.
            for other in &pod.tasks {
                self.lose_processes(other);
            }
        }
        if let Some(dir) = rootfs_mount {
            rootfs::unmount_all(dir);
        }
    }

    /// Records every unfinished process of task `id` as lost with its VM.
    fn lose_processes(&self, id: &str) {
        let exec_ids: Vec<String> = match self.table().task(id) {
            Ok(task) => task.execs.keys().cloned().collect(),
            Err(_) => return,
        };
        self.record_exit(id, "", lost_with_vm());
        for exec_id in exec_ids {
            self.record_exit(id, &exec_id, lost_with_vm());
        }
    }

    /// Kills every process and stops every VM (the front end is going away).
    pub async fn shutdown_all(&self) {
        let _lifecycle = self.shared.lifecycle.lock().await;
        let (pods, mounts): (HashMap<String, Pod>, Vec<PathBuf>) = {
            let mut table = self.table();
            let mounts = table
                .tasks
                .drain()
                .filter_map(|(_, task)| task.rootfs_mount)
                .collect();
            (std::mem::take(&mut table.pods), mounts)
        };
        for pod in pods.values() {
            drop_monitors(pod);
            stop_quietly(&pod.sandbox).await;
        }
        for dir in mounts {
            rootfs::unmount_all(&dir);
        }
    }
}

fn drop_monitors(pod: &Pod) {
    for monitor in &pod.monitors {
        monitor.abort();
    }
}

/// `id` or `id/exec_id`, for messages.
pub(super) fn process_name(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        id.to_string()
    } else {
        format!("{id}/{exec_id}")
    }
}
