//! The last check of a run, after containerd stopped: nothing of lightpod's pods may be left
//! in the shims' state directory. Processes still naming it (a VMM or helper whose shim was
//! killed) are killed, mounts under it are detached, and then what is left of it is removed.
//! Every item found is reported: after a clean run there is none but empty directories.
//!
//! The directory is the benchmark's own (its configuration names it, and the run lock keeps
//! a second run out), so removing it once nothing is mounted there takes nothing from anyone.
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
    mount::{umount2, MntFlags},
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

/// Kills processes that name `state_dir` in their arguments, detaches the mounts under it,
/// and removes it; what was found on the way, one item each (empty directories are not
/// counted).
pub fn sweep(state_dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    kill_strays(state_dir, &mut found);
    let mounts = mounts_under(state_dir);
    for mount in &mounts {
        found.push(format!("mount {}, detached", mount.display()));
        if let Err(error) = umount2(mount, MntFlags::MNT_DETACH) {
            tracing::warn!(mount = %mount.display(), %error, "cannot detach a leftover mount");
        }
    }
    if !mounts_under(state_dir).is_empty() {
        found.push(format!(
            "{} kept: mounts remain under it",
            state_dir.display()
        ));
        return found;
    }
    list_files(state_dir, &mut found);
    if let Err(error) = std::fs::remove_dir_all(state_dir) {
        if error.kind() != std::io::ErrorKind::NotFound {
            found.push(format!("{} not removed: {error}", state_dir.display()));
        }
    }
    found
}

fn kill_strays(state_dir: &Path, found: &mut Vec<String>) {
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
        found.push(format!("process {pid} ({name}), killed"));
        if let Ok(pid) = i32::try_from(*pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if !stray.is_empty() {
        thread::sleep(KILL_GRACE);
    }
}

/// Mount points under `dir`, deepest first (so each is detached before its parent).
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut mounts = mount_points_in(&text, dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    mounts
}

/// The mount points (field 5 of proc(5)'s mountinfo, octal escapes undone) under `dir`.
fn mount_points_in(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape_octal(field)))
        .filter(|point| point.starts_with(dir) && point != dir)
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let code = rest
            .get(at + 1..at + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(char::from(byte));
                rest = &rest[at + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reports the files of the tree at `dir` (a pod's state the shim did not clean up).
fn list_files(dir: &Path, found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => list_files(&path, found),
            _ => found.push(format!("{} left in the state directory", path.display())),
        }
    }
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
    fn the_state_directory_goes_and_files_are_reported() {
        let root = tempfile::tempdir().unwrap();
        let state = root.path().join("state");
        std::fs::create_dir_all(state.join("k8s.io/sandboxes")).unwrap();
        assert!(sweep(&state).is_empty(), "empty directories are no finding");
        assert!(!state.exists(), "an empty tree goes entirely");

        std::fs::create_dir_all(state.join("k8s.io/sandboxes/abc/vm")).unwrap();
        std::fs::write(state.join("k8s.io/sandboxes/abc/vm/console.log"), "x").unwrap();
        let found = sweep(&state);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].ends_with("console.log left in the state directory"),
            "{found:?}"
        );
        assert!(!state.exists(), "nothing is mounted there: it goes");
    }

    #[test]
    fn mount_points_under_the_directory_are_found_and_unescaped() {
        let mountinfo = "27 1 254:0 / / rw - ext4 /dev/vda rw\n\
            76 27 0:46 / /run/lb/state/k8s.io/sandboxes/a/shared/c/rootfs rw - overlay overlay rw\n\
            77 27 0:40 / /run/lb/state/k8s.io/sandboxes/a/shared/c/mounts/6 ro - tmpfs shm rw\n\
            78 27 0:41 / /run/lb/state\\040x rw - tmpfs t rw\n\
            79 27 0:42 / /run/lb/stateful rw - tmpfs t rw\n";
        let dir = Path::new("/run/lb/state");
        let points = mount_points_in(mountinfo, dir);
        assert_eq!(
            points,
            [
                PathBuf::from("/run/lb/state/k8s.io/sandboxes/a/shared/c/rootfs"),
                PathBuf::from("/run/lb/state/k8s.io/sandboxes/a/shared/c/mounts/6"),
            ],
            "a sibling with the same prefix is not under it"
        );
        assert_eq!(unescape_octal("/run/lb/state\\040x"), "/run/lb/state x");
        assert_eq!(unescape_octal("a\\b"), "a\\b", "a lone backslash stays");
    }
}
