//! What the agent and a container init say to each other over their socket pair.
//!
//! Agent → init: one JSON [`InitRequest`], then the agent shuts its write side. Init → agent:
//! newline-separated JSON [`Reply`] values; a pty master travels as `SCM_RIGHTS` with its
//! reply. End of file without a failure means `execve` succeeded.

use std::{
    io::{self, IoSlice, IoSliceMut, Read, Write},
    net::Shutdown,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
        unix::net::UnixStream,
    },
    path::PathBuf,
};

use nix::{
    fcntl::{fcntl, FcntlArg, FdFlag},
    sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags},
};
use serde::{Deserialize, Serialize};

use crate::{
    init::SetupFailure,
    spec::{ContainerSetup, ProcessSpec},
};

/// Largest request the init accepts: far above any real container description.
const MAX_REQUEST: u64 = 16 << 20;

/// Instructions for one container init.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitRequest {
    /// Container the process belongs to (for messages).
    pub container_id: String,
    /// The container's cgroup directory in the guest, joined first.
    pub cgroup_dir: PathBuf,
    /// Whether to build the container or join it.
    pub target: InitTarget,
    /// The process to run.
    pub process: ProcessSpec,
}

/// Where the process runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum InitTarget {
    /// Create the container's namespaces and filesystem: its init process.
    Create {
        /// What to build.
        setup: ContainerSetup,
        /// Guest pid of the pod sandbox's init, whose UTS and IPC namespaces the container
        /// joins instead of creating its own.
        pod_init_pid: Option<i32>,
    },
    /// Join the namespaces of the container's running init: an exec process.
    Join {
        /// Guest pid of the container's init.
        init_pid: i32,
    },
}

/// One message from the init to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The master side of the process's terminal is attached to this message.
    PtyMaster,
    /// Set-up failed; the init exits without running the process.
    Failure(SetupFailure),
}

/// What the agent learned from an init.
#[derive(Debug, Default)]
pub struct Replies {
    /// Terminal master, when the process has a terminal.
    pub pty_master: Option<OwnedFd>,
    /// Why set-up failed, if it did.
    pub failure: Option<SetupFailure>,
}

/// Agent side: sends the request and closes the writing direction.
pub fn send_request(stream: &mut UnixStream, request: &InitRequest) -> io::Result<()> {
    let bytes = serde_json::to_vec(request).map_err(io::Error::other)?;
    stream.write_all(&bytes)?;
    stream.shutdown(Shutdown::Write)
}

/// Agent side: reads replies until the init closes the socket (by `execve` or by exiting).
pub fn read_replies(stream: &mut UnixStream) -> io::Result<Replies> {
    let mut bytes = Vec::new();
    let mut fds: Vec<OwnedFd> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let mut cmsg = nix::cmsg_space!([RawFd; 2]);
        let mut iov = [IoSliceMut::new(&mut chunk)];
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = c {
                // SAFETY: SCM_RIGHTS installed these descriptors in this process for us
                // alone; wrapping them makes sure they are closed.
                fds.extend(
                    received
                        .into_iter()
                        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                );
            }
        }
        let n = msg.bytes;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }

    let mut replies = Replies::default();
    let mut fds = fds.into_iter();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        match serde_json::from_slice::<Reply>(line).map_err(io::Error::other)? {
            Reply::PtyMaster => replies.pty_master = fds.next(),
            Reply::Failure(failure) => replies.failure = Some(failure),
        }
    }
    Ok(replies)
}

/// Init side: reads the request and marks the socket close-on-exec, so `execve` closes it.
pub fn read_request(stream: &mut UnixStream) -> io::Result<InitRequest> {
    fcntl(&*stream, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    let mut bytes = Vec::new();
    stream.take(MAX_REQUEST).read_to_end(&mut bytes)?;
    serde_json::from_slice(&bytes).map_err(io::Error::other)
}

/// Init side: hands the terminal master to the agent.
pub fn send_pty_master(stream: &mut UnixStream, master: &OwnedFd) -> io::Result<()> {
    let line = reply_line(&Reply::PtyMaster)?;
    let fds = [master.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let sent = sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(&line)],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    if sent < line.len() {
        stream.write_all(&line[sent..])?;
    }
    Ok(())
}

/// Init side: reports why set-up failed.
pub fn send_failure(stream: &mut UnixStream, failure: &SetupFailure) -> io::Result<()> {
    stream.write_all(&reply_line(&Reply::Failure(failure.clone()))?)
}

fn reply_line(reply: &Reply) -> io::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(reply).map_err(io::Error::other)?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use std::{fs::File, io::Seek};

    use super::*;

    fn request() -> InitRequest {
        InitRequest {
            container_id: "c1".into(),
            cgroup_dir: "/sys/fs/cgroup/lightpod/c1".into(),
            target: InitTarget::Join { init_pid: 42 },
            process: ProcessSpec {
                args: vec!["sh".into()],
                ..Default::default()
            },
        }
    }

    #[test]
    fn request_round_trips() {
        let (mut agent, mut init) = UnixStream::pair().expect("socket pair");
        send_request(&mut agent, &request()).expect("send");
        assert_eq!(read_request(&mut init).expect("read"), request());
    }

    #[test]
    fn replies_carry_the_pty_and_the_failure() {
        let (mut agent, mut init) = UnixStream::pair().expect("socket pair");
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(b"through the socket").expect("write");
        send_pty_master(&mut init, &OwnedFd::from(file.try_clone().expect("dup"))).expect("pty");
        let failure = SetupFailure::Step {
            step: "chdir /x".into(),
            detail: "ENOENT".into(),
        };
        send_failure(&mut init, &failure).expect("failure");
        drop(init);

        let replies = read_replies(&mut agent).expect("replies");
        assert_eq!(replies.failure, Some(failure));
        let mut passed = File::from(replies.pty_master.expect("a descriptor was passed"));
        passed.rewind().expect("seek");
        let mut text = String::new();
        passed.read_to_string(&mut text).expect("read");
        assert_eq!(text, "through the socket", "the passed fd is the same file");
    }

    #[test]
    fn end_of_file_alone_means_exec_succeeded() {
        let (mut agent, init) = UnixStream::pair().expect("socket pair");
        drop(init);
        let replies = read_replies(&mut agent).expect("replies");
        assert!(replies.failure.is_none() && replies.pty_master.is_none());
    }
}
