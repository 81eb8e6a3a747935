//! Fixtures shared by lightpod's end-to-end tests: where the built binaries are, a busybox
//! root filesystem built once per run from Debian's `busybox-static`, a private state
//! directory per test, and the leak checks every test ends with.
//!
//! The tests drive real parts only: the `lightpod` binary, QEMU, a real guest kernel, the
//! static agent. `e2e/run.sh` builds all of them before `cargo test` runs.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

pub mod containerd;
pub mod cri;
pub mod image;
pub mod leaks;
pub mod rootfs;
pub mod run;
pub mod shim;

use std::path::{Path, PathBuf};

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Directory of the built host binaries: `$LIGHTPOD_BIN_DIR`, else the cargo profile
/// directory the test itself was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LIGHTPOD_BIN_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<test binary>
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

/// A host binary of the workspace, which must have been built.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run e2e/run.sh (it builds everything first)",
        path.display()
    );
    path
}

/// The static agent: `$LIGHTPOD_AGENT`, else the release build for the explicit target.
pub fn agent_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("LIGHTPOD_AGENT") {
        return PathBuf::from(path);
    }
    let path = workspace_root().join("target/x86_64-unknown-linux-gnu/release/lightpod-agent");
    assert!(
        path.exists(),
        "{} is not built; run e2e/run.sh (it builds the static agent first)",
        path.display()
    );
    path
}

/// A directory kept across tests and runs (guest image cache, built fixtures).
pub fn cache_dir() -> PathBuf {
    let dir = workspace_root().join("target/e2e-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails the test unless it runs as root: VMs, mounts and tap devices need it. The test
/// command (`e2e/run.sh`) runs as root; a plain `cargo test` by a user reports it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "end-to-end tests need root (mounts, VMs); run them with `sudo e2e/run.sh`"
    );
}
