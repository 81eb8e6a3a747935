//! Processes of an instance: commands run with a time limit, whether containerd still runs,
//! and the shims that outlive it.

use std::{
    io::{self, Read},
    path::Path,
    process::{Command, Output, Stdio},
    thread,
    time::{Duration, Instant},
};

use nix::{
    errno::Errno,
    sys::{
        signal::{kill, Signal},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    },
    unistd::Pid,
};

/// How often a wait polls.
const POLL: Duration = Duration::from_millis(20);

/// Runs `command` with stdin closed and its output captured; `None` when it did not finish
/// within `limit` (it is killed then).
pub(super) fn output_within(command: &mut Command, limit: Duration) -> io::Result<Option<Output>> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // Both pipes are drained while the command runs, so a chatty one cannot block on a full pipe.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(POLL);
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    Ok(status.map(|status| Output {
        status,
        stdout,
        stderr,
    }))
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// Whether `pid` is still a live process (a zombie is not). A child of this process that
/// exited is reaped on the way.
pub(super) fn is_running(pid: u32) -> bool {
    let Some(pid) = as_pid(pid) else {
        return false;
    };
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::StillAlive) => return true,
        Ok(_) => return false,
        // ECHILD: not a child of this process; ask the kernel whether it exists.
        Err(_) => {}
    }
    kill(pid, None).is_ok() && !is_zombie(pid)
}

/// Whether `pid` is the containerd started with `config`, not some process that reused a
/// stale pid.
pub(super) fn is_containerd_of(pid: u32, config: &Path) -> bool {
    let needle = format!("--config {}", config.display());
    is_running(pid) && cmdline(pid).is_some_and(|line| line.contains(&needle))
}

/// Waits up to `limit` for `pid` to be gone; whether it is.
pub(super) fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while is_running(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
    true
}

/// Sends `signal` to `pid`; ESRCH (already gone) counts as success.
pub(super) fn signal(pid: u32, signal: Signal) -> Result<(), Errno> {
    let Some(pid) = as_pid(pid) else {
        return Ok(());
    };
    match kill(pid, signal) {
        Err(Errno::ESRCH) => Ok(()),
        other => other,
    }
}

/// Shims of the containerd at `address` still running: their pids and command lines.
pub(super) fn shims_of(address: &Path) -> Vec<(u32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != me)
        .filter_map(|pid| Some((pid, cmdline(pid)?)))
        .filter(|(_, line)| is_shim_of(line, address))
        .collect()
}

/// Shims carry the containerd socket they serve in `-address <socket>`.
fn is_shim_of(cmdline: &str, address: &Path) -> bool {
    let flag = format!("-address {}", address.display());
    cmdline.contains("containerd-shim")
        && cmdline
            .match_indices(&flag)
            .any(|(at, _)| matches!(cmdline[at + flag.len()..].chars().next(), None | Some(' ')))
}

/// The command line of `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(text.trim_end().to_string())
}

fn is_zombie(pid: Pid) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The state follows the command name, which is in parentheses and may hold spaces.
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace().next().map(|state| state == "Z")
        })
        .unwrap_or(false)
}

fn as_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_told_apart_by_their_socket() {
        let address = Path::new("/tmp/lp/containerd.sock");
        let cases = [
            (
                "runc shim",
                "/usr/bin/containerd-shim-runc-v2 -namespace k8s.io -id abc -address /tmp/lp/containerd.sock",
                true,
            ),
            (
                "socket in the middle",
                "containerd-shim-lightpod-v2 -namespace x -address /tmp/lp/containerd.sock -publish-binary /usr/bin/containerd",
                true,
            ),
            (
                "another instance",
                "containerd-shim-runc-v2 -namespace k8s.io -address /tmp/lp2/containerd.sock",
                false,
            ),
            (
                "longer socket path",
                "containerd-shim-runc-v2 -address /tmp/lp/containerd.sock.other",
                false,
            ),
            ("containerd itself", "containerd --config /tmp/lp/config.toml", false),
        ];
        for (name, line, want) in cases {
            assert_eq!(is_shim_of(line, address), want, "case {name}");
        }
    }

    #[test]
    fn commands_are_cut_off_at_their_limit() {
        let done = output_within(Command::new("echo").arg("hi"), Duration::from_secs(10))
            .unwrap()
            .unwrap();
        assert_eq!(done.stdout, b"hi\n");
        let started = Instant::now();
        let cut =
            output_within(Command::new("sleep").arg("10"), Duration::from_millis(100)).unwrap();
        assert!(cut.is_none(), "sleep 10 cannot finish in 100 ms");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn an_exited_child_is_not_running() {
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        assert!(wait_gone(pid, Duration::from_secs(10)), "true exits");
        assert!(!is_running(pid));
        // Already reaped by is_running: wait reports the error, not a hang.
        let _ = child.try_wait();
    }
}
