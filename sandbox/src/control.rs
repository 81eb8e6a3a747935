//! Calls on a running container of a sandbox that change or read it without changing its
//! life: freezing, figures, processes, terminal size.

use lightpod_proto::agent as pb;

use crate::{error::SandboxError, sandbox::Sandbox};

fn container_ref(container_id: &str) -> pb::ContainerRef {
    let mut req = pb::ContainerRef::new();
    req.container_id = container_id.to_string();
    req
}

impl Sandbox {
    /// Freezes every process of a container (its cgroup's freezer in the guest).
    ///
    /// # Errors
    ///
    /// The agent refused (unknown container, no freezer).
    pub async fn pause_container(&self, container_id: &str) -> Result<(), SandboxError> {
        let req = container_ref(container_id);
        self.agent().pause_container(&req).await.map(|_| ())
    }

    /// Thaws a frozen container.
    ///
    /// # Errors
    ///
    /// The agent refused.
    pub async fn resume_container(&self, container_id: &str) -> Result<(), SandboxError> {
        let req = container_ref(container_id);
        self.agent().resume_container(&req).await.map(|_| ())
    }

    /// CPU, memory and pids figures of a container's cgroup.
    ///
    /// # Errors
    ///
    /// The agent refused or could not read the cgroup.
    pub async fn container_stats(
        &self,
        container_id: &str,
    ) -> Result<pb::ContainerStats, SandboxError> {
        let req = container_ref(container_id);
        self.agent().container_stats(&req).await
    }

    /// Guest pids of every process in a container.
    ///
    /// # Errors
    ///
    /// The agent refused.
    pub async fn container_pids(&self, container_id: &str) -> Result<Vec<u32>, SandboxError> {
        let req = container_ref(container_id);
        Ok(self.agent().list_processes(&req).await?.pids)
    }

    /// Sets the window size of a process's terminal.
    ///
    /// # Errors
    ///
    /// The process is unknown or has no terminal.
    pub async fn resize_terminal(
        &self,
        container_id: &str,
        exec_id: &str,
        width: u32,
        height: u32,
    ) -> Result<(), SandboxError> {
        let mut req = pb::ResizeTerminalRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.width = width;
        req.height = height;
        self.agent().resize_terminal(&req).await.map(|_| ())
    }
}
