#![allow(clippy::unwrap_used)]

use super::*;

/// A fake bzImage whose setup header points at `version`.
fn fake_bzimage(version: &str) -> Vec<u8> {
    let mut image = vec![0u8; 0x1000];
    image[HDRS_OFFSET..HDRS_OFFSET + 4].copy_from_slice(b"HdrS");
    let at = 0x800usize;
    image[KERNEL_VERSION_OFFSET..KERNEL_VERSION_OFFSET + 2]
        .copy_from_slice(&u16::try_from(at - 0x200).unwrap().to_le_bytes());
    image[at..at + version.len()].copy_from_slice(version.as_bytes());
    image
}

#[test]
fn release_from_setup_header() {
    let image = fake_bzimage("6.1.0-57-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP");
    assert_eq!(
        bzimage_release(&image).as_deref(),
        Some("6.1.0-57-cloud-amd64")
    );
    assert_eq!(bzimage_release(&[0u8; 0x300]), None, "no HdrS magic");
    let mut truncated = fake_bzimage("x");
    truncated.truncate(0x700);
    assert_eq!(bzimage_release(&truncated), None, "pointer past the end");
}

#[test]
fn release_of_a_file_without_release_in_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = dir.path().join("bzImage");
    std::fs::write(&kernel, fake_bzimage("6.6.7-lightpod #3")).unwrap();
    assert_eq!(kernel_release(&kernel).unwrap(), "6.6.7-lightpod");

    let elf = dir.path().join("vmlinux-6.6.7-min");
    std::fs::write(&elf, b"\x7fELF").unwrap();
    assert_eq!(
        kernel_release(&elf).unwrap(),
        "6.6.7-min",
        "from the file name"
    );

    let nameless = dir.path().join("kernel.bin");
    std::fs::write(&nameless, b"\x7fELF").unwrap();
    assert!(matches!(
        kernel_release(&nameless),
        Err(GuestImageError::KernelRelease { .. })
    ));
}

#[test]
fn host_kernel_release_matches_its_file_name() {
    let Ok(host) = find_host_kernel() else {
        eprintln!("SKIP host_kernel_release_matches_its_file_name: no host kernel with modules");
        return;
    };
    assert_eq!(kernel_release(&host.kernel).unwrap(), host.release);
}

#[test]
fn newest_kernel_with_modules_wins() {
    let root = tempfile::tempdir().unwrap();
    let (boot, modules) = (root.path().join("boot"), root.path().join("modules"));
    std::fs::create_dir_all(&boot).unwrap();
    for release in [
        "6.1.0-9-amd64",
        "6.1.0-10-amd64",
        "6.12.1-amd64",
        "5.10.0-30-amd64",
    ] {
        std::fs::write(boot.join(format!("vmlinuz-{release}")), b"").unwrap();
    }
    std::fs::write(boot.join("config-6.12.1-amd64"), b"").unwrap();
    for release in ["6.1.0-9-amd64", "6.1.0-10-amd64", "5.10.0-30-amd64"] {
        std::fs::create_dir_all(modules.join(release)).unwrap();
    }
    let found = find_kernel_in(&boot, &modules).unwrap();
    assert_eq!(
        found.release, "6.1.0-10-amd64",
        "6.12.1 has no modules; 10 > 9 numerically"
    );
    assert_eq!(found.modules_dir, modules.join("6.1.0-10-amd64"));

    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(matches!(
        find_kernel_in(&empty, &modules),
        Err(GuestImageError::NoKernel { .. })
    ));
}

#[test]
fn version_order() {
    let mut releases = vec!["6.1.0-10", "6.1.0-9", "6.10.1", "6.2", "6.1.0-10-rt"];
    releases.sort_by(|a, b| version_cmp(a, b));
    assert_eq!(
        releases,
        ["6.1.0-9", "6.1.0-10", "6.1.0-10-rt", "6.2", "6.10.1"]
    );
}
