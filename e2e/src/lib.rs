//! Fixtures shared by lightpod's end-to-end tests: where the built binaries are, the test
//! images and a busybox root filesystem built once per machine, the private containerd of the
//! run, a private state directory per test, and the leak checks every test ends with.
//!
//! The tests drive real parts only: the `lightpod` binary, QEMU, a real guest kernel, the
//! static agent, containerd. `e2e/run.sh` builds all of them before `cargo test` runs. What
//! other front ends share with the tests (images, the CRI client, starting and stopping a
//! private containerd) lives in `lightpod-harness`; this crate keeps what only tests need.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

pub mod containerd;
pub mod leaks;
pub mod lightpod_pod;
pub mod rootfs;
pub mod run;
pub mod scenarios;
pub mod shim;
pub mod stream;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use lightpod_harness::image::Images;

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

/// The test images ([`lightpod_harness::image`]), built into [`cache_dir`] on first use.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        Images::build(&cache_dir())
            .unwrap_or_else(|e| panic!("build the e2e OCI images: {:#}", anyhow::Error::new(e)))
    })
}

/// Skips with a reason when the host cannot run the test, unless the runner requires every
/// test to run (`LIGHTPOD_E2E_REQUIRE`, set by e2e/run.sh): then it fails.
pub fn skip_or_fail(test: &str, reason: &str) {
    if std::env::var_os("LIGHTPOD_E2E_REQUIRE").is_some() {
        panic!("{test} cannot run here: {reason}");
    }
    eprintln!("SKIP {test}: {reason}");
}

/// Fails the test unless it runs as root: VMs, mounts and tap devices need it. The test
/// command (`e2e/run.sh`) runs as root; a plain `cargo test` by a user reports it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "end-to-end tests need root (mounts, VMs); run them with `sudo e2e/run.sh`"
    );
}
