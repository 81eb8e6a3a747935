//! Pause, Resume, CloseIO, ResizePty and Update.

use containerd_shim::api::{
    CloseIORequest, Empty, PauseRequest, ResizePtyRequest, ResumeRequest, UpdateTaskRequest,
};
use containerd_shim::protos::ttrpc;

use super::{failed, TaskService};
use crate::convert;

impl TaskService {
    pub(super) async fn pause_task(&self, req: PauseRequest) -> ttrpc::Result<Empty> {
        self.registry
            .pause(&req.id)
            .await
            .map_err(|e| failed("Pause", &req.id, e))?;
        Ok(Empty::new())
    }

    pub(super) async fn resume_task(&self, req: ResumeRequest) -> ttrpc::Result<Empty> {
        self.registry
            .resume(&req.id)
            .await
            .map_err(|e| failed("Resume", &req.id, e))?;
        Ok(Empty::new())
    }

    pub(super) async fn close_stdin(&self, req: CloseIORequest) -> ttrpc::Result<Empty> {
        if req.stdin {
            self.registry
                .close_io(&req.id, &req.exec_id)
                .await
                .map_err(|e| failed("CloseIO", &req.id, e))?;
        }
        Ok(Empty::new())
    }

    pub(super) async fn resize(&self, req: ResizePtyRequest) -> ttrpc::Result<Empty> {
        self.registry
            .resize_pty(&req.id, &req.exec_id, req.width, req.height)
            .await
            .map_err(|e| failed("ResizePty", &req.id, e))?;
        Ok(Empty::new())
    }

    pub(super) async fn update_resources(&self, req: UpdateTaskRequest) -> ttrpc::Result<Empty> {
        let resources = convert::resources(&req.resources.value)?;
        self.registry
            .update(&req.id, &resources)
            .await
            .map_err(|e| failed("Update", &req.id, e))?;
        Ok(Empty::new())
    }
}
