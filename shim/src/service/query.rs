//! State, Pids, Stats and Connect.

use containerd_shim::protos::ttrpc;
use containerd_shim::{
    api::{
        ConnectRequest, ConnectResponse, PidsRequest, PidsResponse, StateRequest, StateResponse,
        StatsRequest, StatsResponse,
    },
    protos::{protobuf::MessageField, types::task::ProcessInfo},
    util::convert_to_any,
};

use super::{failed, TaskService};
use crate::convert::{self, timestamp};

impl TaskService {
    pub(super) fn process_state(&self, req: StateRequest) -> ttrpc::Result<StateResponse> {
        let (info, bundle) = self
            .registry
            .state(&req.id, &req.exec_id)
            .map_err(|e| failed("State", &req.id, e))?;
        let path =
            |p: Option<std::path::PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        let mut response = StateResponse::new();
        response.id = req.id;
        response.exec_id = req.exec_id;
        response.bundle = bundle.display().to_string();
        response.pid = info.pid;
        response.status = convert::status(info.state).into();
        response.stdin = path(info.stdio.stdin);
        response.stdout = path(info.stdio.stdout);
        response.stderr = path(info.stdio.stderr);
        response.terminal = info.stdio.terminal;
        if let Some(exit) = info.exit {
            response.exit_status = exit.code;
            response.exited_at = timestamp(exit.exited_at);
        }
        Ok(response)
    }

    pub(super) async fn task_pids(&self, req: PidsRequest) -> ttrpc::Result<PidsResponse> {
        let pids = self
            .registry
            .pids(&req.id)
            .await
            .map_err(|e| failed("Pids", &req.id, e))?;
        let mut response = PidsResponse::new();
        response.processes = pids
            .into_iter()
            .map(|pid| {
                let mut info = ProcessInfo::new();
                info.pid = pid;
                info
            })
            .collect();
        Ok(response)
    }

    pub(super) async fn task_stats(&self, req: StatsRequest) -> ttrpc::Result<StatsResponse> {
        let stats = self
            .registry
            .stats(&req.id)
            .await
            .map_err(|e| failed("Stats", &req.id, e))?;
        let any = convert_to_any(Box::new(convert::metrics(&stats))).map_err(|e| {
            ttrpc::Error::RpcStatus(ttrpc::get_status(ttrpc::Code::INTERNAL, e.to_string()))
        })?;
        let mut response = StatsResponse::new();
        response.stats = MessageField::some(any);
        Ok(response)
    }

    pub(super) fn connect_task(&self, req: ConnectRequest) -> ttrpc::Result<ConnectResponse> {
        let mut response = ConnectResponse::new();
        response.shim_pid = std::process::id();
        response.task_pid = self.registry.task_pid(&req.id).unwrap_or(0);
        response.version = env!("CARGO_PKG_VERSION").to_string();
        Ok(response)
    }
}
