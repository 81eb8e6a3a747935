//! Guest image assembly: the kernel a guest boots and the initramfs that holds the agent.
//!
//! The initramfs is built on the host from what is installed (the agent binary, the kernel's
//! modules), never downloaded, and cached under a directory named by the content hash of
//! its inputs, so a second build with the same inputs reuses the first.
//!
//! The initramfs (ARCHITECTURE.md, "The guest boot contract") holds `/init` (the agent), the
//! modules of [`modules::GUEST_MODULES`] with their dependencies under
//! `/lib/modules/<release>/`, `/etc/lightpod/modules.load` listing them in load order, the
//! empty mount points the agent mounts on, and `/dev/console`, which the kernel opens for
//! init's stdio before any devtmpfs exists.

pub mod cpio;
mod image;
pub mod kernel;
pub mod modules;
pub mod pvh;

use std::path::PathBuf;

pub use self::{
    image::{write_initramfs, ExtraFile, BUILDER_VERSION},
    kernel::{find_host_kernel, kernel_release, HostKernel},
    modules::{ModuleIndex, ResolvedModule, GUEST_MODULES},
};

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
    /// The kernel's release could not be found in its image or file name.
    #[error("cannot tell the release of kernel {path}")]
    KernelRelease {
        /// The kernel image.
        path: PathBuf,
    },
    /// No kernel with modules was found.
    #[error("no vmlinuz-* in {boot} has a modules directory")]
    NoKernel {
        /// The directory searched.
        boot: PathBuf,
    },
    /// A module the guest needs is neither built in nor in `modules.dep`.
    #[error("kernel module {name} is neither built in nor listed in {modules_dir}/modules.dep")]
    ModuleNotFound {
        /// The module.
        name: String,
        /// The modules directory searched.
        modules_dir: PathBuf,
    },
    /// A compressed module could not be decompressed.
    #[error("decompress {path} with {tool}")]
    Decompress {
        /// The module file.
        path: PathBuf,
        /// The tool used (`xz`, `zstd`, `gzip`).
        tool: &'static str,
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
