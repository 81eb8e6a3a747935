//! Virtio-serial ports: found by name under `/sys/class/virtio-ports`, since their
//! `/dev/vportNpM` numbers move with device order.

use std::{
    fs, io,
    os::{
        fd::{AsFd, OwnedFd},
        unix::fs::OpenOptionsExt,
    },
    path::{Path, PathBuf},
    time::Duration,
};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::channel::ChannelError;

const SYS_PORTS: &str = "/sys/class/virtio-ports";

/// How often to look for the port while waiting.
const FIND_POLL: Duration = Duration::from_millis(10);

/// The `/dev` path of the port named `name` in a `/sys/class/virtio-ports`-like directory.
pub fn lookup(sys_ports: &Path, name: &str) -> Option<PathBuf> {
    let entries = fs::read_dir(sys_ports).ok()?;
    entries.flatten().find_map(|entry| {
        let port_name = fs::read_to_string(entry.path().join("name")).ok()?;
        (port_name.trim_end() == name).then(|| Path::new("/dev").join(entry.file_name()))
    })
}

/// Waits up to `wait` for the port to appear (its driver may still be probing) and its
/// device node to exist.
///
/// # Errors
///
/// [`ChannelError::PortMissing`] after `wait`.
pub async fn find(name: &str, wait: Duration) -> Result<PathBuf, ChannelError> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(dev) = lookup(Path::new(SYS_PORTS), name).filter(|d| d.exists()) {
            return Ok(dev);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ChannelError::PortMissing {
                name: name.to_string(),
                waited: wait,
            });
        }
        tokio::time::sleep(FIND_POLL).await;
    }
}

/// Opens the port for non-blocking reads and writes.
pub fn open(path: &Path) -> io::Result<OwnedFd> {
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    Ok(file.into())
}

/// Whether the device reports a hang-up now (nobody on the host side of a virtio port).
pub fn hung_up(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(_) => fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP)),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ports_by_name() {
        let sys = tempfile::tempdir().expect("temp dir");
        for (port, name) in [
            ("vport1p1", "org.qemu.guest_agent.0\n"),
            ("vport2p1", "lightpod.agent\n"),
        ] {
            fs::create_dir(sys.path().join(port)).expect("mkdir");
            fs::write(sys.path().join(port).join("name"), name).expect("write");
        }
        fs::create_dir(sys.path().join("vport3p1")).expect("a port without a name file");
        assert_eq!(
            lookup(sys.path(), "lightpod.agent"),
            Some(PathBuf::from("/dev/vport2p1"))
        );
        assert_eq!(lookup(sys.path(), "lightpod"), None, "names match exactly");
        assert_eq!(lookup(&sys.path().join("absent"), "lightpod.agent"), None);
    }

    #[test]
    fn hang_up_is_seen() {
        let (r, w) = nix::unistd::pipe().expect("pipe");
        assert!(!hung_up(&r), "writer still open");
        drop(w);
        assert!(hung_up(&r), "writer gone");
    }
}
