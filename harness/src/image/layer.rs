//! Deterministic, uncompressed OCI layer tarballs.
//!
//! Entries are sorted by path and carry uid/gid 0 and a fixed modification time, so the same
//! input always gives the same bytes and therefore the same digest.

use std::{
    fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};
use tar::{EntryType, Header};

use super::ImageError;

/// A layer tarball in memory and its digest (`sha256:<hex>`), which is also its diff id since
/// the layer is not compressed.
pub struct Layer {
    /// The tar archive.
    pub bytes: Vec<u8>,
    /// `sha256:<hex>` of `bytes`.
    pub digest: String,
}

/// Marker files of the rootfs cache that do not belong in an image.
const SKIPPED: &[&str] = &[".complete"];

/// A layer holding the tree under `root` (directories, regular files and symlinks).
pub fn from_dir(root: &Path) -> Result<Layer, ImageError> {
    let mut paths = Vec::new();
    collect(root, Path::new(""), &mut paths)?;
    paths.sort();

    let mut builder = tar::Builder::new(Vec::new());
    for rel in &paths {
        let full = root.join(rel);
        let read_error = |source| ImageError::ReadTree {
            path: full.clone(),
            source,
        };
        let meta = fs::symlink_metadata(&full).map_err(read_error)?;
        let mode = meta.permissions().mode() & 0o7777;
        let kind = meta.file_type();
        if kind.is_dir() {
            let mut header = header(EntryType::Directory, mode, 0);
            builder
                .append_data(&mut header, dir_name(rel), std::io::empty())
                .map_err(ImageError::AssembleTar)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&full).map_err(read_error)?;
            let mut header = header(EntryType::Symlink, 0o777, 0);
            builder
                .append_link(&mut header, rel, &target)
                .map_err(ImageError::AssembleTar)?;
        } else if kind.is_file() {
            let data = fs::read(&full).map_err(read_error)?;
            let mut header = header(EntryType::Regular, mode, data.len() as u64);
            builder
                .append_data(&mut header, rel, data.as_slice())
                .map_err(ImageError::AssembleTar)?;
        }
    }
    finish(builder)
}

/// A layer holding `files` (path, content, mode) and the directories leading to them.
pub fn from_files(files: &[(&str, &[u8], u32)]) -> Result<Layer, ImageError> {
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .flat_map(|(path, _, _)| Path::new(path).ancestors().skip(1).map(Path::to_path_buf))
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    dirs.sort();
    dirs.dedup();

    let mut builder = tar::Builder::new(Vec::new());
    for dir in &dirs {
        let mut header = header(EntryType::Directory, 0o755, 0);
        builder
            .append_data(&mut header, dir_name(dir), std::io::empty())
            .map_err(ImageError::AssembleTar)?;
    }
    let mut sorted = files.to_vec();
    sorted.sort_by_key(|(path, _, _)| *path);
    for (path, data, mode) in sorted {
        let mut header = header(EntryType::Regular, mode, data.len() as u64);
        builder
            .append_data(&mut header, path, data)
            .map_err(ImageError::AssembleTar)?;
    }
    finish(builder)
}

fn collect(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImageError> {
    let dir = root.join(rel);
    let read_error = |source| ImageError::ReadTree {
        path: dir.clone(),
        source,
    };
    for entry in fs::read_dir(&dir).map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let child = rel.join(entry.file_name());
        if rel.as_os_str().is_empty() && SKIPPED.iter().any(|s| entry.file_name() == *s) {
            continue;
        }
        out.push(child.clone());
        if entry.file_type().map_err(read_error)?.is_dir() {
            collect(root, &child, out)?;
        }
    }
    Ok(())
}

/// Directory entries end in `/`, as image tools write them.
fn dir_name(rel: &Path) -> String {
    format!("{}/", rel.display())
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn finish(builder: tar::Builder<Vec<u8>>) -> Result<Layer, ImageError> {
    let bytes = builder.into_inner().map_err(ImageError::AssembleTar)?;
    let digest = sha256_digest(&bytes);
    Ok(Layer { bytes, digest })
}

/// `sha256:<hex>` of `bytes`, the digest form OCI descriptors use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn same_files_give_the_same_digest_and_parents_come_first() {
        let files: &[(&str, &[u8], u32)] = &[("b/c/two", b"2", 0o600), ("a/one", b"1", 0o644)];
        let first = from_files(files).unwrap();
        let second = from_files(files).unwrap();
        assert_eq!(first.digest, second.digest, "digest must be deterministic");

        let mut archive = tar::Archive::new(first.bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a/", "b/", "b/c/", "a/one", "b/c/two"]);
    }

    #[test]
    fn a_directory_tree_keeps_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        fs::write(dir.path().join("bin/tool"), b"x").unwrap();
        fs::set_permissions(
            dir.path().join("bin/tool"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/bin/tool", dir.path().join("bin/alias")).unwrap();
        fs::write(dir.path().join(".complete"), b"").unwrap();

        let layer = from_dir(dir.path()).unwrap();
        let mut archive = tar::Archive::new(layer.bytes.as_slice());
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            let link = entry.link_name().unwrap().map(|l| l.display().to_string());
            seen.push((
                entry.path().unwrap().display().to_string(),
                header.mode().unwrap(),
                link,
            ));
        }
        assert_eq!(
            seen,
            [
                ("bin/".to_string(), 0o755, None),
                (
                    "bin/alias".to_string(),
                    0o777,
                    Some("/bin/tool".to_string())
                ),
                ("bin/tool".to_string(), 0o755, None),
            ],
            "the marker file is left out"
        );
        assert_eq!(layer.digest, sha256_digest(&layer.bytes));
    }
}
