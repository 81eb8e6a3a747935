//! Where a front end's tasks keep their host state.
//!
//! Task ids are unique only within a containerd namespace, so each namespace gets its own
//! state directory: `<runtime.state_dir>/<namespace>/sandboxes/<id>/`. The sandbox
//! directory holds unix sockets, whose paths are limited to 108 bytes; a CRI sandbox id is
//! 64 hex digits, so directory names keep only the first [`MAX_DIR_NAME`] characters of
//! an id, which stay unique in practice for the random ids containerd and kubelet make.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// Longest sandbox directory name.
pub const MAX_DIR_NAME: usize = 32;

/// `config` with its state directory made per namespace.
pub fn namespace_config(config: &Config, namespace: &str) -> Config {
    let mut config = config.clone();
    config.runtime.state_dir = config.runtime.state_dir.join(namespace);
    config
}

/// The directory name of the sandbox `id`: the id, cut to [`MAX_DIR_NAME`] characters.
pub fn dir_name(id: &str) -> &str {
    match id.char_indices().nth(MAX_DIR_NAME) {
        Some((end, _)) => &id[..end],
        None => id,
    }
}

/// Where a task's root filesystem is mounted: `rootfs` in its OCI bundle, as containerd's
/// own shims do (the spec's `root.path` names it relative to the bundle).
pub fn rootfs_dir(bundle: &Path) -> PathBuf {
    bundle.join("rootfs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_cut_and_namespaces_separate_state() {
        let cri_id = "a".repeat(64);
        assert_eq!(dir_name(&cri_id).len(), MAX_DIR_NAME);
        assert_eq!(dir_name("short"), "short");
        let config = Config::default();
        let ns = namespace_config(&config, "k8s.io");
        assert_eq!(
            ns.runtime.state_dir,
            config.runtime.state_dir.join("k8s.io")
        );
    }
}
