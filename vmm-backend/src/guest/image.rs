//! Building the initramfs and caching it by content hash.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
};

use sha2::{Digest, Sha256};

use crate::guest::{
    cpio::CpioWriter, kernel, modules::ModuleIndex, GuestImage, GuestImageError, GuestImageSource,
    ResolvedModule, GUEST_MODULES,
};

/// Version of the image layout; part of the content hash, so a change of layout rebuilds.
pub const BUILDER_VERSION: &str = "lightpod-initramfs-1";

/// Empty directories the agent mounts filesystems on.
const MOUNT_POINTS: &[&str] = &["dev", "proc", "sys", "run", "tmp", "etc/lightpod"];

/// A file added to an initramfs besides `/init` and the modules (tests, debugging tools).
#[derive(Debug, Clone)]
pub struct ExtraFile {
    /// Path inside the guest.
    pub path: String,
    /// Permission bits.
    pub mode: u32,
    /// Contents.
    pub data: Vec<u8>,
}

impl GuestImage {
    /// Returns the cached image for `source`, building it first when the cache has none.
    ///
    /// # Errors
    ///
    /// Fails when an input is missing, a module cannot be found or decompressed, or the cache
    /// cannot be written.
    pub fn build_or_reuse(source: &GuestImageSource) -> Result<GuestImage, GuestImageError> {
        let release = kernel::kernel_release(&source.kernel)?;
        let agent = std::fs::read(&source.agent).map_err(|e| GuestImageError::MissingInput {
            what: "agent",
            path: source.agent.clone(),
            source: e,
        })?;
        let modules = match &source.modules_dir {
            Some(dir) => ModuleIndex::load(dir)?.resolve(GUEST_MODULES)?,
            None => Vec::new(),
        };
        let module_bytes = modules
            .iter()
            .map(ResolvedModule::read)
            .collect::<Result<Vec<_>, _>>()?;

        let mut hash = Sha256::new();
        for part in [BUILDER_VERSION.as_bytes(), release.as_bytes(), &agent] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part);
        }
        for (module, bytes) in modules.iter().zip(&module_bytes) {
            hash.update(module.guest_rel_path.as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        }
        let digest: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();

        let initrd = source.cache_dir.join(&digest).join("initrd.img");
        let image = |built| GuestImage {
            kernel: source.kernel.clone(),
            initrd: initrd.clone(),
            kernel_release: release.clone(),
            digest: digest.clone(),
            built,
        };
        if initrd.is_file() {
            tracing::debug!(digest = %digest, "guest image taken from the cache");
            return Ok(image(false));
        }
        let contents: Vec<(&ResolvedModule, &[u8])> = modules
            .iter()
            .zip(module_bytes.iter().map(Vec::as_slice))
            .collect();
        write_with_modules(&initrd, &agent, &release, &contents, &[])?;
        tracing::info!(digest = %digest, release = %release, modules = modules.len(), "guest image built");
        Ok(image(true))
    }
}

/// Writes an initramfs with `init` as `/init`, `modules` (read and decompressed here) listed in
/// `/etc/lightpod/modules.load`, and `extra` files, atomically to `path`.
///
/// # Errors
///
/// Fails when a module cannot be read or `path` cannot be written.
pub fn write_initramfs(
    path: &Path,
    init: &[u8],
    release: &str,
    modules: &[ResolvedModule],
    extra: &[ExtraFile],
) -> Result<(), GuestImageError> {
    let bytes = modules
        .iter()
        .map(ResolvedModule::read)
        .collect::<Result<Vec<_>, _>>()?;
    let contents: Vec<(&ResolvedModule, &[u8])> = modules
        .iter()
        .zip(bytes.iter().map(Vec::as_slice))
        .collect();
    write_with_modules(path, init, release, &contents, extra)
}

fn write_with_modules(
    path: &Path,
    init: &[u8],
    release: &str,
    modules: &[(&ResolvedModule, &[u8])],
    extra: &[ExtraFile],
) -> Result<(), GuestImageError> {
    let write_error = |source| GuestImageError::WriteCache {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(write_error)?;
    let tmp = temp_path(path);
    let result = write_archive(&tmp, init, release, modules, extra)
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(write_error(e));
    }
    Ok(())
}

fn write_archive(
    tmp: &Path,
    init: &[u8],
    release: &str,
    modules: &[(&ResolvedModule, &[u8])],
    extra: &[ExtraFile],
) -> std::io::Result<()> {
    let file = std::fs::File::create(tmp)?;
    let mut cpio = CpioWriter::new(std::io::BufWriter::new(file));
    for dir in MOUNT_POINTS {
        cpio.dir(dir, 0o755)?;
    }
    cpio.char_device("dev/console", 0o600, 5, 1)?;
    cpio.file("init", 0o755, init)?;
    let mut load = String::new();
    for (module, bytes) in modules {
        let guest_path = format!("/lib/modules/{release}/{}", module.guest_rel_path);
        cpio.file(&guest_path, 0o644, bytes)?;
        load.push_str(&guest_path);
        load.push('\n');
    }
    cpio.file("etc/lightpod/modules.load", 0o644, load.as_bytes())?;
    for file in extra {
        cpio.file(&file.path, file.mode, &file.data)?;
    }
    let mut out = cpio.finish()?;
    out.flush()?;
    out.get_ref().sync_all()
}

/// A temporary name next to `path`, unique within this host.
fn temp_path(path: &Path) -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
