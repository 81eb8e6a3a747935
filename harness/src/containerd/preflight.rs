//! The checks a start makes before it touches the host, each failing with what to do about it.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use super::{
    config::{CNI_BIN_DIR, CNI_PLUGINS, CONFIG_FILE},
    network,
    options::Subnet,
    process,
    start::StartError,
    state::{InstanceState, STATE_FILE},
};

/// Programs the instance runs, and the Debian package of each.
const TOOLS: [(&str, &str); 6] = [
    ("containerd", "containerd"),
    ("ctr", "containerd"),
    ("containerd-shim-runc-v2", "containerd"),
    ("runc", "runc"),
    ("ip", "iproute2"),
    ("iptables", "iptables"),
];

/// Root, the programs and the CNI plugins.
pub(super) fn check_host() -> Result<(), StartError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(StartError::NotRoot);
    }
    for (tool, package) in TOOLS {
        if find_in_path(tool).is_none() {
            return Err(StartError::ToolMissing { tool, package });
        }
    }
    for plugin in CNI_PLUGINS {
        let path = Path::new(CNI_BIN_DIR).join(plugin);
        if !is_executable(&path) {
            return Err(StartError::CniPluginMissing { path });
        }
    }
    Ok(())
}

/// No containerd runs for `dir`, and no earlier instance or other content is in it.
pub(super) fn check_instance(dir: &Path) -> Result<(), StartError> {
    let state = InstanceState::read(dir).ok().flatten();
    if let Some(InstanceState {
        pid: Some(pid),
        config,
        ..
    }) = &state
    {
        if process::is_containerd_of(*pid, config) {
            return Err(StartError::AlreadyRunning {
                dir: dir.to_path_buf(),
                pid: *pid,
            });
        }
    }
    let earlier = ["root", STATE_FILE, CONFIG_FILE]
        .iter()
        .any(|name| dir.join(name).exists());
    if earlier {
        return Err(StartError::EarlierInstance {
            dir: dir.to_path_buf(),
        });
    }
    let has_entries = std::fs::read_dir(dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if has_entries {
        return Err(StartError::DirNotEmpty {
            dir: dir.to_path_buf(),
        });
    }
    Ok(())
}

/// The bridge does not exist and no route of the host overlaps the subnet.
pub(super) fn check_network(bridge: &str, subnet: Subnet) -> Result<(), StartError> {
    if network::interface_exists(bridge) {
        return Err(StartError::BridgeExists {
            bridge: bridge.to_string(),
        });
    }
    if let Some(route) = network::overlapping_route(subnet).map_err(StartError::ReadRoutes)? {
        return Err(StartError::SubnetRouted { subnet, route });
    }
    Ok(())
}

/// Where `PATH` finds `program`, as `command -v` would.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_directory_must_be_new_or_empty() {
        let parent = tempfile::tempdir().unwrap();
        let absent = parent.path().join("absent");
        check_instance(&absent).expect("an absent directory is fine");
        check_instance(parent.path()).expect("an empty directory is fine");

        let cases = [
            ("root", "holds an earlier instance"),
            (STATE_FILE, "holds an earlier instance"),
            ("notes.txt", "is not empty"),
        ];
        for (entry, message) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(entry), "{}").unwrap();
            let err = check_instance(dir.path()).expect_err(entry);
            assert!(
                err.to_string().contains(message),
                "with {entry}: {err} should say {message:?}"
            );
        }
    }

    #[test]
    fn a_stale_pid_is_not_a_running_instance() {
        let dir = tempfile::tempdir().unwrap();
        let state = InstanceState {
            address: dir.path().join("containerd.sock"),
            config: dir.path().join(CONFIG_FILE),
            bridge: "lph0".into(),
            subnet: "10.250.91.0/24".into(),
            // This process is alive, but it is no containerd of that config.
            pid: Some(std::process::id()),
            created_dirs: Vec::new(),
            created_portmap_chains: false,
            ip_forward: None,
        };
        state.write(dir.path()).unwrap();
        let err = check_instance(dir.path()).unwrap_err();
        assert!(
            matches!(err, StartError::EarlierInstance { .. }),
            "not AlreadyRunning: {err}"
        );
    }

    #[test]
    fn programs_are_found_in_path() {
        assert!(find_in_path("sh").is_some(), "sh is in every PATH");
        assert!(find_in_path("lightpod-no-such-program").is_none());
    }
}
