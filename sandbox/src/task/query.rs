//! Requests that read tasks without changing them: state, pids, exits, figures.

use super::{ProcessInfo, TaskError, TaskRegistry, TaskStats};
use crate::ExitStatus;

impl TaskRegistry {
    /// The state of a task's init process (`exec_id` empty) or of one exec process, with the
    /// task's bundle.
    ///
    /// # Errors
    ///
    /// The task or process is unknown.
    pub fn state(
        &self,
        id: &str,
        exec_id: &str,
    ) -> Result<(ProcessInfo, std::path::PathBuf), TaskError> {
        let table = self.table();
        let task = table.task(id)?;
        let info = task.process(id, exec_id)?.info(task.paused);
        Ok((info, task.bundle.clone()))
    }

    /// Guest pids of every process in a task's container; empty once its VM is gone.
    ///
    /// # Errors
    ///
    /// The task is unknown, or the guest could not list them.
    pub async fn pids(&self, id: &str) -> Result<Vec<u32>, TaskError> {
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            match table.live_sandbox(&task.pod_id) {
                Ok(sandbox) => sandbox,
                Err(_) => return Ok(Vec::new()),
            }
        };
        Ok(sandbox.container_pids(id).await?)
    }

    /// Waits until a process has exited (returns at once if it has).
    ///
    /// # Errors
    ///
    /// The task or process is unknown, or went away while waiting.
    pub async fn wait(&self, id: &str, exec_id: &str) -> Result<ExitStatus, TaskError> {
        let mut exit = {
            let table = self.table();
            table.task(id)?.process(id, exec_id)?.exit_receiver()
        };
        let status = match exit.wait_for(Option::is_some).await {
            Ok(status) => *status,
            Err(_) => return Err(TaskError::TaskNotFound(id.to_string())),
        };
        Ok(status.unwrap_or_else(super::process::lost_with_vm))
    }

    /// CPU, memory and pids figures of a task's container.
    ///
    /// # Errors
    ///
    /// The task is unknown, its VM is gone, or the guest could not read them.
    pub async fn stats(&self, id: &str) -> Result<TaskStats, TaskError> {
        let sandbox = {
            let table = self.table();
            let task = table.task(id)?;
            table.live_sandbox(&task.pod_id)?
        };
        Ok(TaskStats::from(&sandbox.container_stats(id).await?))
    }

    /// Host pids of every VM this registry runs (VMMs and their helpers).
    pub fn host_pids(&self) -> Vec<u32> {
        let table = self.table();
        table
            .pods
            .values()
            .flat_map(|pod| pod.sandbox.host_pids())
            .collect()
    }

    /// The pid reported for a task (its VMM's).
    ///
    /// # Errors
    ///
    /// The task is unknown.
    pub fn task_pid(&self, id: &str) -> Result<u32, TaskError> {
        Ok(self.table().task(id)?.init.pid)
    }
}
