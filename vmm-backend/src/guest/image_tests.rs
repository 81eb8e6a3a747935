#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use super::*;

/// A fake kernel, modules directory and agent.
struct Inputs {
    _root: tempfile::TempDir,
    source: GuestImageSource,
}

fn inputs() -> Inputs {
    let root = tempfile::tempdir().unwrap();
    let kernel = root.path().join("vmlinuz-6.1.0-test");
    std::fs::write(&kernel, b"not a bzImage; release from the name").unwrap();
    let modules = root.path().join("modules");
    let mut dep = String::new();
    for (path, deps) in [
        ("kernel/drivers/virtio/virtio_ring.ko", ""),
        (
            "kernel/drivers/virtio/virtio.ko",
            "kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/virtio/virtio_mmio.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/virtio/virtio_pci.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/char/virtio_console.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/block/virtio_blk.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/drivers/net/virtio_net.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
        (
            "kernel/fs/fuse/virtiofs.ko",
            "kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko",
        ),
    ] {
        let file = modules.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("module {path}")).unwrap();
        dep.push_str(&format!("{path}: {deps}\n"));
    }
    std::fs::write(modules.join("modules.dep"), dep).unwrap();
    // fuse and overlay are built into this fake kernel.
    std::fs::write(
        modules.join("modules.builtin"),
        "kernel/fs/fuse/fuse.ko\nkernel/fs/overlayfs/overlay.ko\n",
    )
    .unwrap();
    let agent = root.path().join("agent");
    std::fs::write(&agent, b"\x7fELF agent").unwrap();
    let source = GuestImageSource {
        kernel,
        modules_dir: Some(modules),
        agent,
        cache_dir: root.path().join("cache"),
    };
    Inputs {
        _root: root,
        source,
    }
}

/// `cpio -i --to-stdout <member>` of an archive, `None` without GNU cpio.
fn member(archive: &Path, name: &str) -> Option<Vec<u8>> {
    let out = Command::new("cpio")
        .args(["-i", "--quiet", "--to-stdout", name])
        .stdin(std::fs::File::open(archive).unwrap())
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    assert!(out.status.success(), "cpio -i failed");
    Some(out.stdout)
}

#[test]
fn builds_once_then_reuses() {
    let inputs = inputs();
    let first = GuestImage::build_or_reuse(&inputs.source).unwrap();
    assert!(first.built, "first call builds");
    assert_eq!(first.kernel_release, "6.1.0-test");
    assert_eq!(
        first.initrd,
        inputs
            .source
            .cache_dir
            .join(&first.digest)
            .join("initrd.img")
    );
    assert!(first.initrd.is_file());
    let leftovers: Vec<_> = std::fs::read_dir(first.initrd.parent().unwrap())
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");

    let second = GuestImage::build_or_reuse(&inputs.source).unwrap();
    assert!(!second.built, "second call reuses");
    assert_eq!(second.digest, first.digest);

    std::fs::write(&inputs.source.agent, b"\x7fELF agent v2").unwrap();
    let third = GuestImage::build_or_reuse(&inputs.source).unwrap();
    assert!(third.built, "a new agent is a new image");
    assert_ne!(third.digest, first.digest);
}

#[test]
fn holds_init_and_modules_in_load_order() {
    let inputs = inputs();
    let image = GuestImage::build_or_reuse(&inputs.source).unwrap();
    let Some(load) = member(&image.initrd, "etc/lightpod/modules.load") else {
        eprintln!("SKIP holds_init_and_modules_in_load_order: no cpio (apt-get install cpio)");
        return;
    };
    let load = String::from_utf8(load).unwrap();
    let lines: Vec<&str> = load.lines().collect();
    let base = "/lib/modules/6.1.0-test/kernel";
    assert_eq!(
        lines[0],
        format!("{base}/drivers/virtio/virtio_ring.ko"),
        "deepest dependency first"
    );
    assert_eq!(lines[1], format!("{base}/drivers/virtio/virtio.ko"));
    assert_eq!(
        lines.len(),
        8,
        "six drivers and two dependencies, no built-ins: {load}"
    );
    assert!(
        !load.contains("fuse.ko") && !load.contains("overlay"),
        "built-ins skipped: {load}"
    );
    assert_eq!(member(&image.initrd, "init").unwrap(), b"\x7fELF agent");
    let module = member(
        &image.initrd,
        "lib/modules/6.1.0-test/kernel/fs/fuse/virtiofs.ko",
    )
    .unwrap();
    assert_eq!(module, b"module kernel/fs/fuse/virtiofs.ko");
}

#[test]
fn kernel_without_modules_gets_none() {
    let mut inputs = inputs();
    inputs.source.modules_dir = None;
    let image = GuestImage::build_or_reuse(&inputs.source).unwrap();
    let Some(load) = member(&image.initrd, "etc/lightpod/modules.load") else {
        eprintln!("SKIP kernel_without_modules_gets_none: no cpio (apt-get install cpio)");
        return;
    };
    assert!(load.is_empty(), "empty modules.load");
}

#[test]
fn missing_inputs_are_named() {
    let mut inputs = inputs();
    inputs.source.agent = inputs.source.cache_dir.join("no-agent");
    match GuestImage::build_or_reuse(&inputs.source) {
        Err(GuestImageError::MissingInput { what, .. }) => assert_eq!(what, "agent"),
        other => panic!("expected MissingInput, got {other:?}"),
    }
    let modules = inputs.source.modules_dir.clone().unwrap();
    std::fs::remove_file(modules.join("kernel/drivers/net/virtio_net.ko")).unwrap();
    std::fs::write(
        modules.join("modules.dep"),
        "kernel/drivers/virtio/virtio_ring.ko:\n",
    )
    .unwrap();
    inputs.source.agent = inputs.source.kernel.clone();
    assert!(matches!(
        GuestImage::build_or_reuse(&inputs.source),
        Err(GuestImageError::ModuleNotFound { .. })
    ));
}
