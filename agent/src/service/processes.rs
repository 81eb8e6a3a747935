//! Calls on processes: start, signal, wait, output, stdin, terminal size.

use lightpod_proto::agent as pb;
use nix::sys::signal::Signal;

use crate::{
    container::registry::Containers,
    convert::{self, SpecError},
    error::{AgentError, AgentResult},
    process::{stdio::OUTPUT_CAPACITY, Process, Stream},
    spec::WindowSize,
};

fn lookup(
    containers: &Containers,
    container_id: &str,
    exec_id: &str,
) -> AgentResult<std::sync::Arc<Process>> {
    if container_id.is_empty() {
        return Err(SpecError::Missing("container_id").into());
    }
    containers.get(container_id)?.process(exec_id)
}

/// `StartProcess`.
pub async fn start(
    containers: &Containers,
    req: &pb::StartProcessRequest,
) -> AgentResult<pb::StartProcessResponse> {
    if req.container_id.is_empty() {
        return Err(SpecError::Missing("container_id").into());
    }
    let process = if req.exec_id.is_empty() {
        None
    } else {
        convert::check_id("exec_id", &req.exec_id)?;
        let process = req
            .process
            .as_ref()
            .ok_or(SpecError::Missing("process of an exec"))?;
        Some(convert::process_spec(process)?)
    };
    let mut out = pb::StartProcessResponse::new();
    out.pid = containers
        .start(&req.container_id, &req.exec_id, process)
        .await?;
    Ok(out)
}

/// `SignalProcess`.
pub fn signal(containers: &Containers, req: &pb::SignalProcessRequest) -> AgentResult<pb::Empty> {
    let number = i32::try_from(req.signal).unwrap_or(-1);
    let signal = Signal::try_from(number).map_err(|_| SpecError::OutOfRange {
        field: "signal",
        value: i64::from(req.signal),
    })?;
    if req.container_id.is_empty() {
        return Err(SpecError::Missing("container_id").into());
    }
    containers.signal(&req.container_id, &req.exec_id, signal, req.all)?;
    Ok(pb::Empty::new())
}

/// `WaitProcess`.
pub async fn wait(containers: &Containers, req: &pb::ProcessRef) -> AgentResult<pb::ProcessExit> {
    let info = lookup(containers, &req.container_id, &req.exec_id)?
        .wait()
        .await;
    let mut out = pb::ProcessExit::new();
    out.exit_code = info.status.exit_code();
    out.signal = info.status.signal();
    out.exited_at_ns = info.exited_at_ns;
    out.oom_killed = info.oom_killed;
    Ok(out)
}

/// `ReadOutput`.
pub async fn read_output(
    containers: &Containers,
    req: &pb::ReadOutputRequest,
) -> AgentResult<pb::ReadOutputResponse> {
    let stream = match req.stream.enum_value() {
        Ok(pb::OutputStream::STDOUT) => Stream::Stdout,
        Ok(pb::OutputStream::STDERR) => Stream::Stderr,
        Err(value) => {
            return Err(SpecError::OutOfRange {
                field: "stream",
                value: i64::from(value),
            }
            .into())
        }
    };
    let max = match req.max_bytes as usize {
        0 => OUTPUT_CAPACITY,
        n => n.min(OUTPUT_CAPACITY),
    };
    let process = lookup(containers, &req.container_id, &req.exec_id)?;
    let (data, eof) = process.read_output(stream, max).await;
    let mut out = pb::ReadOutputResponse::new();
    out.data = data;
    out.eof = eof;
    Ok(out)
}

/// `WriteStdin`.
pub async fn write_stdin(
    containers: &Containers,
    req: &pb::WriteStdinRequest,
) -> AgentResult<pb::WriteStdinResponse> {
    let process = lookup(containers, &req.container_id, &req.exec_id)?;
    let mut out = pb::WriteStdinResponse::new();
    out.written = process.write_stdin(&req.data).await? as u32;
    Ok(out)
}

/// `CloseStdin`.
pub async fn close_stdin(containers: &Containers, req: &pb::ProcessRef) -> AgentResult<pb::Empty> {
    lookup(containers, &req.container_id, &req.exec_id)?
        .close_stdin()
        .await?;
    Ok(pb::Empty::new())
}

/// `ResizeTerminal`.
pub fn resize(containers: &Containers, req: &pb::ResizeTerminalRequest) -> AgentResult<pb::Empty> {
    let clamp = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    if req.width == 0 || req.height == 0 {
        return Err(AgentError::from(SpecError::OutOfRange {
            field: "terminal size",
            value: 0,
        }));
    }
    let size = WindowSize {
        cols: clamp(req.width),
        rows: clamp(req.height),
    };
    lookup(containers, &req.container_id, &req.exec_id)?.resize(size)?;
    Ok(pb::Empty::new())
}
