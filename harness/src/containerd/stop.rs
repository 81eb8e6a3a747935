//! Stopping an instance and removing everything it made: CRI pods (through CRI, so CNI tears
//! their networks down as kubelet would have it), tasks and containers of every namespace,
//! containerd, the shims that outlive it, mounts, the bridge, portmap's chains if the instance
//! brought them in, `net.ipv4.ip_forward`, host directories it created, and its directory.

use std::{
    io,
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use nix::sys::signal::Signal;

use super::{ctr::Ctr, mounts, network, process, state::InstanceState};
use crate::cri::CriClient;

/// How long one `ctr` call may take while stopping.
const CTR_LIMIT: Duration = Duration::from_secs(30);
/// How long containerd has to exit after SIGTERM, then after SIGKILL.
const TERM_LIMIT: Duration = Duration::from_secs(10);
const KILL_LIMIT: Duration = Duration::from_secs(5);
/// Time for the kernel to release what killed shims held before their mounts are undone.
const SHIM_GRACE: Duration = Duration::from_millis(200);

/// Why stopping an instance did not remove all of it.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// Not root.
    #[error("must run as root to stop a containerd instance")]
    NotRoot,
    /// The directory could not be made absolute.
    #[error("make {} absolute", dir.display())]
    AbsoluteDir {
        /// The directory as given.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The instance record could not be read.
    #[error("read the instance record in {}", dir.display())]
    ReadState {
        /// The instance directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The directory holds no instance record but other files: it is left alone.
    #[error("{} holds no containerd instance; left in place", dir.display())]
    NotAnInstance {
        /// The directory.
        dir: PathBuf,
    },
    /// Some of the instance could not be removed.
    #[error("left behind: {}", left.join("; "))]
    Leftovers {
        /// What is left, one item each.
        left: Vec<String>,
    },
}

/// What becomes of the instance directory once it is emptied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DirAfter {
    /// It goes too.
    Remove,
    /// It stays, empty: it existed before the instance did.
    Empty,
}

/// Stops the instance in `dir` (started by this process or another one) and removes all of
/// it, `dir` included. A directory that does not exist is nothing to stop.
///
/// # Errors
///
/// Lists what could not be removed; everything else is gone by then.
pub fn stop(dir: &Path) -> Result<(), StopError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(StopError::NotRoot);
    }
    let dir = std::path::absolute(dir).map_err(|source| StopError::AbsoluteDir {
        dir: dir.to_path_buf(),
        source,
    })?;
    if !dir.exists() {
        tracing::info!(dir = %dir.display(), "nothing to stop");
        return Ok(());
    }
    let state = InstanceState::read(&dir).map_err(|source| StopError::ReadState {
        dir: dir.clone(),
        source,
    })?;
    let Some(state) = state else {
        // A start that failed its checks left the directory as it was; an empty one goes.
        return match std::fs::remove_dir(&dir) {
            Ok(()) => Ok(()),
            Err(_) => Err(StopError::NotAnInstance { dir }),
        };
    };
    let left = teardown(&dir, &state, DirAfter::Remove);
    if left.is_empty() {
        tracing::info!(dir = %dir.display(), "containerd stopped and its directory removed");
        Ok(())
    } else {
        Err(StopError::Leftovers { left })
    }
}

/// Undoes everything of the instance `state` describes, as far as it got; what is left.
pub(super) fn teardown(dir: &Path, state: &InstanceState, after: DirAfter) -> Vec<String> {
    let mut left = Vec::new();
    if let Some(pid) = state.pid {
        if process::is_containerd_of(pid, &state.config) {
            remove_pods(&state.address);
            remove_containers(&Ctr::new(&state.address).with_limit(CTR_LIMIT));
            terminate(pid);
        }
    }
    kill_shims(&state.address);
    mounts::unmount_all_under(dir);
    left.extend(network::delete_bridge(&state.bridge));
    if state.created_portmap_chains {
        left.extend(network::remove_portmap_chains());
    }
    if let Some(value) = &state.ip_forward {
        if let Err(e) = network::set_ip_forward(value) {
            left.push(format!("net.ipv4.ip_forward not restored to {value}: {e}"));
        }
    }
    for shared in &state.created_dirs {
        remove_empty_tree(shared);
        if shared.exists() {
            tracing::warn!(dir = %shared.display(), "not empty; left in place");
        }
    }

    let mounted = mounts::mount_points_under(dir);
    if !mounted.is_empty() {
        left.extend(mounted.iter().map(|m| format!("mount {}", m.display())));
        return left;
    }
    if let Err(e) = remove_dir(dir, after) {
        left.push(format!("{}: {e}", dir.display()));
    }
    if network::interface_exists(&state.bridge) && !left.iter().any(|l| l.contains(&state.bridge)) {
        left.push(format!("bridge {}", state.bridge));
    }
    left
}

