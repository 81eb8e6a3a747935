//! The shim v2 task service: each call converts its request at the edge, calls the task
//! registry of `lightpod_sandbox`, and converts the answer back. Failures become ttrpc
//! statuses in one place ([`crate::error::to_status`]).

mod control;
mod lifecycle;
mod query;

use std::sync::Arc;

use async_trait::async_trait;
use containerd_shim::{
    api::{
        CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
        DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, PauseRequest,
        PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest, StartRequest,
        StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse, UpdateTaskRequest,
        WaitRequest, WaitResponse,
    },
    asynchronous::ExitSignal,
    protos::shim::shim::CheckpointTaskRequest,
    Task, TtrpcContext, TtrpcResult,
};
use lightpod_sandbox::{config::ConfigError, ErrorKind, TaskError, TaskRegistry};

use crate::error::{to_status, unsupported};

/// The task service of one shim: the tasks of one pod (or one `ctr run`).
pub struct TaskService {
    registry: TaskRegistry,
    /// Why the configuration file could not be used, if it could not: creates fail with it.
    config_error: Option<String>,
    exit: Arc<ExitSignal>,
}

impl TaskService {
    /// A service over `registry`; `config_error` fails every create.
    pub fn new(
        registry: TaskRegistry,
        config_error: Option<ConfigError>,
        exit: Arc<ExitSignal>,
    ) -> TaskService {
        TaskService {
            registry,
            config_error: config_error.map(|e| lightpod_sandbox::chain(&e)),
            exit,
        }
    }
}

/// Logs a failed request and turns it into its status. A request for something that is
/// gone is routine for containerd (it kills and deletes what may have exited) and logs at
/// debug; anything else is an error of the request.
fn failed(call: &'static str, id: &str, error: TaskError) -> containerd_shim::protos::ttrpc::Error {
    if error.kind() == ErrorKind::NotFound {
        tracing::debug!(call, container = %id, error = %lightpod_sandbox::chain(&error),
            "request failed");
    } else {
        tracing::error!(call, container = %id, error = %lightpod_sandbox::chain(&error),
            "request failed");
    }
    to_status(&error)
}

#[async_trait]
impl Task for TaskService {
    async fn create(
        &self,
        _ctx: &TtrpcContext,
        req: CreateTaskRequest,
    ) -> TtrpcResult<CreateTaskResponse> {
        self.create_task(req).await
    }

    async fn start(&self, _ctx: &TtrpcContext, req: StartRequest) -> TtrpcResult<StartResponse> {
        self.start_process(req).await
    }

    async fn delete(&self, _ctx: &TtrpcContext, req: DeleteRequest) -> TtrpcResult<DeleteResponse> {
        self.delete_process(req).await
    }

    async fn exec(&self, _ctx: &TtrpcContext, req: ExecProcessRequest) -> TtrpcResult<Empty> {
        self.add_exec(req).await
    }

    async fn kill(&self, _ctx: &TtrpcContext, req: KillRequest) -> TtrpcResult<Empty> {
        self.kill_process(req).await
    }

    async fn wait(&self, _ctx: &TtrpcContext, req: WaitRequest) -> TtrpcResult<WaitResponse> {
        self.wait_process(req).await
    }

    async fn state(&self, _ctx: &TtrpcContext, req: StateRequest) -> TtrpcResult<StateResponse> {
        self.process_state(req)
    }

    async fn pids(&self, _ctx: &TtrpcContext, req: PidsRequest) -> TtrpcResult<PidsResponse> {
        self.task_pids(req).await
    }

    async fn stats(&self, _ctx: &TtrpcContext, req: StatsRequest) -> TtrpcResult<StatsResponse> {
        self.task_stats(req).await
    }

    async fn connect(
        &self,
        _ctx: &TtrpcContext,
        req: ConnectRequest,
    ) -> TtrpcResult<ConnectResponse> {
        self.connect_task(req)
    }

    async fn pause(&self, _ctx: &TtrpcContext, req: PauseRequest) -> TtrpcResult<Empty> {
        self.pause_task(req).await
    }

    async fn resume(&self, _ctx: &TtrpcContext, req: ResumeRequest) -> TtrpcResult<Empty> {
        self.resume_task(req).await
    }

    async fn close_io(&self, _ctx: &TtrpcContext, req: CloseIORequest) -> TtrpcResult<Empty> {
        self.close_stdin(req).await
    }

    async fn resize_pty(&self, _ctx: &TtrpcContext, req: ResizePtyRequest) -> TtrpcResult<Empty> {
        self.resize(req).await
    }

    async fn update(&self, _ctx: &TtrpcContext, req: UpdateTaskRequest) -> TtrpcResult<Empty> {
        self.update_resources(req).await
    }

    async fn checkpoint(
        &self,
        _ctx: &TtrpcContext,
        req: CheckpointTaskRequest,
    ) -> TtrpcResult<Empty> {
        tracing::debug!(container = %req.id, "checkpoint refused");
        Err(unsupported(
            "checkpoint is not supported by lightpod: a task's processes live in a VM, which \
             CRIU cannot capture",
        ))
    }

    async fn shutdown(&self, _ctx: &TtrpcContext, req: ShutdownRequest) -> TtrpcResult<Empty> {
        self.shutdown_shim(req).await
    }
}
