use std::path::Path;

use nix::mount::MsFlags;

use super::*;
use crate::syscall::fake::{Call, RecordingSyscall};

fn spec(dest: &str, fs_type: &str, source: &str, options: &[&str]) -> MountSpec {
    MountSpec {
        destination: dest.into(),
        fs_type: fs_type.into(),
        source: source.into(),
        options: MountOptions::parse(options),
    }
}

fn destinations(list: &[MountSpec]) -> Vec<String> {
    list.iter()
        .map(|m| m.destination.display().to_string())
        .collect()
}

#[test]
fn plan_adds_defaults_before_the_request_and_skips_replaced_ones() {
    let requested = [spec("/data", "bind", "/run/v", &["rbind"])];
    assert_eq!(
        destinations(&plan(&requested)),
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/data"
        ]
    );

    let requested = [
        spec("/proc", "proc", "proc", &[]),
        spec("/dev", "tmpfs", "tmpfs", &["mode=755"]),
        spec("/etc/hosts", "bind", "/run/hosts", &["rbind", "ro"]),
    ];
    let planned = destinations(&plan(&requested));
    let at = |d: &str| {
        planned
            .iter()
            .position(|p| p == d)
            .unwrap_or_else(|| panic!("{d} missing"))
    };
    assert_eq!(
        planned.iter().filter(|p| *p == "/proc").count(),
        1,
        "requested /proc replaces ours"
    );
    assert!(
        at("/dev") < at("/dev/pts"),
        "a default goes after its requested parent: {planned:?}"
    );
    assert!(
        at("/dev/pts") < at("/etc/hosts"),
        "and before later requests: {planned:?}"
    );
}

#[test]
fn read_only_bind_is_bind_then_remount() {
    let sys = RecordingSyscall::default().with_dir("/run/v");
    let m = spec(
        "/data",
        "bind",
        "/run/v",
        &["rbind", "ro", "nosuid", "rprivate"],
    );
    mount_one(&sys, Path::new("/root"), &m).expect("mount");
    let dest = Path::new("/root/data").to_path_buf();
    assert_eq!(
        sys.calls(),
        vec![
            Call::CreateDirAll(dest.clone()),
            Call::Mount {
                source: Some("/run/v".into()),
                target: dest.clone(),
                fstype: None,
                flags: MsFlags::MS_BIND | MsFlags::MS_REC,
                data: None,
            },
            Call::Mount {
                source: None,
                target: dest.clone(),
                fstype: None,
                flags: MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID,
                data: None,
            },
            Call::Mount {
                source: None,
                target: dest,
                fstype: None,
                flags: MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                data: None,
            },
        ]
    );
}

#[test]
fn file_bind_creates_a_file_and_tmpfs_passes_data() {
    let sys = RecordingSyscall::default().with_file("/run/hosts");
    mount_one(
        &sys,
        Path::new("/r"),
        &spec("/etc/hosts", "", "/run/hosts", &["bind"]),
    )
    .expect("bind file");
    mount_one(
        &sys,
        Path::new("/r"),
        &spec("/tmp", "tmpfs", "", &["nosuid", "size=1m"]),
    )
    .expect("tmpfs");
    let calls = sys.calls();
    assert_eq!(
        calls[0],
        Call::CreateFile("/r/etc/hosts".into()),
        "file mount point"
    );
    assert_eq!(
        calls.last(),
        Some(&Call::Mount {
            source: Some("tmpfs".into()),
            target: "/r/tmp".into(),
            fstype: Some("tmpfs".into()),
            flags: MsFlags::MS_NOSUID,
            data: Some("size=1m".into()),
        }),
        "an empty source takes the fs type's name"
    );
}

#[test]
fn mount_failures_name_the_destination() {
    let sys = RecordingSyscall::default().failing("mount", libc::ENODEV);
    let err = mount_one(&sys, Path::new("/r"), &spec("/x", "nfs", "srv:/x", &[]))
        .expect_err("mount fails");
    let SetupFailure::Step { step, detail } = err else {
        panic!("not a step failure")
    };
    assert_eq!(step, "mount nfs on /x");
    assert!(detail.contains("No such device"), "{detail}");
}

#[test]
fn masked_and_readonly_paths() {
    let sys = RecordingSyscall::default()
        .with_dir("/proc/acpi")
        .with_file("/proc/kcore")
        .with_dir("/proc/sys");
    let masked: Vec<std::path::PathBuf> = ["/proc/acpi", "/proc/kcore", "/proc/absent"]
        .map(Into::into)
        .to_vec();
    mask_paths(&sys, &masked).expect("mask");
    readonly_paths(&sys, &["/proc/sys".into(), "/proc/nothing".into()]).expect("ro");
    let mounts = sys.mounts();
    assert_eq!(mounts.len(), 4, "absent paths are skipped: {mounts:?}");
    assert!(
        matches!(&mounts[0], Call::Mount { fstype: Some(t), flags, .. }
        if t == "tmpfs" && flags.contains(MsFlags::MS_RDONLY)),
        "directory gets a ro tmpfs"
    );
    assert!(
        matches!(&mounts[1], Call::Mount { source: Some(s), .. } if s == "/dev/null"),
        "file gets /dev/null"
    );
    assert!(
        matches!(&mounts[3], Call::Mount { flags, .. }
        if flags.contains(MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY)),
        "read-only remount"
    );
}

#[test]
fn dev_gets_devices_and_links() {
    let sys = RecordingSyscall::default();
    populate_dev(&sys, Path::new("/r")).expect("dev");
    let calls = sys.calls();
    assert!(calls.contains(&Call::MknodChar("/r/dev/null".into(), 0o666, 1, 3)));
    assert!(calls.contains(&Call::Symlink("pts/ptmx".into(), "/r/dev/ptmx".into())));
    let existing = RecordingSyscall::default().failing("mknod", libc::EEXIST);
    assert!(
        populate_dev(&existing, Path::new("/r")).is_ok(),
        "existing nodes are kept"
    );
}
