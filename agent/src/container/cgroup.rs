//! The cgroup v2 group of each container: `<root>/lightpod/<container id>`, with the cpu,
//! memory and pids controllers.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{
    container::cgroup_stats::{self, CgroupStats, StatFiles},
    spec::Resources,
};

/// Where the agent mounts cgroup v2 in the guest.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The group holding every container's group.
const PARENT: &str = "lightpod";

/// Controllers enabled for containers.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// How often state changes (frozen, emptied) are polled for, and for how long.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

/// A cgroup operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Creating a group directory failed.
    #[error("create {0}")]
    Create(PathBuf, #[source] io::Error),
    /// Writing an interface file failed.
    #[error("write {value:?} to {file}")]
    Write {
        /// The interface file.
        file: PathBuf,
        /// What was written.
        value: String,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// Reading an interface file failed.
    #[error("read {0}")]
    Read(PathBuf, #[source] io::Error),
    /// Removing a group failed.
    #[error("remove {0}")]
    Remove(PathBuf, #[source] io::Error),
    /// The group did not reach the requested state in time.
    #[error("{path} did not become {state} within {timeout:?}")]
    Timeout {
        /// The group.
        path: PathBuf,
        /// `frozen`, `thawed` or `empty`.
        state: &'static str,
        /// How long the agent waited.
        timeout: Duration,
    },
}

/// Enables the container controllers down to the `lightpod` parent group. Controllers the
/// kernel lacks are left out (their limits then fail when set).
///
/// # Errors
///
/// The parent group cannot be created or its controllers cannot be enabled.
pub fn prepare_hierarchy(root: &Path) -> Result<(), CgroupError> {
    let parent = root.join(PARENT);
    if let Err(e) = fs::create_dir(&parent) {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(CgroupError::Create(parent, e));
        }
    }
    let available = fs::read_to_string(root.join("cgroup.controllers"))
        .map_err(|e| CgroupError::Read(root.join("cgroup.controllers"), e))?;
    let enable: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| available.split_whitespace().any(|a| a == **c))
        .map(|c| format!("+{c}"))
        .collect();
    let value = enable.join(" ");
    for dir in [root, parent.as_path()] {
        write(&dir.join("cgroup.subtree_control"), &value)?;
    }
    Ok(())
}

fn write(file: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(file, value).map_err(|source| CgroupError::Write {
        file: file.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

fn read(file: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(file).map_err(|e| CgroupError::Read(file.to_path_buf(), e))
}

/// One container's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    /// Creates the group of container `id` under `root` (normally [`CGROUP_ROOT`]).
    ///
    /// # Errors
    ///
    /// The directory cannot be created (it exists already, or cgroup v2 is not mounted).
    pub fn create(root: &Path, id: &str) -> Result<Cgroup, CgroupError> {
        let dir = root.join(PARENT).join(id);
        fs::create_dir(&dir).map_err(|e| CgroupError::Create(dir.clone(), e))?;
        Ok(Cgroup { dir })
    }

    /// The group's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the limits; a `None` limit is written as `max` so an update can lift it.
    ///
    /// # Errors
    ///
    /// An interface file is missing (controller not enabled) or refuses the value.
    pub fn apply(&self, r: &Resources) -> Result<(), CgroupError> {
        let or_max = |v: Option<u64>| v.map_or_else(|| "max".to_string(), |v| v.to_string());
        write(&self.dir.join("memory.max"), &or_max(r.memory_max))?;
        let cpu_max = match r.cpu_max {
            Some((quota, period)) => format!("{quota} {period}"),
            None => "max".to_string(),
        };
        write(&self.dir.join("cpu.max"), &cpu_max)?;
        if let Some(weight) = r.cpu_weight {
            write(&self.dir.join("cpu.weight"), &weight.to_string())?;
        }
        write(&self.dir.join("pids.max"), &or_max(r.pids_max))
    }

    /// Freezes or thaws every process of the group and waits until the kernel reports it done.
    ///
    /// # Errors
    ///
    /// `cgroup.freeze` cannot be written, or the state is not reached in time.
    pub async fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        write(
            &self.dir.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
        )?;
        let want = if frozen { 1 } else { 0 };
        let state = if frozen { "frozen" } else { "thawed" };
        self.wait_event("frozen", want, state, FREEZE_TIMEOUT).await
    }

    /// Guest pids of every process in the group.
    ///
    /// # Errors
    ///
    /// `cgroup.procs` cannot be read.
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        let text = read(&self.dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// Sends `signal` to every process of the group.
    ///
    /// # Errors
    ///
    /// `cgroup.procs` cannot be read. Processes that exit meanwhile are not errors.
    pub fn signal_all(&self, signal: Signal) -> Result<(), CgroupError> {
        for pid in self.pids()? {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), signal);
        }
        Ok(())
    }

    /// Kills every process of the group, at once through `cgroup.kill` (Linux 5.14), or one
    /// by one on older kernels.
    ///
    /// # Errors
    ///
    /// Neither way works.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        match write(&self.dir.join("cgroup.kill"), "1") {
            Ok(()) => Ok(()),
            Err(_) => self.signal_all(Signal::SIGKILL),
        }
    }

    /// The OOM killer's kill count in this group.
    ///
    /// # Errors
    ///
    /// `memory.events` cannot be read.
    pub fn oom_kills(&self) -> Result<u64, CgroupError> {
        let text = read(&self.dir.join("memory.events"))?;
        Ok(cgroup_stats::keyed_value(&text, "oom_kill"))
    }

    /// Reads CPU, memory and pid figures. Files of disabled controllers read as zero.
    pub fn stats(&self) -> CgroupStats {
        let file = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        let (cpu_stat, memory_current, memory_max, memory_stat) = (
            file("cpu.stat"),
            file("memory.current"),
            file("memory.max"),
            file("memory.stat"),
        );
        let (memory_events, pids_current, pids_max) = (
            file("memory.events"),
            file("pids.current"),
            file("pids.max"),
        );
        StatFiles {
            cpu_stat: &cpu_stat,
            memory_current: &memory_current,
            memory_max: &memory_max,
            memory_stat: &memory_stat,
            memory_events: &memory_events,
            pids_current: &pids_current,
            pids_max: &pids_max,
        }
        .parse()
    }

    /// Kills what is left, waits for the group to empty and removes it.
    ///
    /// # Errors
    ///
    /// The group does not empty in time or cannot be removed.
    pub async fn destroy(&self) -> Result<(), CgroupError> {
        if !self.dir.exists() {
            return Ok(());
        }
        self.kill_all()?;
        self.wait_event("populated", 0, "empty", EMPTY_TIMEOUT)
            .await?;
        match fs::remove_dir(&self.dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(CgroupError::Remove(self.dir.clone(), e))
            }
            _ => Ok(()),
        }
    }

    /// Polls `cgroup.events` until `key` has `value`.
    async fn wait_event(
        &self,
        key: &str,
        value: u64,
        state: &'static str,
        timeout: Duration,
    ) -> Result<(), CgroupError> {
        let events = self.dir.join("cgroup.events");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let text = read(&events)?;
            if cgroup_stats::keyed_value(&text, key) == value {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(CgroupError::Timeout {
                    path: self.dir.clone(),
                    state,
                    timeout,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().expect("temp dir");
        fs::write(
            root.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .expect("write");
        root
    }

    #[test]
    fn hierarchy_enables_the_container_controllers() {
        let root = fake_root();
        prepare_hierarchy(root.path()).expect("prepare");
        for dir in [root.path().to_path_buf(), root.path().join(PARENT)] {
            let text = fs::read_to_string(dir.join("cgroup.subtree_control")).expect("read");
            assert_eq!(text, "+cpu +memory +pids", "{}", dir.display());
        }
        prepare_hierarchy(root.path()).expect("preparing twice is fine");
    }

    #[test]
    fn limits_are_written_and_lifted() {
        let root = fake_root();
        prepare_hierarchy(root.path()).expect("prepare");
        let cg = Cgroup::create(root.path(), "c1").expect("create");
        assert!(
            Cgroup::create(root.path(), "c1").is_err(),
            "second create must fail"
        );

        let limits = Resources {
            memory_max: Some(64 << 20),
            cpu_max: Some((50_000, 100_000)),
            cpu_weight: Some(39),
            pids_max: Some(10),
        };
        cg.apply(&limits).expect("apply");
        let file = |n: &str| fs::read_to_string(cg.dir().join(n)).expect("read");
        assert_eq!(file("memory.max"), "67108864");
        assert_eq!(file("cpu.max"), "50000 100000");
        assert_eq!(file("cpu.weight"), "39");
        assert_eq!(file("pids.max"), "10");

        cg.apply(&Resources::default()).expect("lift");
        assert_eq!(file("memory.max"), "max");
        assert_eq!(file("cpu.max"), "max");
        assert_eq!(file("pids.max"), "max");
        assert_eq!(file("cpu.weight"), "39", "weight kept when not given");
    }

    #[test]
    fn pids_and_oom_count_are_read() {
        let root = fake_root();
        prepare_hierarchy(root.path()).expect("prepare");
        let cg = Cgroup::create(root.path(), "c1").expect("create");
        fs::write(cg.dir().join("cgroup.procs"), "12\n34\n").expect("write");
        fs::write(cg.dir().join("memory.events"), "oom 3\noom_kill 2\n").expect("write");
        assert_eq!(cg.pids().expect("pids"), vec![12, 34]);
        assert_eq!(cg.oom_kills().expect("oom"), 2);
        assert_eq!(cg.stats().pids_current, 0, "missing files read as zero");
    }
}
