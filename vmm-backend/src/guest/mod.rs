//! Guest image assembly: the kernel a guest boots and the initramfs that holds the agent.
//!
//! The initramfs is built on the host from what is installed (the agent binary, the kernel's
//! modules), never downloaded, and cached under a directory named by the content hash of
//! its inputs, so a second build with the same inputs reuses the first.

use std::path::PathBuf;

/// Where the pieces of a guest image come from.
#[derive(Debug, Clone)]
pub struct GuestImageSource {
    /// Guest kernel image.
    pub kernel: PathBuf,
    /// `/lib/modules/<release>` of that kernel; `None` when the kernel needs no modules.
    pub modules_dir: Option<PathBuf>,
    /// Static `lightpod-agent` binary.
    pub agent: PathBuf,
    /// Cache directory; one sub-directory per content hash.
    pub cache_dir: PathBuf,
}

/// A guest image ready to boot.
#[derive(Debug, Clone)]
pub struct GuestImage {
    /// Guest kernel image.
    pub kernel: PathBuf,
    /// Initramfs holding the agent as `/init` and the modules it loads.
    pub initrd: PathBuf,
    /// Release of the kernel (`uname -r` in the guest).
    pub kernel_release: String,
    /// Content hash that names the cache entry.
    pub digest: String,
    /// Whether this call built the image (false: taken from the cache).
    pub built: bool,
}

/// Why a guest image could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum GuestImageError {
    /// An input file is missing or unreadable.
    #[error("guest {what} {path} is not readable")]
    MissingInput {
        /// "kernel", "agent", "modules directory".
        what: &'static str,
        /// The path that was tried.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// Writing the image into the cache failed.
    #[error("write guest image into {path}")]
    WriteCache {
        /// Cache path being written.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}
