//! The privileged system calls of container set-up behind one trait, so the set-up logic can
//! be unit-tested without root against [`fake::RecordingSyscall`].

use std::{
    fs,
    io::{self, Write},
    os::{fd::AsFd, unix::fs::symlink},
    path::Path,
};

use nix::{
    mount::{MntFlags, MsFlags},
    sched::CloneFlags,
    sys::stat::{Mode, SFlag},
};

#[cfg(test)]
pub mod fake;

/// The calls container set-up makes. Errors are plain `io::Error`s carrying the errno.
pub trait Syscall {
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// `umount2(2)`.
    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()>;
    /// `pivot_root(2)`.
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &Path) -> io::Result<()>;
    /// `chroot(2)`.
    fn chroot(&self, path: &Path) -> io::Result<()>;
    /// `unshare(2)`.
    fn unshare(&self, flags: CloneFlags) -> io::Result<()>;
    /// `setns(2)` on the namespace file at `path` (`/proc/<pid>/ns/mnt` …).
    fn setns(&self, path: &Path, kind: CloneFlags) -> io::Result<()>;
    /// `sethostname(2)`.
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates an empty file (and its missing parent directories) unless it exists.
    fn create_file(&self, path: &Path) -> io::Result<()>;
    /// Writes `contents` to an existing file (cgroup and procfs files).
    fn write_file(&self, path: &Path, contents: &str) -> io::Result<()>;
    /// `symlink(2)`.
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// `mknod(2)` of a character device.
    fn mknod_char(&self, path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()>;
    /// Whether `path` exists (following symlinks).
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory (following symlinks); false when it does not exist.
    fn is_dir(&self, path: &Path) -> bool;
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSyscall;

impl Syscall for LinuxSyscall {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        Ok(nix::mount::mount(source, target, fstype, flags, data)?)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        Ok(nix::mount::umount2(target, flags)?)
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        Ok(nix::unistd::pivot_root(new_root, put_old)?)
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        Ok(nix::unistd::chdir(path)?)
    }

    fn chroot(&self, path: &Path) -> io::Result<()> {
        Ok(nix::unistd::chroot(path)?)
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        Ok(nix::sched::unshare(flags)?)
    }

    fn setns(&self, path: &Path, kind: CloneFlags) -> io::Result<()> {
        let file = fs::File::open(path)?;
        Ok(nix::sched::setns(file.as_fd(), kind)?)
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        Ok(nix::unistd::sethostname(name)?)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        if path.exists() {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map(drop)
    }

    fn write_file(&self, path: &Path, contents: &str) -> io::Result<()> {
        // One write call: cgroup and procfs files act on each write separately.
        fs::OpenOptions::new()
            .write(true)
            .open(path)?
            .write_all(contents.as_bytes())
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        symlink(target, link)
    }

    fn mknod_char(&self, path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        let dev = nix::sys::stat::makedev(major, minor);
        Ok(nix::sys::stat::mknod(
            path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(mode),
            dev,
        )?)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
}
