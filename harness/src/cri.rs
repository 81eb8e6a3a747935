//! A CRI client: containerd's CRI plugin driven over its unix socket with the `k8s-cri` stubs
//! (CRI v1), call by call as kubelet drives it.
//!
//! The client is blocking: it owns a small tokio runtime and waits for each call, so callers
//! (tests, the demo, the benchmarks) stay plain synchronous code. Every call returns the gRPC
//! [`Status`] on failure, so tests of bad input can look at its code and message. Streaming
//! calls (exec, attach, port-forward) return the URL of containerd's streaming server, which
//! speaks SPDY and WebSocket to whoever follows it.

mod config;
pub mod log;
mod pod;

use std::{
    io,
    path::{Path, PathBuf},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use k8s_cri::v1::{
    image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient, *,
};
use tonic::transport::{Channel, Endpoint, Uri};

pub use self::{
    config::{ContainerConfigBuilder, PodSandboxConfigBuilder, DEFAULT_POD_NAMESPACE},
    pod::CriPod,
};
pub use k8s_cri::v1 as api;
/// The status a failed CRI call returns, and its code.
pub use tonic::{Code, Status};

/// How long one CRI call may take before the client gives up (RunPodSandbox of a VM pod
/// under TCG included).
const CALL_TIMEOUT: Duration = Duration::from_secs(180);

/// Why [`CriClient::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum CriConnectError {
    /// The client's tokio runtime could not be built.
    #[error("build the CRI client's runtime")]
    BuildRuntime(#[source] io::Error),
    /// The socket did not accept the connection.
    #[error("connect to CRI at {}", socket.display())]
    Connect {
        /// The CRI socket.
        socket: PathBuf,
        /// The cause.
        #[source]
        source: tonic::transport::Error,
    },
}

/// A connection to a CRI endpoint (containerd's socket, namespace `k8s.io`).
pub struct CriClient {
    runtime: tokio::runtime::Runtime,
    runtime_service: RuntimeServiceClient<Channel>,
    image_service: ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects to the CRI endpoint at the unix socket `socket`.
    ///
    /// # Errors
    ///
    /// Fails when nothing accepts connections on `socket`.
    pub fn connect(socket: &Path) -> Result<CriClient, CriConnectError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CriConnectError::BuildRuntime)?;
        let path: PathBuf = socket.to_path_buf();
        // The URI is a placeholder: every connection goes to the unix socket.
        let channel = runtime
            .block_on(
                Endpoint::from_static("http://[::]:0")
                    .timeout(CALL_TIMEOUT)
                    .connect_with_connector(tower::service_fn(move |_: Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, io::Error>(TokioIo::new(stream))
                        }
                    })),
            )
            .map_err(|source| CriConnectError::Connect {
                socket: socket.to_path_buf(),
                source,
            })?;
        Ok(CriClient {
            runtime,
            runtime_service: RuntimeServiceClient::new(channel.clone()),
            image_service: ImageServiceClient::new(channel),
        })
    }

    /// Version: runtime name and version, and the CRI version.
    pub fn version(&mut self) -> Result<VersionResponse, Status> {
        let request = VersionRequest {
            version: "v1".into(),
        };
        self.call(|mut c| async move { c.runtime_service.version(request).await })
    }

    /// RunPodSandbox with the given runtime handler ("" for containerd's default); the pod id.
    pub fn run_pod_sandbox(
        &mut self,
        config: &PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String, Status> {
        let request = RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: runtime_handler.into(),
        };
        self.call(|mut c| async move { c.runtime_service.run_pod_sandbox(request).await })
            .map(|r| r.pod_sandbox_id)
    }

    /// PodSandboxStatus (verbose: with containerd's `info` map).
    pub fn pod_sandbox_status(&mut self, pod_id: &str) -> Result<PodSandboxStatusResponse, Status> {
        let request = PodSandboxStatusRequest {
            pod_sandbox_id: pod_id.into(),
            verbose: true,
        };
        self.call(|mut c| async move { c.runtime_service.pod_sandbox_status(request).await })
    }

    /// The pod's IP address as PodSandboxStatus reports it ("" when it has none).
    pub fn pod_ip(&mut self, pod_id: &str) -> Result<String, Status> {
        let status = self.pod_sandbox_status(pod_id)?;
        Ok(status
            .status
            .and_then(|s| s.network)
            .map(|n| n.ip)
            .unwrap_or_default())
    }

    /// ListPodSandbox, optionally only `pod_id`.
    pub fn list_pod_sandboxes(&mut self, pod_id: Option<&str>) -> Result<Vec<PodSandbox>, Status> {
        let filter = pod_id.map(|id| PodSandboxFilter {
            id: id.into(),
            ..Default::default()
        });
        let request = ListPodSandboxRequest { filter };
        self.call(|mut c| async move { c.runtime_service.list_pod_sandbox(request).await })
            .map(|r| r.items)
    }

    /// StopPodSandbox.
    pub fn stop_pod_sandbox(&mut self, pod_id: &str) -> Result<(), Status> {
        let request = StopPodSandboxRequest {
            pod_sandbox_id: pod_id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.stop_pod_sandbox(request).await })
            .map(drop)
    }

    /// RemovePodSandbox.
    pub fn remove_pod_sandbox(&mut self, pod_id: &str) -> Result<(), Status> {
        let request = RemovePodSandboxRequest {
            pod_sandbox_id: pod_id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.remove_pod_sandbox(request).await })
            .map(drop)
    }

    /// CreateContainer in `pod_id`, whose sandbox was created from `pod_config`; the id.
    pub fn create_container(
        &mut self,
        pod_id: &str,
        config: &ContainerConfig,
        pod_config: &PodSandboxConfig,
    ) -> Result<String, Status> {
        let request = CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config.clone()),
            sandbox_config: Some(pod_config.clone()),
        };
        self.call(|mut c| async move { c.runtime_service.create_container(request).await })
            .map(|r| r.container_id)
    }

    /// StartContainer.
    pub fn start_container(&mut self, id: &str) -> Result<(), Status> {
        let request = StartContainerRequest {
            container_id: id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.start_container(request).await })
            .map(drop)
    }

    /// StopContainer: the stop signal, then SIGKILL after `timeout_secs`.
    pub fn stop_container(&mut self, id: &str, timeout_secs: i64) -> Result<(), Status> {
        let request = StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        };
        self.call(|mut c| async move { c.runtime_service.stop_container(request).await })
            .map(drop)
    }

    /// RemoveContainer.
    pub fn remove_container(&mut self, id: &str) -> Result<(), Status> {
        let request = RemoveContainerRequest {
            container_id: id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.remove_container(request).await })
            .map(drop)
    }

    /// ContainerStatus (verbose).
    pub fn container_status(&mut self, id: &str) -> Result<ContainerStatus, Status> {
        let request = ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        self.call(|mut c| async move { c.runtime_service.container_status(request).await })
            .map(|r| r.status.unwrap_or_default())
    }

    /// ListContainers, optionally only those of `pod_id`.
    pub fn list_containers(&mut self, pod_id: Option<&str>) -> Result<Vec<Container>, Status> {
        let filter = pod_id.map(|id| ContainerFilter {
            pod_sandbox_id: id.into(),
            ..Default::default()
        });
        let request = ListContainersRequest { filter };
        self.call(|mut c| async move { c.runtime_service.list_containers(request).await })
            .map(|r| r.containers)
    }

    /// ExecSync: runs `cmd` in the container and waits (`timeout_secs` 0 = no timeout).
    pub fn exec_sync(
        &mut self,
        id: &str,
        cmd: &[&str],
        timeout_secs: i64,
    ) -> Result<ExecSyncResponse, Status> {
        let request = ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_secs,
        };
        self.call(|mut c| async move { c.runtime_service.exec_sync(request).await })
    }

    /// Exec: the streaming URL for `request`.
    pub fn exec(&mut self, request: ExecRequest) -> Result<String, Status> {
        self.call(|mut c| async move { c.runtime_service.exec(request).await })
            .map(|r| r.url)
    }

    /// Attach: the streaming URL for `request`.
    pub fn attach(&mut self, request: AttachRequest) -> Result<String, Status> {
        self.call(|mut c| async move { c.runtime_service.attach(request).await })
            .map(|r| r.url)
    }

    /// PortForward: the streaming URL forwarding to `ports` of the pod.
    pub fn port_forward(&mut self, pod_id: &str, ports: &[i32]) -> Result<String, Status> {
        let request = PortForwardRequest {
            pod_sandbox_id: pod_id.into(),
            port: ports.to_vec(),
        };
        self.call(|mut c| async move { c.runtime_service.port_forward(request).await })
            .map(|r| r.url)
    }

    /// ContainerStats.
    pub fn container_stats(&mut self, id: &str) -> Result<ContainerStats, Status> {
        let request = ContainerStatsRequest {
            container_id: id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.container_stats(request).await })
            .map(|r| r.stats.unwrap_or_default())
    }

    /// ListContainerStats, optionally only those of `pod_id`.
    pub fn list_container_stats(
        &mut self,
        pod_id: Option<&str>,
    ) -> Result<Vec<ContainerStats>, Status> {
        let filter = pod_id.map(|id| ContainerStatsFilter {
            pod_sandbox_id: id.into(),
            ..Default::default()
        });
        let request = ListContainerStatsRequest { filter };
        self.call(|mut c| async move { c.runtime_service.list_container_stats(request).await })
            .map(|r| r.stats)
    }

    /// ReopenContainerLog: the runtime reopens log_path (after a rotation moved it away).
    pub fn reopen_container_log(&mut self, id: &str) -> Result<(), Status> {
        let request = ReopenContainerLogRequest {
            container_id: id.into(),
        };
        self.call(|mut c| async move { c.runtime_service.reopen_container_log(request).await })
            .map(drop)
    }

    /// ImageStatus: `None` when the image is not present.
    pub fn image_status(&mut self, image: &str) -> Result<Option<Image>, Status> {
        let request = ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        self.call(|mut c| async move { c.image_service.image_status(request).await })
            .map(|r| r.image)
    }

    /// ListImages.
    pub fn list_images(&mut self) -> Result<Vec<Image>, Status> {
        let request = ListImagesRequest { filter: None };
        self.call(|mut c| async move { c.image_service.list_images(request).await })
            .map(|r| r.images)
    }

    /// Runs one unary call on the client's runtime and unwraps the response.
    fn call<T, F, Fut>(&mut self, f: F) -> Result<T, Status>
    where
        F: FnOnce(Stubs) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let stubs = Stubs {
            runtime_service: self.runtime_service.clone(),
            image_service: self.image_service.clone(),
        };
        self.runtime
            .block_on(f(stubs))
            .map(tonic::Response::into_inner)
    }
}

/// Clones of the stubs moved into one call (tonic clients are cheap handles on one channel).
struct Stubs {
    runtime_service: RuntimeServiceClient<Channel>,
    image_service: ImageServiceClient<Channel>,
}
