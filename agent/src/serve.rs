//! The agent proper: reaper, cgroups, loopback, channel, ttrpc server.

use std::{convert::Infallible, path::PathBuf, sync::Arc};

use lightpod_proto::agent_ttrpc::create_agent;
use ttrpc::r#async::Server;

use crate::{
    boot::power,
    channel::{self, ChannelError},
    clock,
    cmdline::AgentParams,
    container::{cgroup, registry::Containers},
    error, network,
    process::reaper::Reaper,
    service::{AgentService, BootTimes},
};

/// Serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The SIGCHLD handler could not be installed.
    #[error("install the child reaper")]
    Reaper(#[source] std::io::Error),
    /// The channel to the host could not be opened.
    #[error("open the agent channel")]
    Channel(#[from] ChannelError),
    /// The ttrpc server did not start.
    #[error("start the ttrpc server")]
    Server(#[source] ttrpc::Error),
}

/// Sets the guest up for containers and serves the host until `Shutdown` powers off.
///
/// # Errors
///
/// A step without which the host cannot be served failed.
pub async fn serve(params: AgentParams, agent_start_ns: u64) -> Result<Infallible, ServeError> {
    let reaper = Reaper::new();
    reaper.run().map_err(ServeError::Reaper)?;

    let cgroup_root = PathBuf::from(cgroup::CGROUP_ROOT);
    if power::is_pid1() {
        if let Err(err) = network::loopback_up().await {
            tracing::warn!(error = %error::chain(&err), "bringing up lo failed");
        }
        if let Err(err) = cgroup::prepare_hierarchy(&cgroup_root) {
            tracing::warn!(
                error = %error::chain(&err),
                "preparing cgroups failed; creating containers will fail"
            );
        }
    } else {
        // Outside a guest the host's cgroups are not ours to change.
        tracing::warn!(
            "not PID 1: containers need {}/lightpod prepared by hand",
            cgroup::CGROUP_ROOT
        );
    }

    let listener = channel::listen(&params.channel).await?;
    let boot = Arc::new(BootTimes {
        agent_start_ns,
        ..Default::default()
    });
    let containers = Arc::new(Containers::new(cgroup_root, reaper));
    let service = AgentService::new(containers, Arc::clone(&boot));
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(create_agent(Arc::new(service)));
    server.start().await.map_err(ServeError::Server)?;

    let ready_ns = clock::boottime_ns();
    let _ = boot.agent_ready_ns.set(ready_ns);
    tracing::info!(
        start_ms = agent_start_ns / 1_000_000,
        ready_ms = ready_ns / 1_000_000,
        "agent ready"
    );
    std::future::pending().await
}
