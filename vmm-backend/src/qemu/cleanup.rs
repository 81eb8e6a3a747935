//! Cleaning up after a VM whose owner (shim, CLI) died without stopping it.
//!
//! A VM's state directory holds pid files: `qemu.pid` (QEMU's `-pidfile`) and one
//! `vfs-<tag>.pid` per virtiofsd. A process named there is killed only while its
//! `/proc/<pid>/cmdline` still mentions the state directory, so a pid that has since been
//! reused by an unrelated process is left alone.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

/// Why a state directory could not be cleaned up.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// The directory could not be listed.
    #[error("list {0}")]
    ListDir(PathBuf, #[source] std::io::Error),
    /// A process of the VM could not be killed.
    #[error("kill pid {pid} of {state_dir}")]
    Kill {
        /// The process.
        pid: i32,
        /// Its VM's state directory.
        state_dir: PathBuf,
        /// What went wrong.
        #[source]
        source: nix::Error,
    },
    /// A process of the VM was still alive after SIGKILL.
    #[error("pid {0} survived SIGKILL")]
    Survived(i32),
    /// The directory could not be removed.
    #[error("remove {0}")]
    RemoveDir(PathBuf, #[source] std::io::Error),
}

/// What [`cleanup_state_dir`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// Pids that belonged to the VM and were killed.
    pub killed: Vec<i32>,
    /// Pids named in pid files that no longer belonged to the VM (exited or reused).
    pub skipped: Vec<i32>,
    /// Whether the directory existed and was removed.
    pub removed_dir: bool,
}

/// The process table, behind a trait so the decision logic is tested without processes.
pub trait ProcessTable {
    /// The NUL-separated command line of `pid`, `None` when there is no such live process.
    fn cmdline(&self, pid: i32) -> Option<Vec<u8>>;
    /// Sends SIGKILL.
    fn kill(&self, pid: i32) -> nix::Result<()>;
    /// Whether `pid` still runs (a zombie does not).
    fn alive(&self, pid: i32) -> bool;
}

/// The host's process table through `/proc`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostProcesses;

impl ProcessTable for HostProcesses {
    fn cmdline(&self, pid: i32) -> Option<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|c| !c.is_empty())
    }

    fn kill(&self, pid: i32) -> nix::Result<()> {
        match nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL) {
            Err(nix::Error::ESRCH) => Ok(()),
            other => other,
        }
    }

    fn alive(&self, pid: i32) -> bool {
        // The state is the field after the parenthesised command name.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next());
        !matches!(state, None | Some("Z") | Some("X"))
    }
}

/// Kills what is left of the VM whose state directory is `state_dir` and removes the
/// directory. Safe to call on a directory that does not exist, or twice.
///
/// # Errors
///
/// Fails when the directory cannot be listed or removed, or a process of the VM cannot be
/// killed.
pub fn cleanup_state_dir(state_dir: &Path) -> Result<CleanupReport, CleanupError> {
    cleanup_with(state_dir, &HostProcesses)
}

/// [`cleanup_state_dir`] over any process table.
pub fn cleanup_with(
    state_dir: &Path,
    processes: &dyn ProcessTable,
) -> Result<CleanupReport, CleanupError> {
    let mut report = CleanupReport::default();
    let entries = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
        Err(e) => return Err(CleanupError::ListDir(state_dir.to_path_buf(), e)),
    };
    let marker = dir_marker(state_dir);

    let mut pids = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pid") {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            pids.extend(text.trim().parse::<i32>().ok().filter(|p| *p > 1));
        }
    }
    pids.sort_unstable();
    pids.dedup();
    for pid in pids {
        let belongs = processes
            .cmdline(pid)
            .is_some_and(|c| contains(&c, marker.as_bytes()));
        if !belongs {
            report.skipped.push(pid);
            continue;
        }
        processes.kill(pid).map_err(|source| CleanupError::Kill {
            pid,
            state_dir: state_dir.to_path_buf(),
            source,
        })?;
        report.killed.push(pid);
    }
    for &pid in &report.killed {
        wait_gone(processes, pid)?;
    }
    if !report.killed.is_empty() {
        tracing::info!(state_dir = %state_dir.display(), killed = ?report.killed, "killed the processes of an abandoned VM");
    }

    match std::fs::remove_dir_all(state_dir) {
        Ok(()) => report.removed_dir = true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(CleanupError::RemoveDir(state_dir.to_path_buf(), e)),
    }
    Ok(report)
}

/// The text a command line of this VM's processes contains: the directory with a trailing
/// slash, so `/run/x/vm` does not match `/run/x/vm2/qmp.sock`.
fn dir_marker(state_dir: &Path) -> String {
    format!("{}/", state_dir.to_string_lossy().trim_end_matches('/'))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn wait_gone(processes: &dyn ProcessTable, pid: i32) -> Result<(), CleanupError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while processes.alive(pid) {
        if Instant::now() >= deadline {
            return Err(CleanupError::Survived(pid));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
#[path = "cleanup_tests.rs"]
mod tests;
