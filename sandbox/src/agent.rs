//! The host's client of the guest agent: ttrpc over the stream the backend hands out.

use std::time::Duration;

use lightpod_proto::{agent as pb, agent_ttrpc};
use lightpod_vmm::AgentStream;
use ttrpc::{asynchronous::transport::Socket, context};

use crate::error::{AgentCallError, SandboxError};

/// Time limit of calls that should answer at once (everything but the long polls).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to one guest's agent. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct AgentClient {
    inner: agent_ttrpc::AgentClient,
}

/// How long a call may take.
#[derive(Debug, Clone, Copy)]
enum Deadline {
    /// A call that answers promptly.
    Prompt,
    /// A call that waits for an event in the guest (process exit, output, OOM).
    Wait,
    /// A specific limit.
    Within(Duration),
}

fn ctx(deadline: Deadline) -> context::Context {
    match deadline {
        Deadline::Prompt => context::with_duration(CALL_TIMEOUT),
        Deadline::Within(d) => context::with_duration(d),
        Deadline::Wait => context::Context::default(),
    }
}

fn call_error(call: &'static str, deadline: Deadline, error: ttrpc::Error) -> SandboxError {
    let source = match error {
        ttrpc::Error::RpcStatus(status) => {
            let code = status.code();
            if code == ttrpc::Code::DEADLINE_EXCEEDED {
                let limit = match deadline {
                    Deadline::Within(d) => d,
                    _ => CALL_TIMEOUT,
                };
                AgentCallError::Timeout(limit)
            } else {
                AgentCallError::Status {
                    code,
                    message: status.message.clone(),
                }
            }
        }
        other => AgentCallError::Transport(other.to_string()),
    };
    SandboxError::Agent { call, source }
}

macro_rules! agent_call {
    ($(#[$doc:meta])* $name:ident, $rpc:literal, $req:ty, $resp:ty, $deadline:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, req: &$req) -> Result<$resp, SandboxError> {
            let deadline = $deadline;
            self.inner.$name(ctx(deadline), req).await.map_err(|e| call_error($rpc, deadline, e))
        }
    };
}

impl AgentClient {
    /// Wraps a connected agent stream.
    pub fn new(stream: AgentStream) -> AgentClient {
        let client = ttrpc::asynchronous::Client::new(Socket::new(stream));
        AgentClient {
            inner: agent_ttrpc::AgentClient::new(client),
        }
    }

    /// Asks for the guest's identity, waiting at most `limit` (the first call after boot).
    pub async fn guest_info_within(&self, limit: Duration) -> Result<pb::GuestInfo, SandboxError> {
        let deadline = Deadline::Within(limit);
        self.inner
            .get_guest_info(ctx(deadline), &pb::GetGuestInfoRequest::new())
            .await
            .map_err(|e| call_error("GetGuestInfo", deadline, e))
    }

    agent_call!(
        /// Identity and timings of the guest.
        get_guest_info, "GetGuestInfo", pb::GetGuestInfoRequest, pb::GuestInfo, Deadline::Prompt);
    agent_call!(
        /// Mounts shared storage in the guest.
        mount_storage, "MountStorage", pb::MountStorageRequest, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Configures the guest's network.
        configure_network, "ConfigureNetwork", pb::ConfigureNetworkRequest, pb::Empty,
        Deadline::Prompt);
    agent_call!(
        /// Prepares a container.
        create_container, "CreateContainer", pb::CreateContainerRequest, pb::Empty,
        Deadline::Prompt);
    agent_call!(
        /// Starts a container's init or an exec process.
        start_process, "StartProcess", pb::StartProcessRequest, pb::StartProcessResponse,
        Deadline::Prompt);
    agent_call!(
        /// Signals one process or all processes of a container.
        signal_process, "SignalProcess", pb::SignalProcessRequest, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Waits for a process to exit.
        wait_process, "WaitProcess", pb::ProcessRef, pb::ProcessExit, Deadline::Wait);
    agent_call!(
        /// Reads the next chunk of output (long poll).
        read_output, "ReadOutput", pb::ReadOutputRequest, pb::ReadOutputResponse, Deadline::Wait);
    agent_call!(
        /// Writes to stdin; may wait while the process does not read.
        write_stdin, "WriteStdin", pb::WriteStdinRequest, pb::WriteStdinResponse, Deadline::Wait);
    agent_call!(
        /// Closes stdin.
        close_stdin, "CloseStdin", pb::ProcessRef, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Resizes a terminal.
        resize_terminal, "ResizeTerminal", pb::ResizeTerminalRequest, pb::Empty,
        Deadline::Prompt);
    agent_call!(
        /// Lists a container's pids.
        list_processes, "ListProcesses", pb::ContainerRef, pb::ListProcessesResponse,
        Deadline::Prompt);
    agent_call!(
        /// Freezes a container.
        pause_container, "PauseContainer", pb::ContainerRef, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Thaws a container.
        resume_container, "ResumeContainer", pb::ContainerRef, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Applies new limits.
        update_container, "UpdateContainer", pb::UpdateContainerRequest, pb::Empty,
        Deadline::Prompt);
    agent_call!(
        /// Reads a container's cgroup figures.
        container_stats, "ContainerStats", pb::ContainerRef, pb::ContainerStats,
        Deadline::Prompt);
    agent_call!(
        /// Tears a container down in the guest.
        remove_container, "RemoveContainer", pb::ContainerRef, pb::Empty, Deadline::Prompt);
    agent_call!(
        /// Waits for the next OOM kill in any container.
        wait_oom_event, "WaitOomEvent", pb::Empty, pb::OomEvent, Deadline::Wait);
    agent_call!(
        /// Dials a TCP port on the guest's loopback.
        open_connection, "OpenConnection", pb::OpenConnectionRequest, pb::OpenConnectionResponse,
        Deadline::Prompt);
    agent_call!(
        /// Reads from a forwarded connection (long poll).
        read_connection, "ReadConnection", pb::ReadConnectionRequest,
        pb::ReadConnectionResponse, Deadline::Wait);
    agent_call!(
        /// Writes to a forwarded connection.
        write_connection, "WriteConnection", pb::WriteConnectionRequest, pb::Empty,
        Deadline::Wait);
    agent_call!(
        /// Closes a forwarded connection.
        close_connection, "CloseConnection", pb::CloseConnectionRequest, pb::Empty,
        Deadline::Prompt);

    /// Asks the guest to power off; waits at most `limit` for the answer.
    pub async fn shutdown(&self, limit: Duration) -> Result<(), SandboxError> {
        let deadline = Deadline::Within(limit);
        self.inner
            .shutdown(ctx(deadline), &pb::Empty::new())
            .await
            .map(|_| ())
            .map_err(|e| call_error("Shutdown", deadline, e))
    }
}
