//! One `virtiofsd` (the Rust implementation, 1.x) per shared directory.
//!
//! Flags, chosen deliberately:
//! - `--sandbox chroot` as root (`none` otherwise): virtiofsd stays in the host's mount
//!   namespace, so a bind mount made under the shared directory after boot (each new
//!   container's rootfs) is visible to it. The default, `namespace`, serves a private copy
//!   of the mount tree taken at start, which would miss later mounts unless every shared
//!   directory were a shared-propagation mount point.
//! - `--announce-submounts`: each such bind mount appears in the guest as its own submount
//!   (its own `st_dev`), so inode numbers of different host filesystems never collide.
//! - `--cache auto`: the host changes these trees (new rootfs, volumes) while the guest runs;
//!   `always` would let the guest keep stale metadata, `never` costs every lookup a round
//!   trip.
//! - `--readonly` when the spec asks.
//!
//! virtiofsd serves one vhost-user connection and exits when QEMU closes it.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{process::Child, time::Instant};

use crate::{qemu::logs, VmError};

/// How virtiofsd isolates itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VirtiofsdSandbox {
    /// chroot into the shared directory (needs root).
    Chroot,
    /// No isolation (unprivileged callers, tests).
    None,
}

impl VirtiofsdSandbox {
    /// The mode for the current user: chroot as root, none otherwise.
    pub fn for_current_user() -> Self {
        if nix::unistd::geteuid().is_root() {
            VirtiofsdSandbox::Chroot
        } else {
            VirtiofsdSandbox::None
        }
    }
}

/// The arguments of one virtiofsd.
#[derive(Debug, Clone)]
pub struct VirtiofsdOpts {
    /// vhost-user socket it listens on.
    pub socket: PathBuf,
    /// Directory it serves.
    pub shared_dir: PathBuf,
    /// Whether the guest may only read.
    pub readonly: bool,
    /// Isolation mode.
    pub sandbox: VirtiofsdSandbox,
}

impl VirtiofsdOpts {
    /// The arguments after the binary name.
    pub fn args(&self) -> Vec<String> {
        let sandbox = match self.sandbox {
            VirtiofsdSandbox::Chroot => "chroot",
            VirtiofsdSandbox::None => "none",
        };
        let mut args = vec![
            format!("--socket-path={}", self.socket.display()),
            format!("--shared-dir={}", self.shared_dir.display()),
            format!("--sandbox={sandbox}"),
            "--cache=auto".to_string(),
            "--announce-submounts".to_string(),
            "--log-level=warn".to_string(),
        ];
        if self.readonly {
            args.push("--readonly".to_string());
        }
        args
    }
}

/// A started virtiofsd whose socket exists.
#[derive(Debug)]
pub struct Virtiofsd {
    /// The process.
    pub child: Child,
    /// Its pid.
    pub pid: u32,
}

/// Starts virtiofsd with its stderr in `log` and waits until its socket appears.
pub async fn spawn(
    binary: &Path,
    opts: &VirtiofsdOpts,
    log: &Path,
    pid_file: &Path,
    timeout: Duration,
) -> Result<Virtiofsd, VmError> {
    let deadline = Instant::now() + timeout;
    let helper = || format!("virtiofsd for {}", opts.shared_dir.display());
    let stderr = std::fs::File::create(log).map_err(|e| VmError::Io {
        context: format!("create {}", log.display()),
        source: e,
    })?;
    let child = tokio::process::Command::new(binary)
        .args(opts.args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| VmError::SpawnHelper {
            helper: helper(),
            source: e,
        })?;
    let pid = child.id().unwrap_or_default();
    let mut started = Virtiofsd { child, pid };
    if let Err(e) = std::fs::write(pid_file, format!("{pid}\n")) {
        kill(&mut started).await;
        return Err(VmError::Io {
            context: format!("write {}", pid_file.display()),
            source: e,
        });
    }

    loop {
        if opts.socket.exists() {
            return Ok(started);
        }
        if let Ok(Some(status)) = started.child.try_wait() {
            let log = logs::tail(log, 10);
            let source = std::io::Error::other(format!("exited ({status}): {log}"));
            return Err(VmError::SpawnHelper {
                helper: helper(),
                source,
            });
        }
        if Instant::now() >= deadline {
            kill(&mut started).await;
            return Err(VmError::Timeout(timeout, "the virtiofsd socket"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills virtiofsd and reaps it.
pub async fn kill(daemon: &mut Virtiofsd) {
    let _ = daemon.child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), daemon.child.wait()).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags() {
        let opts = VirtiofsdOpts {
            socket: "/run/vm/vfs-lightpod.sock".into(),
            shared_dir: "/run/pod/shared".into(),
            readonly: true,
            sandbox: VirtiofsdSandbox::Chroot,
        };
        assert_eq!(
            opts.args(),
            [
                "--socket-path=/run/vm/vfs-lightpod.sock",
                "--shared-dir=/run/pod/shared",
                "--sandbox=chroot",
                "--cache=auto",
                "--announce-submounts",
                "--log-level=warn",
                "--readonly",
            ]
        );
        let rw = VirtiofsdOpts {
            readonly: false,
            sandbox: VirtiofsdSandbox::None,
            ..opts
        };
        assert!(
            rw.args().contains(&"--sandbox=none".to_string()),
            "unprivileged mode"
        );
        assert!(
            !rw.args().contains(&"--readonly".to_string()),
            "writable share"
        );
    }
}
