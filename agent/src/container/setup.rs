//! The namespace and filesystem half of a container init: build the container (its init
//! process) or join it (an exec process). Runs in the single-threaded container init only.

use std::path::{Path, PathBuf};

use nix::{
    mount::{MntFlags, MsFlags},
    sched::CloneFlags,
};

use crate::{
    container::mounts,
    init::{
        wire::{InitRequest, InitTarget},
        SetupFailure,
    },
    spec::ContainerSetup,
    syscall::Syscall,
};

/// Namespaces each container gets. No PID namespace: see the `init` module.
const CONTAINER_NAMESPACES: [(&str, CloneFlags); 4] = [
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    // Last: after it, guest paths such as /proc/<pid>/ns are no longer reachable.
    ("mnt", CloneFlags::CLONE_NEWNS),
];

/// Puts the calling process into the container the request names, ready for the process's
/// own settings (credentials, terminal, cwd) and `execve`.
pub fn enter_container(sys: &dyn Syscall, req: &InitRequest) -> Result<(), SetupFailure> {
    join_cgroup(sys, &req.cgroup_dir)?;
    match &req.target {
        InitTarget::Create {
            setup,
            pod_init_pid,
        } => create(sys, setup, *pod_init_pid),
        InitTarget::Join { init_pid } => join(sys, *init_pid),
    }
}

/// Moves the calling process into the cgroup, first, so everything it does later counts.
fn join_cgroup(sys: &dyn Syscall, dir: &Path) -> Result<(), SetupFailure> {
    sys.write_file(&dir.join("cgroup.procs"), "0")
        .map_err(SetupFailure::io(format!("join cgroup {}", dir.display())))
}

/// Namespaces a container shares with its pod's sandbox container (the CRI's pod-level
/// hostname and IPC), joined before the rest are created.
const POD_NAMESPACES: [(&str, CloneFlags); 2] = [
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
];

/// Builds the container around the calling process; with `pod_init_pid`, in the UTS and IPC
/// namespaces of that process.
fn create(
    sys: &dyn Syscall,
    setup: &ContainerSetup,
    pod_init_pid: Option<i32>,
) -> Result<(), SetupFailure> {
    let mut flags = CONTAINER_NAMESPACES
        .iter()
        .fold(CloneFlags::empty(), |all, (_, f)| all | *f);
    if let Some(pid) = pod_init_pid {
        for (name, flag) in POD_NAMESPACES {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            sys.setns(&path, flag)
                .map_err(SetupFailure::io(format!("join the pod's {name} namespace")))?;
            flags.remove(flag);
        }
    }
    sys.unshare(flags)
        .map_err(SetupFailure::io("unshare namespaces"))?;

    // Nothing mounted from here on may leak back into the guest's namespace, while mounts
    // the host adds to a shared volume later still reach the container (slave, as runc's
    // default root propagation): a volume with HostToContainer propagation depends on it.
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None,
    )
    .map_err(SetupFailure::io("make mounts slaves of the guest's"))?;

    let rootfs = &setup.rootfs;
    if !sys.is_dir(rootfs) {
        return Err(SetupFailure::Step {
            step: format!("open rootfs {}", rootfs.display()),
            detail: "not a directory".into(),
        });
    }
    let root = rootfs.to_str().unwrap_or_default();
    sys.mount(
        Some(root),
        rootfs,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(SetupFailure::io(format!(
        "bind rootfs {}",
        rootfs.display()
    )))?;

    let plan = mounts::plan(&setup.mounts);
    for m in &plan {
        mounts::mount_one(sys, rootfs, m)?;
    }
    let dev_is_tmpfs = plan
        .iter()
        .rev()
        .find(|m| m.destination == Path::new("/dev"))
        .is_some_and(|m| m.fs_type == "tmpfs");
    if dev_is_tmpfs {
        mounts::populate_dev(sys, rootfs)?;
    }

    enter_rootfs(sys, rootfs)?;

    if !setup.hostname.is_empty() {
        sys.sethostname(&setup.hostname)
            .map_err(SetupFailure::io("set hostname"))?;
    }
    // Before the read-only paths: containerd's defaults make /proc/sys read-only.
    for (key, value) in &setup.sysctls {
        let path = sysctl_path(key);
        sys.write_file(&path, value)
            .map_err(SetupFailure::io(format!("set sysctl {key}")))?;
    }
    mounts::mask_paths(sys, &setup.masked_paths)?;
    mounts::readonly_paths(sys, &setup.readonly_paths)?;
    if setup.readonly_rootfs {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        sys.mount(None, Path::new("/"), None, flags, None)
            .map_err(SetupFailure::io("remount rootfs read-only"))?;
    }
    Ok(())
}

/// Makes `rootfs` the root with `pivot_root(".", ".")` (pivot_root(2), NOTES) and detaches the
/// old root. When the guest root cannot be pivoted (an initramfs that was not re-rooted at
/// boot), falls back to moving the rootfs onto `/` and `chroot`.
fn enter_rootfs(sys: &dyn Syscall, rootfs: &Path) -> Result<(), SetupFailure> {
    sys.chdir(rootfs)
        .map_err(SetupFailure::io(format!("chdir {}", rootfs.display())))?;
    let here = Path::new(".");
    match sys.pivot_root(here, here) {
        Ok(()) => {
            sys.umount(here, MntFlags::MNT_DETACH)
                .map_err(SetupFailure::io("detach old root"))?;
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let root = rootfs.to_str().unwrap_or_default();
            sys.mount(Some(root), Path::new("/"), None, MsFlags::MS_MOVE, None)
                .map_err(SetupFailure::io("move rootfs to /"))?;
            sys.chroot(here).map_err(SetupFailure::io("chroot"))?;
        }
        Err(e) => return Err(SetupFailure::io("pivot_root")(e)),
    }
    sys.chdir(Path::new("/"))
        .map_err(SetupFailure::io("chdir /"))
}

/// Joins the namespaces of the container's init. `setns` of the mount namespace also sets
/// root and working directory to the namespace's root (setns(2)), which is the container's.
fn join(sys: &dyn Syscall, init_pid: i32) -> Result<(), SetupFailure> {
    for (name, flag) in CONTAINER_NAMESPACES {
        let path = PathBuf::from(format!("/proc/{init_pid}/ns/{name}"));
        sys.setns(&path, flag)
            .map_err(SetupFailure::io(format!("join {name} namespace")))?;
    }
    Ok(())
}

/// `/proc/sys` path of a sysctl key: dots separate levels unless the key uses slashes.
pub fn sysctl_path(key: &str) -> PathBuf {
    let relative = if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    };
    Path::new("/proc/sys").join(relative)
}

#[cfg(test)]
#[path = "setup_tests.rs"]
mod tests;
