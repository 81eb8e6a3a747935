//! A [`Syscall`] that records every call instead of making it, for unit tests without root.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    io,
    path::{Path, PathBuf},
};

use nix::{
    mount::{MntFlags, MsFlags},
    sched::CloneFlags,
};

use super::Syscall;

/// One recorded call, with owned arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<String>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Umount(PathBuf, MntFlags),
    PivotRoot(PathBuf, PathBuf),
    Chdir(PathBuf),
    Chroot(PathBuf),
    Unshare(CloneFlags),
    Setns(PathBuf, CloneFlags),
    Sethostname(String),
    CreateDirAll(PathBuf),
    CreateFile(PathBuf),
    WriteFile(PathBuf, String),
    Symlink(PathBuf, PathBuf),
    MknodChar(PathBuf, u32, u64, u64),
}

/// Records calls; answers `exists`/`is_dir` from the paths it was told about; fails the
/// calls it was told to fail.
#[derive(Debug, Default)]
pub struct RecordingSyscall {
    calls: RefCell<Vec<Call>>,
    dirs: HashSet<PathBuf>,
    files: HashSet<PathBuf>,
    failures: HashMap<String, i32>,
}

impl RecordingSyscall {
    /// Declares `path` an existing directory.
    pub fn with_dir(mut self, path: &str) -> Self {
        self.dirs.insert(path.into());
        self
    }

    /// Declares `path` an existing file.
    pub fn with_file(mut self, path: &str) -> Self {
        self.files.insert(path.into());
        self
    }

    /// Makes every call of kind `call` (`"mount"`, `"pivot_root"` …) fail with `errno`.
    pub fn failing(mut self, call: &str, errno: i32) -> Self {
        self.failures.insert(call.to_string(), errno);
        self
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// Only the mount calls.
    pub fn mounts(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .collect()
    }

    fn record(&self, name: &str, call: Call) -> io::Result<()> {
        self.calls.borrow_mut().push(call);
        match self.failures.get(name) {
            Some(errno) => Err(io::Error::from_raw_os_error(*errno)),
            None => Ok(()),
        }
    }
}

impl Syscall for RecordingSyscall {
    fn mount(
        &self,
        source: Option<&str>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> io::Result<()> {
        let call = Call::Mount {
            source: source.map(str::to_string),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_string),
            flags,
            data: data.map(str::to_string),
        };
        self.record("mount", call)
    }

    fn umount(&self, target: &Path, flags: MntFlags) -> io::Result<()> {
        self.record("umount", Call::Umount(target.to_path_buf(), flags))
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        self.record(
            "pivot_root",
            Call::PivotRoot(new_root.into(), put_old.into()),
        )
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        self.record("chdir", Call::Chdir(path.into()))
    }

    fn chroot(&self, path: &Path) -> io::Result<()> {
        self.record("chroot", Call::Chroot(path.into()))
    }

    fn unshare(&self, flags: CloneFlags) -> io::Result<()> {
        self.record("unshare", Call::Unshare(flags))
    }

    fn setns(&self, path: &Path, kind: CloneFlags) -> io::Result<()> {
        self.record("setns", Call::Setns(path.into(), kind))
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        self.record("sethostname", Call::Sethostname(name.to_string()))
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.record("create_dir_all", Call::CreateDirAll(path.into()))
    }

    fn create_file(&self, path: &Path) -> io::Result<()> {
        self.record("create_file", Call::CreateFile(path.into()))
    }

    fn write_file(&self, path: &Path, contents: &str) -> io::Result<()> {
        self.record(
            "write_file",
            Call::WriteFile(path.into(), contents.to_string()),
        )
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        self.record("symlink", Call::Symlink(target.into(), link.into()))
    }

    fn mknod_char(&self, path: &Path, mode: u32, major: u64, minor: u64) -> io::Result<()> {
        self.record("mknod", Call::MknodChar(path.into(), mode, major, minor))
    }

    fn exists(&self, path: &Path) -> bool {
        self.dirs.contains(path) || self.files.contains(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.contains(path)
    }
}
