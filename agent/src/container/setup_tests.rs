use std::path::Path;

use nix::{mount::MsFlags, sched::CloneFlags};

use super::*;
use crate::{
    spec::ProcessSpec,
    syscall::fake::{Call, RecordingSyscall},
};

fn request(target: InitTarget) -> InitRequest {
    InitRequest {
        container_id: "c1".into(),
        cgroup_dir: "/sys/fs/cgroup/lightpod/c1".into(),
        target,
        process: ProcessSpec {
            args: vec!["sh".into()],
            ..Default::default()
        },
    }
}

fn create_target(pod_init_pid: Option<i32>) -> InitTarget {
    InitTarget::Create {
        setup: setup(),
        pod_init_pid,
    }
}

fn setup() -> ContainerSetup {
    ContainerSetup {
        rootfs: "/run/lightpod/shared/c1/rootfs".into(),
        readonly_rootfs: true,
        hostname: "pod".into(),
        sysctls: vec![("net.ipv4.ip_forward".into(), "1".into())],
        readonly_paths: vec!["/proc/sys".into()],
        ..Default::default()
    }
}

#[test]
fn create_runs_the_steps_in_order() {
    let sys = RecordingSyscall::default()
        .with_dir("/run/lightpod/shared/c1/rootfs")
        .with_dir("/proc/sys");
    enter_container(&sys, &request(create_target(None))).expect("create");
    let calls = sys.calls();
    let at = |what: &dyn Fn(&Call) -> bool, name: &str| {
        calls
            .iter()
            .position(what)
            .unwrap_or_else(|| panic!("{name} missing: {calls:#?}"))
    };

    let cgroup = at(
        &|c| matches!(c, Call::WriteFile(p, v) if p.ends_with("cgroup.procs") && v == "0"),
        "join cgroup",
    );
    let unshare = at(
        &|c| matches!(c, Call::Unshare(f) if f.contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS | CloneFlags::CLONE_NEWIPC)),
        "unshare",
    );
    assert!(
        !calls
            .iter()
            .any(|c| matches!(c, Call::Unshare(f) if f.contains(CloneFlags::CLONE_NEWPID))),
        "no PID namespace"
    );
    let private = at(
        &|c| matches!(c, Call::Mount { flags, .. } if *flags == MsFlags::MS_REC | MsFlags::MS_SLAVE),
        "private",
    );
    let proc_mount = at(
        &|c| matches!(c, Call::Mount { fstype: Some(t), .. } if t == "proc"),
        "proc",
    );
    let pivot = at(&|c| matches!(c, Call::PivotRoot(..)), "pivot_root");
    let hostname = at(&|c| *c == Call::Sethostname("pod".into()), "hostname");
    let sysctl = at(
        &|c| matches!(c, Call::WriteFile(p, _) if p == Path::new("/proc/sys/net/ipv4/ip_forward")),
        "sysctl",
    );
    let ro_paths = at(
        &|c| matches!(c, Call::Mount { target, flags, .. } if target == Path::new("/proc/sys") && flags.contains(MsFlags::MS_REMOUNT)),
        "readonly path",
    );
    let ro_root = at(
        &|c| matches!(c, Call::Mount { target, flags, .. } if target == Path::new("/") && flags.contains(MsFlags::MS_RDONLY)),
        "ro root",
    );

    let order = [
        cgroup, unshare, private, proc_mount, pivot, hostname, sysctl, ro_paths, ro_root,
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "steps out of order: {order:?}"
    );
}

#[test]
fn pivot_falls_back_to_move_and_chroot_on_an_initramfs() {
    let sys = RecordingSyscall::default()
        .with_dir("/run/lightpod/shared/c1/rootfs")
        .failing("pivot_root", libc::EINVAL);
    enter_container(&sys, &request(create_target(None))).expect("create");
    let calls = sys.calls();
    assert!(calls
        .iter()
        .any(|c| matches!(c, Call::Mount { flags, .. } if flags.contains(MsFlags::MS_MOVE))));
    assert!(calls.contains(&Call::Chroot(".".into())));
}

#[test]
fn missing_rootfs_is_reported() {
    let sys = RecordingSyscall::default();
    let err = enter_container(&sys, &request(create_target(None))).expect_err("no rootfs");
    assert!(err.to_string().contains("rootfs"), "{err}");
}

#[test]
fn join_enters_the_init_namespaces_mount_last() {
    let sys = RecordingSyscall::default();
    enter_container(&sys, &request(InitTarget::Join { init_pid: 42 })).expect("join");
    let setns: Vec<(String, CloneFlags)> = sys
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Setns(p, f) => Some((p.display().to_string(), f)),
            _ => None,
        })
        .collect();
    assert_eq!(setns.len(), 4);
    assert_eq!(
        setns[3],
        ("/proc/42/ns/mnt".to_string(), CloneFlags::CLONE_NEWNS)
    );
    assert!(
        sys.calls()[0]
            == Call::WriteFile("/sys/fs/cgroup/lightpod/c1/cgroup.procs".into(), "0".into()),
        "cgroup first"
    );
}

#[test]
fn sysctl_keys_map_to_proc_paths() {
    assert_eq!(
        sysctl_path("kernel.shm_rmid_forced"),
        Path::new("/proc/sys/kernel/shm_rmid_forced")
    );
    assert_eq!(
        sysctl_path("net/ipv4/conf/eth0.100/forwarding"),
        Path::new("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
    );
}

#[test]
fn a_pod_container_joins_the_sandbox_uts_and_ipc_and_creates_the_rest() {
    let sys = RecordingSyscall::default().with_dir("/run/lightpod/shared/c1/rootfs");
    enter_container(&sys, &request(create_target(Some(7)))).expect("create");
    let calls = sys.calls();
    let joined: Vec<String> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Setns(p, _) => Some(p.display().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(joined, ["/proc/7/ns/ipc", "/proc/7/ns/uts"]);
    let unshared = calls
        .iter()
        .find_map(|c| match c {
            Call::Unshare(flags) => Some(*flags),
            _ => None,
        })
        .expect("unshare");
    assert_eq!(
        unshared,
        CloneFlags::CLONE_NEWCGROUP | CloneFlags::CLONE_NEWNS,
        "only the namespaces not shared with the pod are new"
    );
}
