//! Pods boot lightpod's kernel through its PVH entry point (QEMU loads the ELF `vmlinux`
//! installed beside `vmlinuz`) unless `qemu.pvh_boot = false`. The guest tells which entry
//! it came through: Linux's PVH entry code fills in the boot parameters itself and stamps
//! them with boot protocol 2.12, while a bzImage's own setup header (protocol 2.15 in Linux
//! 6.1) reaches the kernel otherwise. `/sys/kernel/boot_params/version` shows it.

use std::path::Path;

use lightpod_e2e::{
    shim::{stderr, stdout, ShimTest},
    skip_or_fail,
};

/// The boot protocol version Linux's PVH entry writes into the boot parameters.
const PVH_BOOT_PROTOCOL: &str = "0x020c";

#[test]
fn pods_boot_through_the_pvh_entry_unless_turned_off() {
    const TEST: &str = "pods_boot_through_the_pvh_entry_unless_turned_off";
    // Only lightpod's kernel build installs the ELF vmlinux beside its vmlinuz.
    let kernel = std::env::var("LIGHTPOD_E2E_KERNEL").unwrap_or_default();
    let kernel = Path::new(&kernel);
    if !kernel.file_name().is_some_and(|n| n == "vmlinuz")
        || !kernel.with_file_name("vmlinux").is_file()
    {
        return skip_or_fail(
            TEST,
            &format!(
                "LIGHTPOD_E2E_KERNEL={} is not lightpod's kernel build (vmlinuz with vmlinux \
                 beside it)",
                kernel.display()
            ),
        );
    }
    let t = ShimTest::new("shim-pvh-boot");
    let base = std::env::var("LIGHTPOD_CONFIG").expect("LIGHTPOD_CONFIG: run with e2e/run.sh");
    let text = std::fs::read_to_string(&base).expect("read the shims' configuration");
    assert!(
        !text.contains("[qemu]"),
        "the shims' configuration has a [qemu] table already; this test appends its own"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let off = dir.path().join("bzimage.toml");
    std::fs::write(&off, format!("{text}\n[qemu]\npvh_boot = false\n")).expect("write");
    let off = off.to_string_lossy().into_owned();

    let version = ["cat", "/sys/kernel/boot_params/version"];
    let pvh = t.run(&["--rm"], "pvh", &version);
    assert_eq!(pvh.status.code(), Some(0), "stderr: {}", stderr(&pvh));
    let bzimage = t.run(
        &["--rm", "--runtime-config-path", &off],
        "bzimage",
        &version,
    );
    assert_eq!(
        bzimage.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&bzimage)
    );

    let (pvh, bzimage) = (stdout(&pvh), stdout(&bzimage));
    assert_eq!(
        pvh.trim(),
        PVH_BOOT_PROTOCOL,
        "a default pod boots through the PVH entry (boot protocol {PVH_BOOT_PROTOCOL})"
    );
    assert!(
        bzimage.trim().starts_with("0x02") && bzimage.trim() != PVH_BOOT_PROTOCOL,
        "with qemu.pvh_boot = false the bzImage's setup header reaches the kernel, got {bzimage:?}"
    );
    t.assert_clean();
}