/// Stops and removes every CRI pod, so CNI releases their addresses, veths and port mappings.
fn remove_pods(address: &Path) {
    let mut cri = match CriClient::connect(address) {
        Ok(cri) => cri,
        Err(error) => {
            tracing::warn!(%error, "CRI pods are not removed through CRI");
            return;
        }
    };
    let pods = match cri.list_pod_sandboxes(None) {
        Ok(pods) => pods,
        Err(status) => {
            tracing::warn!(%status, "ListPodSandbox failed; CRI pods are not removed through CRI");
            return;
        }
    };
    for pod in pods {
        let name = pod.metadata.map(|m| m.name).unwrap_or_default();
        let result = cri
            .stop_pod_sandbox(&pod.id)
            .and_then(|()| cri.remove_pod_sandbox(&pod.id));
        match result {
            Ok(()) => tracing::info!(sandbox = %pod.id, pod = %name, "removed pod"),
            Err(status) => {
                tracing::warn!(sandbox = %pod.id, pod = %name, %status, "pod removal failed")
            }
        }
    }
}

/// Kills and deletes the tasks, then deletes the containers, of every namespace.
fn remove_containers(ctr: &Ctr) {
    let namespaces = match ctr.namespaces() {
        Ok(namespaces) => namespaces,
        Err(error) => {
            tracing::warn!(%error, "namespaces are not cleaned up");
            return;
        }
    };
    for ns in namespaces {
        for task in ctr.task_ids(&ns).unwrap_or_default() {
            let _ = ctr.run(
                &ns,
                &["tasks", "kill", "--all", "--signal", "SIGKILL", &task],
            );
        }
        for task in ctr.task_ids(&ns).unwrap_or_default() {
            if let Err(error) = ctr.run(&ns, &["tasks", "delete", "--force", &task]) {
                tracing::warn!(namespace = %ns, task = %task, %error, "task delete failed");
            }
        }
        for container in ctr.container_ids(&ns).unwrap_or_default() {
            if let Err(error) = ctr.run(&ns, &["containers", "delete", &container]) {
                tracing::warn!(namespace = %ns, container = %container, %error, "container delete failed");
            }
        }
    }
}

/// SIGTERM, and SIGKILL when containerd ignores it.
fn terminate(pid: u32) {
    let _ = process::signal(pid, Signal::SIGTERM);
    if process::wait_gone(pid, TERM_LIMIT) {
        return;
    }
    tracing::warn!(pid, "containerd ignored SIGTERM; killing it");
    let _ = process::signal(pid, Signal::SIGKILL);
    if !process::wait_gone(pid, KILL_LIMIT) {
        tracing::warn!(pid, "containerd survived SIGKILL");
    }
}

/// Shims outlive containerd by design; those of this instance name its socket.
fn kill_shims(address: &Path) {
    let shims = process::shims_of(address);
    for (pid, cmdline) in &shims {
        tracing::warn!(pid, %cmdline, "killing a leftover shim");
        let _ = process::signal(*pid, Signal::SIGKILL);
    }
    if !shims.is_empty() {
        thread::sleep(SHIM_GRACE);
    }
}

/// Removes `dir` if it holds nothing but empty directories.
fn remove_empty_tree(dir: &Path) {
    let is_dir = std::fs::symlink_metadata(dir)
        .map(|m| m.file_type().is_dir())
        .unwrap_or(false);
    if !is_dir {
        return;
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            remove_empty_tree(&entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn remove_dir(dir: &Path, after: DirAfter) -> io::Result<()> {
    match after {
        DirAfter::Remove => match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        },
        DirAfter::Empty => {
            for entry in std::fs::read_dir(dir)? {
                let path = entry?.path();
                if std::fs::symlink_metadata(&path)?.is_dir() {
                    std::fs::remove_dir_all(&path)?;
                } else {
                    std::fs::remove_file(&path)?;
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::containerd::state::STATE_FILE;

    #[test]
    fn only_empty_trees_are_removed() {
        let parent = tempfile::tempdir().unwrap();
        let empty = parent.path().join("empty");
        std::fs::create_dir_all(empty.join("a/b")).unwrap();
        remove_empty_tree(&empty);
        assert!(!empty.exists(), "a tree of empty directories goes");

        let used = parent.path().join("used");
        std::fs::create_dir_all(used.join("a/b")).unwrap();
        std::fs::create_dir_all(used.join("c")).unwrap();
        std::fs::write(used.join("a/b/file"), "x").unwrap();
        remove_empty_tree(&used);
        assert!(
            used.join("a/b/file").exists(),
            "a file keeps its directories"
        );
        assert!(!used.join("c").exists(), "empty siblings still go");
    }

    #[test]
    fn a_directory_that_existed_before_is_emptied_not_removed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/x")).unwrap();
        std::fs::write(dir.path().join(STATE_FILE), "{}").unwrap();
        remove_dir(dir.path(), DirAfter::Empty).unwrap();
        assert!(dir.path().exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
