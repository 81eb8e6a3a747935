//! Starts a container process: fork, exec of the agent itself in container init mode, and
//! the hand-shake that tells whether the process really runs.
//!
//! Between `fork` and `execve` the child of this multi-threaded process only calls `dup2`,
//! `fcntl`, `execve` and `_exit`, which are async-signal-safe (signal-safety(7)); everything
//! else happens in the re-executed, single-threaded container init.

use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::net::UnixStream,
    },
    time::Duration,
};

use nix::{fcntl::OFlag, unistd::Pid};
use tokio::sync::oneshot;

use crate::{
    error::AgentError,
    init::{
        wire::{self, InitRequest},
        CONTROL_FD, INIT_ARG,
    },
    process::reaper::{Reaped, Reaper},
};

/// How long a container init may take to set up before the agent gives up on it.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Starting the container init failed (set-up failures it reports are not these).
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// Creating a pipe or socket pair failed.
    #[error("create {0}")]
    Descriptors(&'static str, #[source] io::Error),
    /// `fork` failed.
    #[error("fork")]
    Fork(#[source] io::Error),
    /// Talking to the container init failed.
    #[error("talk to the container init")]
    Handshake(#[source] io::Error),
}

/// A started process: its pid, its exit, and the agent's ends of its stdio.
#[derive(Debug)]
pub struct Spawned {
    /// Guest pid.
    pub pid: Pid,
    /// Resolves when the reaper collects it.
    pub exit: oneshot::Receiver<Reaped>,
    /// The agent's ends of its stdio.
    pub io: ProcessIo,
}

/// The agent's ends of a process's stdio.
#[derive(Debug)]
pub struct ProcessIo {
    /// Reading end of its stdout pipe, or the pty master.
    pub stdout: OwnedFd,
    /// Reading end of its stderr pipe; `None` with a terminal.
    pub stderr: Option<OwnedFd>,
    /// Writing end of its stdin pipe (or a duplicate of the pty master); `None` without stdin.
    pub stdin: Option<OwnedFd>,
    /// The pty master, for resizing; `None` without a terminal.
    pub pty: Option<OwnedFd>,
}

/// The process's ends of its stdio, and the agent's.
struct StdioPlan {
    child: [OwnedFd; 3],
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    stdin: Option<OwnedFd>,
}

fn devnull() -> Result<OwnedFd, SpawnError> {
    File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| SpawnError::Descriptors("/dev/null", e))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| SpawnError::Descriptors("pipe", e.into()))
}

fn plan_stdio(terminal: bool, stdin: bool) -> Result<StdioPlan, SpawnError> {
    if terminal {
        // The init replaces these with the terminal it allocates.
        return Ok(StdioPlan {
            child: [devnull()?, devnull()?, devnull()?],
            stdout: None,
            stderr: None,
            stdin: None,
        });
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (child_in, agent_in) = if stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (devnull()?, None)
    };
    Ok(StdioPlan {
        child: [child_in, out_w, err_w],
        stdout: Some(out_r),
        stderr: Some(err_r),
        stdin: agent_in,
    })
}

