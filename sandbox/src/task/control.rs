//! Requests that act on running tasks: signals, freezing, stdin, terminal size, limits.

use super::{
    lifecycle::process_name,
    process::{killed_by, ProcessState},
    TaskError, TaskEvent, TaskRegistry,
};
use crate::spec::ResourceSpec;

impl TaskRegistry {
    /// Sends `signal` to a process, or to every process of the task's container when `all`.
    /// A process that was created but never started is recorded as killed by the signal.
    ///
    /// # Errors
    ///
    /// The task or process is unknown, it has exited already, or its VM is gone.
    pub async fn kill(
        &self,
        id: &str,
        exec_id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        if signal == 0 || signal > 64 {
            return Err(TaskError::InvalidRequest(format!(
                "signal {signal} is not a signal number (1-64)"
            )));
        }
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            let process = task.process(id, exec_id)?;
            match process.state {
                ProcessState::Stopped => {
                    return Err(TaskError::ProcessFinished(process_name(id, exec_id)))
                }
                ProcessState::Created => None,
                ProcessState::Running | ProcessState::Paused => {
                    Some(table.live_sandbox(&task.pod_id)?)
                }
            }
        };
        match sandbox {
            None => {
                self.record_exit(id, exec_id, killed_by(signal as i32));
                Ok(())
            }
            Some(sandbox) => Ok(sandbox.signal(id, exec_id, signal, all).await?),
        }
    }

    /// Freezes every process of a task's container.
    ///
    /// # Errors
    ///
    /// The task is unknown, not running, already paused, or its VM is gone.
    pub async fn pause(&self, id: &str) -> Result<(), TaskError> {
        self.set_frozen(id, true).await
    }

    /// Thaws a paused task.
    ///
    /// # Errors
    ///
    /// The task is unknown, not paused, or its VM is gone.
    pub async fn resume(&self, id: &str) -> Result<(), TaskError> {
        self.set_frozen(id, false).await
    }

    async fn set_frozen(&self, id: &str, frozen: bool) -> Result<(), TaskError> {
        let _lifecycle = self.shared.lifecycle.lock().await;
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            if task.init.state != ProcessState::Running || task.paused == frozen {
                let state = if task.paused && task.init.state == ProcessState::Running {
                    "paused"
                } else {
                    task.init.state.name()
                };
                return Err(TaskError::WrongState {
                    id: id.to_string(),
                    state,
                    reason: if frozen {
                        "only a running task can be paused"
                    } else {
                        "only a paused task can be resumed"
                    },
                });
            }
            table.live_sandbox(&task.pod_id)?
        };
        if frozen {
            sandbox.pause_container(id).await?;
        } else {
            sandbox.resume_container(id).await?;
        }
        let mut table = self.table();
        let task = table.task_mut(id)?;
        task.paused = frozen;
        let event = if frozen {
            TaskEvent::Paused { id: id.to_string() }
        } else {
            TaskEvent::Resumed { id: id.to_string() }
        };
        self.emit(&table, event);
        Ok(())
    }

    /// Closes a process's stdin once what its writer sent has been delivered.
    ///
    /// # Errors
    ///
    /// The task or process is unknown, or its VM is gone.
    pub async fn close_io(&self, id: &str, exec_id: &str) -> Result<(), TaskError> {
        let (sandbox, mut io) = {
            let mut table = self.table();
            let pod_id = table.task(id)?.pod_id.clone();
            let sandbox = table.live_sandbox(&pod_id)?;
            let process = table.task_mut(id)?.process_mut(id, exec_id)?;
            (sandbox, process.io.take_stdin())
        };
        io.close_stdin(sandbox.agent(), id, exec_id).await;
        Ok(())
    }

    /// Sets the window size of a process's terminal.
    ///
    /// # Errors
    ///
    /// The task or process is unknown, has no terminal, or its VM is gone.
    pub async fn resize_pty(
        &self,
        id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), TaskError> {
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            let process = task.process(id, exec_id)?;
            if !process.stdio.terminal {
                return Err(TaskError::WrongState {
                    id: process_name(id, exec_id),
                    state: "without a terminal",
                    reason: "only a process with a terminal can be resized",
                });
            }
            if process.state == ProcessState::Stopped {
                return Err(TaskError::ProcessFinished(process_name(id, exec_id)));
            }
            table.live_sandbox(&task.pod_id)?
        };
        Ok(sandbox.resize_terminal(id, exec_id, width, height).await?)
    }

    /// Applies new cgroup limits to a running task's container.
    ///
    /// # Errors
    ///
    /// The task is unknown or its VM is gone, or the guest refused the limits.
    pub async fn update(&self, id: &str, resources: &ResourceSpec) -> Result<(), TaskError> {
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            table.live_sandbox(&task.pod_id)?
        };
        Ok(sandbox.update(id, resources).await?)
    }
}
