//! A pod sandbox run through CRI, removed when its owner drops it.

use std::path::{Path, PathBuf};

use k8s_cri::v1::{ContainerConfig, PodSandboxConfig};
use tonic::Status;

use super::{CriClient, PodSandboxConfigBuilder};

/// A running pod sandbox and the directory its container logs go to. Dropping it stops and
/// removes the pod (best effort, so a failed test or an interrupted demo leaves nothing);
/// [`CriPod::remove`] does the same and reports errors.
pub struct CriPod {
    /// The pod sandbox id.
    pub id: String,
    /// The config the pod was created from (CreateContainer needs it again).
    pub config: PodSandboxConfig,
    /// The pod's log directory.
    pub log_dir: tempfile::TempDir,
    socket: PathBuf,
    removed: bool,
}

impl CriPod {
    /// Runs a pod from `builder` with the runtime handler `handler` ("runc", "lightpod"),
    /// its log directory a fresh temporary directory. `socket` is the CRI socket `cri` is
    /// connected to: dropping the pod connects there again to remove it.
    ///
    /// # Errors
    ///
    /// RunPodSandbox's status; `Internal` when the log directory cannot be created.
    pub fn run(
        cri: &mut CriClient,
        socket: &Path,
        builder: PodSandboxConfigBuilder,
        handler: &str,
    ) -> Result<CriPod, Status> {
        let log_dir = tempfile::Builder::new()
            .prefix("lightpod-pod-")
            .tempdir()
            .map_err(|e| Status::internal(format!("create a pod log directory: {e}")))?;
        let config = builder.log_directory(log_dir.path()).build();
        let id = cri.run_pod_sandbox(&config, handler)?;
        Ok(CriPod {
            id,
            config,
            log_dir,
            socket: socket.to_path_buf(),
            removed: false,
        })
    }

    /// CreateContainer in this pod; the container id.
    pub fn create_container(
        &self,
        cri: &mut CriClient,
        config: &ContainerConfig,
    ) -> Result<String, Status> {
        cri.create_container(&self.id, config, &self.config)
    }

    /// CreateContainer then StartContainer; the container id.
    pub fn run_container(
        &self,
        cri: &mut CriClient,
        config: &ContainerConfig,
    ) -> Result<String, Status> {
        let id = self.create_container(cri, config)?;
        cri.start_container(&id)?;
        Ok(id)
    }

    /// Where the container created from `config` writes its CRI log.
    pub fn log_file(&self, config: &ContainerConfig) -> PathBuf {
        self.log_dir.path().join(&config.log_path)
    }

    /// StopPodSandbox then RemovePodSandbox.
    ///
    /// # Errors
    ///
    /// The status of the call that failed.
    pub fn remove(mut self, cri: &mut CriClient) -> Result<(), Status> {
        self.removed = true;
        cri.stop_pod_sandbox(&self.id)?;
        cri.remove_pod_sandbox(&self.id)
    }
}

impl Drop for CriPod {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let mut cri = match CriClient::connect(&self.socket) {
            Ok(cri) => cri,
            Err(error) => {
                tracing::warn!(sandbox = %self.id, error = %error, "cannot reach CRI to remove the pod");
                return;
            }
        };
        if let Err(status) = cri
            .stop_pod_sandbox(&self.id)
            .and_then(|_| cri.remove_pod_sandbox(&self.id))
        {
            tracing::warn!(sandbox = %self.id, %status, "removing the dropped pod failed");
        }
    }
}
