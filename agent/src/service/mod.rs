//! The `lightpod.agent.v1.Agent` ttrpc service. Each handler converts the protobuf request at
//! the edge, calls a plain method, and converts the answer back; errors become ttrpc
//! statuses in `error::to_status` only.

mod containers;
mod guest;
mod network;
mod processes;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use lightpod_proto::{agent as pb, agent_ttrpc::Agent};
use ttrpc::r#async::TtrpcContext;

use crate::{container::registry::Containers, error::to_status, network::connections::Connections};

/// Boot timings the agent reports in `GetGuestInfo`.
#[derive(Debug, Default)]
pub struct BootTimes {
    /// `CLOCK_BOOTTIME` when `main` began.
    pub agent_start_ns: u64,
    /// `CLOCK_BOOTTIME` when serving began.
    pub agent_ready_ns: OnceLock<u64>,
}

/// The agent's state behind the RPC handlers.
#[derive(Debug)]
pub struct AgentService {
    containers: Arc<Containers>,
    connections: Connections,
    boot: Arc<BootTimes>,
}

impl AgentService {
    /// A service over the guest's containers.
    pub fn new(containers: Arc<Containers>, boot: Arc<BootTimes>) -> AgentService {
        AgentService {
            containers,
            connections: Connections::default(),
            boot,
        }
    }
}

type Reply<T> = ttrpc::Result<T>;

#[async_trait]
impl Agent for AgentService {
    async fn get_guest_info(
        &self,
        _: &TtrpcContext,
        _: pb::GetGuestInfoRequest,
    ) -> Reply<pb::GuestInfo> {
        Ok(guest::guest_info(&self.boot))
    }

    async fn mount_storage(
        &self,
        _: &TtrpcContext,
        req: pb::MountStorageRequest,
    ) -> Reply<pb::Empty> {
        guest::mount_storage(&req).await.map_err(to_status)
    }

    async fn configure_network(
        &self,
        _: &TtrpcContext,
        req: pb::ConfigureNetworkRequest,
    ) -> Reply<pb::Empty> {
        network::configure(&req).await.map_err(to_status)
    }

    async fn create_container(
        &self,
        _: &TtrpcContext,
        req: pb::CreateContainerRequest,
    ) -> Reply<pb::Empty> {
        containers::create(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn start_process(
        &self,
        _: &TtrpcContext,
        req: pb::StartProcessRequest,
    ) -> Reply<pb::StartProcessResponse> {
        processes::start(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn signal_process(
        &self,
        _: &TtrpcContext,
        req: pb::SignalProcessRequest,
    ) -> Reply<pb::Empty> {
        processes::signal(&self.containers, &req).map_err(to_status)
    }

    async fn wait_process(&self, _: &TtrpcContext, req: pb::ProcessRef) -> Reply<pb::ProcessExit> {
        processes::wait(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn read_output(
        &self,
        _: &TtrpcContext,
        req: pb::ReadOutputRequest,
    ) -> Reply<pb::ReadOutputResponse> {
        processes::read_output(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn write_stdin(
        &self,
        _: &TtrpcContext,
        req: pb::WriteStdinRequest,
    ) -> Reply<pb::WriteStdinResponse> {
        processes::write_stdin(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn close_stdin(&self, _: &TtrpcContext, req: pb::ProcessRef) -> Reply<pb::Empty> {
        processes::close_stdin(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn resize_terminal(
        &self,
        _: &TtrpcContext,
        req: pb::ResizeTerminalRequest,
    ) -> Reply<pb::Empty> {
        processes::resize(&self.containers, &req).map_err(to_status)
    }

    async fn list_processes(
        &self,
        _: &TtrpcContext,
        req: pb::ContainerRef,
    ) -> Reply<pb::ListProcessesResponse> {
        containers::list_processes(&self.containers, &req).map_err(to_status)
    }

    async fn pause_container(&self, _: &TtrpcContext, req: pb::ContainerRef) -> Reply<pb::Empty> {
        containers::set_paused(&self.containers, &req, true)
            .await
            .map_err(to_status)
    }

    async fn resume_container(&self, _: &TtrpcContext, req: pb::ContainerRef) -> Reply<pb::Empty> {
        containers::set_paused(&self.containers, &req, false)
            .await
            .map_err(to_status)
    }

    async fn update_container(
        &self,
        _: &TtrpcContext,
        req: pb::UpdateContainerRequest,
    ) -> Reply<pb::Empty> {
        containers::update(&self.containers, &req).map_err(to_status)
    }

    async fn container_stats(
        &self,
        _: &TtrpcContext,
        req: pb::ContainerRef,
    ) -> Reply<pb::ContainerStats> {
        containers::stats(&self.containers, &req).map_err(to_status)
    }

    async fn remove_container(&self, _: &TtrpcContext, req: pb::ContainerRef) -> Reply<pb::Empty> {
        containers::remove(&self.containers, &req)
            .await
            .map_err(to_status)
    }

    async fn wait_oom_event(&self, _: &TtrpcContext, _: pb::Empty) -> Reply<pb::OomEvent> {
        Ok(containers::wait_oom(&self.containers).await)
    }

    async fn open_connection(
        &self,
        _: &TtrpcContext,
        req: pb::OpenConnectionRequest,
    ) -> Reply<pb::OpenConnectionResponse> {
        network::open_connection(&self.connections, &req)
            .await
            .map_err(to_status)
    }

    async fn read_connection(
        &self,
        _: &TtrpcContext,
        req: pb::ReadConnectionRequest,
    ) -> Reply<pb::ReadConnectionResponse> {
        network::read_connection(&self.connections, &req)
            .await
            .map_err(to_status)
    }

    async fn write_connection(
        &self,
        _: &TtrpcContext,
        req: pb::WriteConnectionRequest,
    ) -> Reply<pb::Empty> {
        network::write_connection(&self.connections, &req)
            .await
            .map_err(to_status)
    }

    async fn close_connection(
        &self,
        _: &TtrpcContext,
        req: pb::CloseConnectionRequest,
    ) -> Reply<pb::Empty> {
        network::close_connection(&self.connections, &req).map_err(to_status)
    }

    async fn shutdown(&self, _: &TtrpcContext, _: pb::Empty) -> Reply<pb::Empty> {
        guest::schedule_shutdown(Arc::clone(&self.containers));
        Ok(pb::Empty::new())
    }
}
