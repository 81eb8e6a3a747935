//! The uncompressed kernel that boots through its PVH entry point.
//!
//! lightpod's kernel build installs `vmlinux`, an ELF file of the same build, beside the
//! `vmlinuz` bzImage. A VMM that loads the ELF jumps straight to the kernel's 32-bit PVH
//! entry: no decompression and no real-mode set-up, which under TCG is about 85 ms of every
//! boot. QEMU loads such a kernel on any x86 machine type, provided it carries the PVH entry
//! note (Xen's ELF note `XEN_ELFNOTE_PHYS32_ENTRY`, from `CONFIG_PVH`); without it QEMU
//! refuses the file. Xen's libxc loads the ELF for PV and PVH domains alike.

use std::{
    fs::File,
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

/// Owner name of Xen's ELF notes, with its terminating NUL.
const XEN_NOTE_OWNER: &[u8] = b"Xen\0";
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit physical address of the PVH entry point.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// `PT_NOTE`: a program header that holds notes.
const PT_NOTE: u32 = 4;
/// More program headers than a kernel has; a larger count means the file is not one.
const MAX_PROGRAM_HEADERS: u16 = 64;
/// More note bytes than a kernel's notes take (about 500 bytes in lightpod's).
const MAX_NOTE_BYTES: u64 = 64 * 1024;

/// The ELF `vmlinux` beside a kernel named `vmlinuz`, when there is one. Both come from one
/// build (lightpod's `build-kernel.sh` installs them together); any other kernel name has no
/// such companion.
pub fn elf_beside(kernel: &Path) -> Option<PathBuf> {
    let elf = kernel.with_file_name("vmlinux");
    (kernel.file_name().is_some_and(|n| n == "vmlinuz") && elf.is_file()).then_some(elf)
}

/// Whether `path` is a little-endian ELF64 file carrying the PVH entry note, with its
/// 4- or 8-byte entry address.
///
/// # Errors
///
/// The file cannot be opened or read. A file that is not such an ELF is `Ok(false)`.
pub fn has_pvh_entry(path: &Path) -> io::Result<bool> {
    let mut file = File::open(path)?;
    let mut header = [0u8; 64];
    if read_full(&mut file, &mut header)? < header.len() {
        return Ok(false);
    }
    // e_ident: magic, class 2 (64-bit), data 1 (little-endian).
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Ok(false);
    }
    let ph_offset = u64_at(&header, 0x20);
    let ph_size = u16_at(&header, 0x36);
    let ph_count = u16_at(&header, 0x38);
    if ph_size < 56 || ph_count > MAX_PROGRAM_HEADERS || !seekable(ph_offset) {
        return Ok(false);
    }

    let mut table = vec![0u8; usize::from(ph_size) * usize::from(ph_count)];
    file.seek(SeekFrom::Start(ph_offset))?;
    if read_full(&mut file, &mut table)? < table.len() {
        return Ok(false);
    }
    for entry in table.chunks_exact(usize::from(ph_size)) {
        if u32_at(entry, 0) != PT_NOTE {
            continue;
        }
        let (offset, size) = (u64_at(entry, 8), u64_at(entry, 32));
        if size > MAX_NOTE_BYTES || !seekable(offset) {
            continue;
        }
        let mut notes = vec![0u8; size as usize];
        file.seek(SeekFrom::Start(offset))?;
        let read = read_full(&mut file, &mut notes)?;
        if has_xen_note(&notes[..read], XEN_ELFNOTE_PHYS32_ENTRY) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Walks a note segment (ELF's `Elf64_Nhdr` entries, name and descriptor each padded to 4
/// bytes) looking for a whole Xen note of type `wanted` whose descriptor is an address (4 or
/// 8 bytes).
fn has_xen_note(mut notes: &[u8], wanted: u32) -> bool {
    while notes.len() >= 12 {
        let name_size = u64::from(u32_at(notes, 0));
        let desc_size = u64::from(u32_at(notes, 4));
        let kind = u32_at(notes, 8);
        let name_end = 12 + name_size;
        let next = 12 + padded(name_size) + padded(desc_size);
        if next > notes.len() as u64 {
            return false;
        }
        // Both fit in the slice, hence in usize.
        let (name_end, next) = (name_end as usize, next as usize);
        if kind == wanted && &notes[12..name_end] == XEN_NOTE_OWNER && matches!(desc_size, 4 | 8) {
            return true;
        }
        notes = &notes[next..];
    }
    false
}

fn padded(size: u64) -> u64 {
    size.div_ceil(4) * 4
}

/// Whether `seek` can reach the offset (it takes an `i64`); a larger one is a broken file.
fn seekable(offset: u64) -> bool {
    i64::try_from(offset).is_ok()
}

/// Reads until `buf` is full or the file ends; returns how much was read.
fn read_full(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(word)
}

#[cfg(test)]
#[path = "pvh_tests.rs"]
pub(crate) mod tests;
