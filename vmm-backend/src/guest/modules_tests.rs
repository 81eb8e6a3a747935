#![allow(clippy::unwrap_used)]

use std::process::Command;

use super::*;

const DEP: &str = "\
kernel/fs/fuse/fuse.ko:
kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko.xz: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
";

const BUILTIN: &str = "kernel/fs/overlayfs/overlay.ko\n";

fn index() -> ModuleIndex {
    ModuleIndex::parse(Path::new("/lib/modules/6.1"), DEP, BUILTIN)
}

fn names(modules: &[ResolvedModule]) -> Vec<&str> {
    modules.iter().map(|m| m.name.as_str()).collect()
}

#[test]
fn dependencies_come_first_each_once() {
    let resolved = index()
        .resolve(&["virtio_net", "virtiofs", "virtio_mmio", "overlay"])
        .unwrap();
    assert_eq!(
        names(&resolved),
        [
            "virtio_ring",
            "virtio",
            "failover",
            "net_failover",
            "virtio_net",
            "fuse",
            "virtiofs",
            "virtio_mmio"
        ],
        "load order, built-in overlay left out"
    );
    let net = resolved.iter().find(|m| m.name == "virtio_net").unwrap();
    assert_eq!(
        net.guest_rel_path, "kernel/drivers/net/virtio_net.ko",
        "compression suffix dropped"
    );
    assert_eq!(
        net.host_path,
        Path::new("/lib/modules/6.1/kernel/drivers/net/virtio_net.ko.xz")
    );
}

#[test]
fn dash_and_underscore_are_the_same_module() {
    let resolved = index().resolve(&["virtio_rng"]).unwrap();
    assert_eq!(names(&resolved), ["virtio_ring", "virtio", "virtio_rng"]);
}

#[test]
fn unknown_module_is_an_error() {
    match index().resolve(&["virtio_gpu"]) {
        Err(GuestImageError::ModuleNotFound { name, .. }) => assert_eq!(name, "virtio_gpu"),
        other => panic!("expected ModuleNotFound, got {other:?}"),
    }
}

#[test]
fn compressed_modules_are_decompressed() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("m.ko");
    std::fs::write(&plain, b"\x7fELF module bytes").unwrap();
    let status = Command::new("xz").arg("-k").arg(&plain).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("SKIP compressed_modules_are_decompressed: no xz (apt-get install xz-utils)");
        return;
    }
    let module = ResolvedModule {
        name: "m".into(),
        host_path: dir.path().join("m.ko.xz"),
        guest_rel_path: "m.ko".into(),
    };
    assert_eq!(module.read().unwrap(), b"\x7fELF module bytes");

    std::fs::write(dir.path().join("bad.ko.xz"), b"not xz").unwrap();
    let bad = ResolvedModule {
        host_path: dir.path().join("bad.ko.xz"),
        ..module
    };
    assert!(matches!(
        bad.read(),
        Err(GuestImageError::Decompress { tool: "xz", .. })
    ));
}

#[test]
fn host_kernel_modules_resolve() {
    let Ok(kernel) = crate::guest::find_host_kernel() else {
        eprintln!("SKIP host_kernel_modules_resolve: no /boot/vmlinuz-* with /lib/modules");
        return;
    };
    let index = ModuleIndex::load(&kernel.modules_dir).unwrap();
    let resolved = index.resolve(GUEST_MODULES).unwrap();
    for module in &resolved {
        assert!(
            module.host_path.exists(),
            "{} exists",
            module.host_path.display()
        );
    }
    let pos = |n: &str| resolved.iter().position(|m| m.name == n);
    if let (Some(virtio), Some(console)) = (pos("virtio"), pos("virtio_console")) {
        assert!(virtio < console, "virtio loads before virtio_console");
    }
}
