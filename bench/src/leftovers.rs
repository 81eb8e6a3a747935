//! The last check of a run, after containerd stopped: nothing of lightpod's pods may be left
//! in the shims' state directory. Processes still naming it (a VMM or helper whose shim was
//! killed) are killed; directories left empty are removed; anything else is reported.
//!
//! The state directory is `[runtime] state_dir` of the shims' configuration file
//! (`LIGHTPOD_CONFIG`); without one, nothing is swept, since the default directory may
//! belong to a lightpod outside this run.

use std::{
    path::{Path, PathBuf},
    thread,
    time::Duration,
};

use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

use crate::procfs::ProcessTable;

/// Time for killed processes to go before their directories are looked at.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// The `[runtime] state_dir` of the lightpod configuration file `config`, if it sets one.
pub fn state_dir_of(config: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(config).ok()?;
    state_dir_in(&text)
}

fn state_dir_in(text: &str) -> Option<PathBuf> {
    let value: toml::Value = toml::from_str(text).ok()?;
    value
        .get("runtime")?
        .get("state_dir")?
        .as_str()
        .map(PathBuf::from)
}

/// Kills processes that name `state_dir` in their arguments, removes the directories under
/// it that are empty (and it, when it ends up empty); what was left, one item each.
pub fn sweep(state_dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let needle = format!("{}/", state_dir.display());
    let table = ProcessTable::read();
    let me = std::process::id();
    let stray: Vec<u32> = table
        .pids()
        .filter(|pid| *pid != me)
        .filter(|pid| {
            table
                .get(*pid)
                .is_some_and(|p| p.args.iter().any(|a| a.contains(&needle)))
        })
        .collect();
    for pid in &stray {
        let name = table.get(*pid).map(|p| p.comm.clone()).unwrap_or_default();
        tracing::warn!(pid, process = %name, "killing a process the pods left behind");
        left.push(format!("process {pid} ({name}), killed"));
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if !stray.is_empty() {
        thread::sleep(KILL_GRACE);
    }
    remove_empty(state_dir, &mut left);
    left
}

/// Removes the empty directories of the tree at `dir` bottom up; what is not empty is
/// reported (never removed: it may be a mount point or a pod's state).
fn remove_empty(dir: &Path, left: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => remove_empty(&path, left),
            _ => left.push(format!("{} left in the state directory", path.display())),
        }
    }
    // Fails, and rightly so, when something is still in it.
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_state_dir_comes_from_the_runtime_table() {
        let text =
            "[runtime]\nstate_dir = \"/run/lightpod-bench/state\"\n[vm]\nboot_timeout_secs = 300\n";
        assert_eq!(state_dir_in(text), Some("/run/lightpod-bench/state".into()));
        assert_eq!(
            state_dir_in("[vm]\nvcpus = 1\n"),
            None,
            "the default is not swept"
        );
        assert_eq!(state_dir_in("not toml ["), None);
    }

    #[test]
    fn empty_directories_go_and_files_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir_all(state.join("k8s.io/sandboxes")).unwrap();
        assert!(sweep(&state).is_empty());
        assert!(!state.exists(), "an empty tree goes entirely");

        std::fs::create_dir_all(state.join("k8s.io/sandboxes/abc/vm")).unwrap();
        std::fs::create_dir_all(state.join("other")).unwrap();
        std::fs::write(state.join("k8s.io/sandboxes/abc/vm/console.log"), "x").unwrap();
        let left = sweep(&state);
        assert_eq!(left.len(), 1, "{left:?}");
        assert!(
            left[0].ends_with("console.log left in the state directory"),
            "{left:?}"
        );
        assert!(!state.join("other").exists(), "empty siblings still go");
    }
}