/// Starts the process `request` describes and waits until it runs (`execve` done) or its
/// set-up failed.
///
/// # Errors
///
/// [`AgentError::Spawn`] when the agent could not start the init, or the set-up failure the
/// init reported ([`AgentError::ExecutableNotFound`], [`AgentError::ProcessSetup`]).
pub async fn spawn(reaper: &Reaper, request: InitRequest) -> Result<Spawned, AgentError> {
    let terminal = request.process.terminal;
    let stdio = plan_stdio(terminal, request.process.stdin)?;
    let (mut agent_end, init_end) =
        UnixStream::pair().map_err(|e| SpawnError::Descriptors("socket pair", e))?;

    let (pid, exit) = fork_init(reaper, &stdio.child, &init_end)?;
    drop(stdio.child);
    drop(init_end);

    let replies = tokio::task::spawn_blocking(move || {
        agent_end.set_read_timeout(Some(SETUP_TIMEOUT))?;
        wire::send_request(&mut agent_end, &request)?;
        wire::read_replies(&mut agent_end)
    })
    .await
    .map_err(|e| SpawnError::Handshake(io::Error::other(e)))?;
    let replies = match replies {
        Ok(replies) => replies,
        Err(e) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            return Err(SpawnError::Handshake(e).into());
        }
    };
    if let Some(failure) = replies.failure {
        return Err(failure.into());
    }

    let (stdout, stderr, stdin, pty) = match (terminal, replies.pty_master) {
        (true, Some(master)) => {
            let dup = |fd: &OwnedFd| {
                fd.try_clone()
                    .map_err(|e| SpawnError::Descriptors("pty duplicate", e))
            };
            let stdin = dup(&master)?;
            let reader = dup(&master)?;
            (reader, None, Some(stdin), Some(master))
        }
        (true, None) => {
            let e = io::Error::other("the container init sent no terminal");
            return Err(SpawnError::Handshake(e).into());
        }
        (false, _) => {
            let missing = || SpawnError::Descriptors("stdio", io::Error::other("missing pipe"));
            (
                stdio.stdout.ok_or_else(missing)?,
                stdio.stderr,
                stdio.stdin,
                None,
            )
        }
    };
    Ok(Spawned {
        pid,
        exit,
        io: ProcessIo {
            stdout,
            stderr,
            stdin,
            pty,
        },
    })
}

/// Forks and executes the agent binary in container init mode with `child_stdio` as 0-2 and
/// `control` as [`CONTROL_FD`]; the child is tracked by the reaper from the start.
fn fork_init(
    reaper: &Reaper,
    child_stdio: &[OwnedFd; 3],
    control: &UnixStream,
) -> Result<(Pid, oneshot::Receiver<Reaped>), SpawnError> {
    let exe = c"/proc/self/exe";
    let init_arg = CString::new(INIT_ARG).map_err(|e| SpawnError::Fork(io::Error::other(e)))?;
    let argv = [
        c"lightpod-init".as_ptr(),
        init_arg.as_ptr(),
        std::ptr::null(),
    ];
    let envp: [*const libc::c_char; 1] = [std::ptr::null()];
    let fds = [
        child_stdio[0].as_raw_fd(),
        child_stdio[1].as_raw_fd(),
        child_stdio[2].as_raw_fd(),
        control.as_raw_fd(),
    ];
    reaper.spawn_tracked(|| {
        // SAFETY: the child only runs `exec_child`, which makes async-signal-safe calls on
        // data prepared before the fork and never returns.
        match unsafe { libc::fork() } {
            -1 => Err(SpawnError::Fork(io::Error::last_os_error())),
            // SAFETY: in the child of fork; the arguments were built before it.
            0 => unsafe { exec_child(&fds, exe.as_ptr(), &argv, &envp) },
            pid => Ok(Pid::from_raw(pid)),
        }
    })
}

/// The forked child: puts stdio on 0-2 and the control socket on [`CONTROL_FD`], then executes the agent
/// binary in container init mode.
///
/// # Safety
///
/// Must only run in the child of `fork`; all pointers must be valid, NUL-terminated C strings
/// and arrays built before the fork.
unsafe fn exec_child(
    fds: &[i32; 4],
    exe: *const libc::c_char,
    argv: &[*const libc::c_char; 3],
    envp: &[*const libc::c_char; 1],
) -> ! {
    for (target, fd) in [0, 1, 2, CONTROL_FD].into_iter().zip(fds) {
        let ok = if *fd == target {
            // Same number: only drop close-on-exec.
            // SAFETY: fcntl on an open descriptor; async-signal-safe.
            unsafe { libc::fcntl(target, libc::F_SETFD, 0) >= 0 }
        } else {
            // SAFETY: dup2 of an open descriptor; async-signal-safe. The new one is not
            // close-on-exec. Sources are all above 3 (the agent's 0-2 are always open).
            unsafe { libc::dup2(*fd, target) >= 0 }
        };
        if !ok {
            // SAFETY: _exit is async-signal-safe and does not run atexit handlers.
            unsafe { libc::_exit(126) };
        }
    }
    // SAFETY: execve with valid, NULL-terminated arrays; returns only on failure.
    unsafe { libc::execve(exe, argv.as_ptr(), envp.as_ptr()) };
    // SAFETY: as above.
    unsafe { libc::_exit(127) }
}
