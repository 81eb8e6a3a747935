//! Calls on whole containers: create, remove, pause/resume, update, stats, processes, OOM.

use lightpod_proto::agent as pb;

use crate::{
    clock,
    container::registry::Containers,
    convert::{self, SpecError},
    error::AgentResult,
};

fn id(req: &pb::ContainerRef) -> AgentResult<&str> {
    if req.container_id.is_empty() {
        return Err(SpecError::Missing("container_id").into());
    }
    Ok(&req.container_id)
}

/// `CreateContainer`.
pub async fn create(
    containers: &Containers,
    req: &pb::CreateContainerRequest,
) -> AgentResult<pb::Empty> {
    let spec = convert::container(req)?;
    if !req.share_pid_with.is_empty() {
        tracing::debug!(
            container = %spec.id,
            with = %req.share_pid_with,
            "share_pid_with needs nothing: every container of the guest shares its PID namespace"
        );
    }
    containers.create(spec).await?;
    Ok(pb::Empty::new())
}

/// `RemoveContainer`.
pub async fn remove(containers: &Containers, req: &pb::ContainerRef) -> AgentResult<pb::Empty> {
    containers.remove(id(req)?).await?;
    Ok(pb::Empty::new())
}

/// `PauseContainer` / `ResumeContainer`.
pub async fn set_paused(
    containers: &Containers,
    req: &pb::ContainerRef,
    paused: bool,
) -> AgentResult<pb::Empty> {
    containers.set_paused(id(req)?, paused).await?;
    Ok(pb::Empty::new())
}

/// `UpdateContainer`.
pub fn update(containers: &Containers, req: &pb::UpdateContainerRequest) -> AgentResult<pb::Empty> {
    if req.container_id.is_empty() {
        return Err(SpecError::Missing("container_id").into());
    }
    let resources = req
        .resources
        .as_ref()
        .ok_or(SpecError::Missing("resources"))?;
    containers.update(&req.container_id, &convert::resources(resources)?)?;
    Ok(pb::Empty::new())
}

/// `ContainerStats`.
pub fn stats(containers: &Containers, req: &pb::ContainerRef) -> AgentResult<pb::ContainerStats> {
    let s = containers.stats(id(req)?)?;
    let mut out = pb::ContainerStats::new();
    out.timestamp_ns = clock::realtime_ns();
    out.cpu_usage_ns = s.cpu_usage_ns;
    out.cpu_user_ns = s.cpu_user_ns;
    out.cpu_system_ns = s.cpu_system_ns;
    out.memory_usage_bytes = s.memory_usage;
    out.memory_limit_bytes = s.memory_limit;
    out.memory_working_set_bytes = s.memory_working_set;
    out.memory_rss_bytes = s.memory_rss;
    out.memory_cache_bytes = s.memory_cache;
    out.pids_current = s.pids_current;
    out.pids_limit = s.pids_limit;
    out.oom_kills = s.oom_kills;
    Ok(out)
}

/// `ListProcesses`.
pub fn list_processes(
    containers: &Containers,
    req: &pb::ContainerRef,
) -> AgentResult<pb::ListProcessesResponse> {
    let mut out = pb::ListProcessesResponse::new();
    out.pids = containers.pids(id(req)?)?;
    Ok(out)
}

/// `WaitOomEvent`.
pub async fn wait_oom(containers: &Containers) -> pb::OomEvent {
    let mut out = pb::OomEvent::new();
    out.container_id = containers.wait_oom().await;
    out
}
