//! A writer of `newc` cpio archives, the format the Linux kernel unpacks as an initramfs
//! (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Archives are reproducible: every entry has mtime 0, uid/gid 0, and inode numbers in
//! order of writing. Parent directories are added automatically before their first child.

use std::{collections::HashSet, io::Write};

/// `S_IFDIR`, `S_IFREG`, `S_IFLNK`, `S_IFCHR` from `<sys/stat.h>`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// Writes a cpio archive entry by entry.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    offset: u64,
    dirs: HashSet<String>,
}

/// One header's fields (the ones that vary between our entries).
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    /// A writer onto `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            offset: 0,
            dirs: HashSet::new(),
        }
    }

    /// Adds a directory (and its parents).
    ///
    /// # Errors
    ///
    /// Fails when the output cannot be written.
    pub fn dir(&mut self, path: &str, perm: u32) -> std::io::Result<()> {
        let name = normalize(path);
        if name.is_empty() || self.dirs.contains(&name) {
            return Ok(());
        }
        self.parents(&name)?;
        self.dirs.insert(name.clone());
        self.entry(
            Header {
                name: &name,
                mode: S_IFDIR | perm,
                nlink: 2,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )
    }

    /// Adds a regular file with `data` (and its parent directories, mode 0755).
    ///
    /// # Errors
    ///
    /// Fails when the output cannot be written or the file exceeds 4 GiB.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> std::io::Result<()> {
        let name = normalize(path);
        self.parents(&name)?;
        let size = u32::try_from(data.len())
            .map_err(|_| std::io::Error::other(format!("{name} is larger than 4 GiB")))?;
        self.entry(
            Header {
                name: &name,
                mode: S_IFREG | perm,
                nlink: 1,
                size,
                rdev: (0, 0),
            },
            data,
        )
    }

    /// Adds a symbolic link.
    ///
    /// # Errors
    ///
    /// Fails when the output cannot be written.
    pub fn symlink(&mut self, path: &str, target: &str) -> std::io::Result<()> {
        let name = normalize(path);
        self.parents(&name)?;
        let size = u32::try_from(target.len()).map_err(std::io::Error::other)?;
        let header = Header {
            name: &name,
            mode: S_IFLNK | 0o777,
            nlink: 1,
            size,
            rdev: (0, 0),
        };
        self.entry(header, target.as_bytes())
    }

    /// Adds a character device node.
    ///
    /// # Errors
    ///
    /// Fails when the output cannot be written.
    pub fn char_device(
        &mut self,
        path: &str,
        perm: u32,
        major: u32,
        minor: u32,
    ) -> std::io::Result<()> {
        let name = normalize(path);
        self.parents(&name)?;
        let header = Header {
            name: &name,
            mode: S_IFCHR | perm,
            nlink: 1,
            size: 0,
            rdev: (major, minor),
        };
        self.entry(header, &[])
    }

    /// Writes the trailer and returns the output.
    ///
    /// # Errors
    ///
    /// Fails when the output cannot be written.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.next_ino = 0;
        self.entry(
            Header {
                name: TRAILER,
                mode: 0,
                nlink: 1,
                size: 0,
                rdev: (0, 0),
            },
            &[],
        )?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn parents(&mut self, name: &str) -> std::io::Result<()> {
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent, 0o755)?;
        }
        Ok(())
    }

    fn entry(&mut self, header: Header<'_>, data: &[u8]) -> std::io::Result<()> {
        let ino = self.next_ino;
        self.next_ino += 1;
        let namesize = header.name.len() + 1;
        let fields = [
            ino,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            header.size,
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            u32::try_from(namesize).map_err(std::io::Error::other)?,
            0, // check
        ];
        let mut head = Vec::with_capacity(110 + namesize + 3);
        head.extend_from_slice(MAGIC);
        for field in fields {
            head.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        head.extend_from_slice(header.name.as_bytes());
        head.push(0);
        self.write_padded(&head)?;
        self.write_padded(data)
    }

    /// Writes `bytes` and pads the archive to a multiple of 4 bytes.
    fn write_padded(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.offset += bytes.len() as u64;
        let pad = (4 - (self.offset % 4) as usize) % 4;
        self.out.write_all(&[0u8; 3][..pad])?;
        self.offset += pad as u64;
        Ok(())
    }
}

/// An archive path: relative, no leading `/` or `./`, no trailing `/`.
fn normalize(path: &str) -> String {
    path.trim_start_matches("./").trim_matches('/').to_string()
}

#[cfg(test)]
#[path = "cpio_tests.rs"]
mod tests;
