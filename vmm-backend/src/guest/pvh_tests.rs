#![allow(clippy::unwrap_used)]

use super::*;

pub(crate) fn note(owner: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(owner.len() as u32).to_le_bytes());
    out.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(owner);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out.extend_from_slice(desc);
    out.resize(out.len().div_ceil(4) * 4, 0);
    out
}

/// An ELF64 little-endian file with one `PT_NOTE` program header over `notes`.
pub(crate) fn elf_with_notes(notes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    out[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    out[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    let mut header = vec![0u8; 56];
    header[..4].copy_from_slice(&PT_NOTE.to_le_bytes());
    header[8..16].copy_from_slice(&120u64.to_le_bytes());
    header[32..40].copy_from_slice(&(notes.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(notes);
    out
}

#[test]
fn pvh_entry_note_is_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let entry = 0x0100_0500u32.to_le_bytes();
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        (
            "PVH note after other Xen notes",
            elf_with_notes(&[note(b"Xen\0", 6, b"linux\0"), note(b"Xen\0", 18, &entry)].concat()),
            true,
        ),
        (
            "Xen notes without the PVH entry",
            elf_with_notes(&note(b"Xen\0", 5, b"xen-3.0\0")),
            false,
        ),
        (
            "type 18 from another owner",
            elf_with_notes(&note(b"GNU\0", 18, &entry)),
            false,
        ),
        ("no notes", elf_with_notes(&[]), false),
        ("a bzImage, not an ELF", b"MZ\x00\x00HdrS".repeat(16), false),
        (
            "shorter than an ELF header",
            b"\x7fELF\x02\x01".to_vec(),
            false,
        ),
        (
            "a 32-bit ELF",
            {
                let mut elf = elf_with_notes(&note(b"Xen\0", 18, &entry));
                elf[4] = 1;
                elf
            },
            false,
        ),
        (
            "notes cut short in the owner's name",
            {
                let mut elf = elf_with_notes(&note(b"Xen\0", 18, &entry));
                elf.truncate(elf.len() - 10);
                elf
            },
            false,
        ),
        (
            "entry address cut short",
            {
                let mut elf = elf_with_notes(&note(b"Xen\0", 18, &entry));
                elf.truncate(elf.len() - 2);
                elf
            },
            false,
        ),
        (
            "PVH note without an address",
            elf_with_notes(&note(b"Xen\0", 18, &[])),
            false,
        ),
        (
            "program headers beyond what seek reaches",
            {
                let mut elf = elf_with_notes(&note(b"Xen\0", 18, &entry));
                elf[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
                elf
            },
            false,
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.path().join("kernel");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(has_pvh_entry(&path).unwrap(), want, "{name}");
    }
    assert!(
        has_pvh_entry(&dir.path().join("missing")).is_err(),
        "a missing file is an error, not a kernel without PVH"
    );
}

#[test]
fn the_elf_beside_a_vmlinuz_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let bzimage = dir.path().join("vmlinuz");
    std::fs::write(&bzimage, "bz").unwrap();
    assert_eq!(elf_beside(&bzimage), None, "no vmlinux yet");
    std::fs::write(dir.path().join("vmlinux"), "elf").unwrap();
    assert_eq!(elf_beside(&bzimage), Some(dir.path().join("vmlinux")));
    let distro = dir.path().join("vmlinuz-6.1.0-57-cloud-amd64");
    std::fs::write(&distro, "bz").unwrap();
    assert_eq!(
        elf_beside(&distro),
        None,
        "another kernel's name has no companion"
    );
}
