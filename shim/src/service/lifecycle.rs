//! Create, Start, Exec, Delete, Kill, Wait and Shutdown.

use containerd_shim::api::{
    CreateTaskRequest, CreateTaskResponse, DeleteRequest, DeleteResponse, Empty,
    ExecProcessRequest, KillRequest, ShutdownRequest, StartRequest, StartResponse, WaitRequest,
    WaitResponse,
};
use containerd_shim::protos::ttrpc;
use lightpod_sandbox::task::{CreateTask, StdioPaths};

use super::{failed, TaskService};
use crate::convert::{self, timestamp};

impl TaskService {
    pub(super) async fn create_task(
        &self,
        req: CreateTaskRequest,
    ) -> ttrpc::Result<CreateTaskResponse> {
        if let Some(error) = &self.config_error {
            return Err(ttrpc::Error::RpcStatus(ttrpc::get_status(
                ttrpc::Code::FAILED_PRECONDITION,
                format!("the lightpod configuration is invalid: {error}"),
            )));
        }
        if !req.checkpoint.is_empty() {
            return Err(crate::error::unsupported(
                "restoring from a checkpoint is not supported by lightpod",
            ));
        }
        let create = CreateTask {
            id: req.id.clone(),
            bundle: req.bundle.clone().into(),
            rootfs: convert::rootfs(&req.rootfs),
            stdio: StdioPaths::from_strings(&req.stdin, &req.stdout, &req.stderr, req.terminal),
            config_path: crate::runtime_options::config_path(req.options.as_ref())?,
        };
        let pid = self
            .registry
            .create(create)
            .await
            .map_err(|e| failed("Create", &req.id, e))?;
        let mut response = CreateTaskResponse::new();
        response.pid = pid;
        Ok(response)
    }

    pub(super) async fn start_process(&self, req: StartRequest) -> ttrpc::Result<StartResponse> {
        let pid = self
            .registry
            .start(&req.id, &req.exec_id)
            .await
            .map_err(|e| failed("Start", &req.id, e))?;
        let mut response = StartResponse::new();
        response.pid = pid;
        Ok(response)
    }

    pub(super) async fn add_exec(&self, req: ExecProcessRequest) -> ttrpc::Result<Empty> {
        let spec = convert::exec_process(&req.spec.value)?;
        let stdio = StdioPaths::from_strings(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        self.registry
            .exec(&req.id, &req.exec_id, spec, stdio)
            .await
            .map_err(|e| failed("Exec", &req.id, e))?;
        Ok(Empty::new())
    }

    pub(super) async fn delete_process(&self, req: DeleteRequest) -> ttrpc::Result<DeleteResponse> {
        let (pid, status) = self
            .registry
            .delete(&req.id, &req.exec_id)
            .await
            .map_err(|e| failed("Delete", &req.id, e))?;
        let mut response = DeleteResponse::new();
        response.pid = pid;
        response.exit_status = status.code;
        response.exited_at = timestamp(status.exited_at);
        Ok(response)
    }

    pub(super) async fn kill_process(&self, req: KillRequest) -> ttrpc::Result<Empty> {
        self.registry
            .kill(&req.id, &req.exec_id, req.signal, req.all)
            .await
            .map_err(|e| failed("Kill", &req.id, e))?;
        Ok(Empty::new())
    }

    pub(super) async fn wait_process(&self, req: WaitRequest) -> ttrpc::Result<WaitResponse> {
        let status = self
            .registry
            .wait(&req.id, &req.exec_id)
            .await
            .map_err(|e| failed("Wait", &req.id, e))?;
        let mut response = WaitResponse::new();
        response.exit_status = status.code;
        response.exited_at = timestamp(status.exited_at);
        Ok(response)
    }

    /// containerd asks a shim to shut down after each task delete; the shim goes once it
    /// holds no task (or at once with `now`, stopping what it still runs).
    pub(super) async fn shutdown_shim(&self, req: ShutdownRequest) -> ttrpc::Result<Empty> {
        if !req.now && !self.registry.is_empty() {
            return Ok(Empty::new());
        }
        self.registry.shutdown_all().await;
        tracing::info!(id = %req.id, "shim shutting down");
        self.exit.signal();
        Ok(Empty::new())
    }
}
