//! Which kernel and agent a guest boots, resolved from the `[guest]` configuration, and the
//! initramfs built (or found in the cache) from them.

use std::path::{Path, PathBuf};

use lightpod_vmm::guest::{
    find_host_kernel, kernel_release, GuestImage, GuestImageError, GuestImageSource,
};

use crate::{config::GuestConfig, error::SandboxError};

/// lightpod's own kernel (everything built in, no modules), as `deploy/install.sh` installs it.
pub const LIGHTPOD_KERNEL: &str = "/var/lib/lightpod/kernel/vmlinuz";

/// Where the installer puts the static agent.
pub const INSTALLED_AGENT: &str = "/usr/local/lib/lightpod/lightpod-agent";

/// The kernel a guest boots and the modules directory that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelChoice {
    /// Kernel image.
    pub kernel: PathBuf,
    /// `/lib/modules/<release>` when the kernel loads modules; `None` for a self-contained one.
    pub modules_dir: Option<PathBuf>,
    /// Why this kernel (for `lightpod doctor` and logs).
    pub reason: String,
}

/// Picks the guest kernel: the configured one, else lightpod's own, else the host's newest.
///
/// # Errors
///
/// A configured kernel is unreadable, or no kernel is found.
pub fn choose_kernel(guest: &GuestConfig) -> Result<KernelChoice, GuestImageError> {
    if let Some(kernel) = &guest.kernel {
        std::fs::metadata(kernel).map_err(|source| GuestImageError::MissingInput {
            what: "kernel",
            path: kernel.clone(),
            source,
        })?;
        // A distribution kernel keeps its drivers in modules; a kernel with everything built
        // in has no modules directory (or one the image does not need).
        let modules_dir = kernel_release(kernel)
            .ok()
            .map(|release| Path::new("/lib/modules").join(release))
            .filter(|dir| dir.join("modules.dep").exists());
        return Ok(KernelChoice {
            kernel: kernel.clone(),
            modules_dir,
            reason: "guest.kernel in the configuration".into(),
        });
    }
    let own = Path::new(LIGHTPOD_KERNEL);
    if own.exists() {
        return Ok(KernelChoice {
            kernel: own.to_path_buf(),
            modules_dir: None,
            reason: "lightpod's own kernel".into(),
        });
    }
    let host = find_host_kernel()?;
    Ok(KernelChoice {
        kernel: host.kernel,
        modules_dir: Some(host.modules_dir),
        reason: format!("newest host kernel ({LIGHTPOD_KERNEL} is not installed)"),
    })
}

/// Finds the agent binary: the configured one, else beside the running binary, else the
/// installed one.
///
/// # Errors
///
/// None of them exists.
pub fn choose_agent(guest: &GuestConfig) -> Result<PathBuf, GuestImageError> {
    let candidates: Vec<PathBuf> = match &guest.agent {
        Some(agent) => vec![agent.clone()],
        None => std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("lightpod-agent")))
            .into_iter()
            .chain(std::iter::once(PathBuf::from(INSTALLED_AGENT)))
            .collect(),
    };
    let mut dynamic = None;
    for candidate in &candidates {
        if candidate.is_file() {
            if is_dynamically_linked(candidate) {
                dynamic.get_or_insert(candidate.clone());
                continue;
            }
            return Ok(candidate.clone());
        }
    }
    if let Some(path) = dynamic {
        return Err(GuestImageError::MissingInput {
            what: "agent",
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "is dynamically linked and cannot run as the guest's init; build it with \
                 RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release -p \
                 lightpod-agent --target x86_64-unknown-linux-gnu",
            ),
        });
    }
    let path = candidates
        .last()
        .cloned()
        .unwrap_or_else(|| PathBuf::from(INSTALLED_AGENT));
    Err(GuestImageError::MissingInput {
        what: "agent",
        path,
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found; `deploy/install.sh` builds and installs it",
        ),
    })
}

/// Resolves the kernel and agent and builds the initramfs, or takes it from the cache.
///
/// # Errors
///
/// An input is missing, or the cache cannot be written.
pub async fn resolve(guest: &GuestConfig) -> Result<GuestImage, SandboxError> {
    let kernel = choose_kernel(guest)?;
    let source = GuestImageSource {
        kernel: kernel.kernel,
        modules_dir: kernel.modules_dir,
        agent: choose_agent(guest)?,
        cache_dir: guest.image_cache.clone(),
    };
    let image = tokio::task::spawn_blocking(move || GuestImage::build_or_reuse(&source))
        .await
        .map_err(|e| SandboxError::Io {
            context: "build the guest image".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    if image.built {
        tracing::info!(digest = %image.digest, initrd = %image.initrd.display(), "guest image built");
    }
    Ok(image)
}

/// Whether an ELF executable asks for a program interpreter (`PT_INTERP`), i.e. needs a
/// dynamic loader and shared libraries that the guest's initramfs does not have.
fn is_dynamically_linked(path: &Path) -> bool {
    std::fs::read(path)
        .map(|bytes| elf_has_interpreter(&bytes))
        .unwrap_or(false)
}

fn elf_has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    };
    // 64-bit little-endian ELF only: the agent is built for x86_64.
    if elf.get(0..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    (0..usize::from(phnum))
        .filter_map(|i| u32_at(phoff as usize + i * usize::from(phentsize)))
        .any(|p_type| p_type == PT_INTERP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_dynamic_from_static_executables() {
        // /bin/sh on any Debian host is dynamically linked; busybox-static is not.
        assert!(
            is_dynamically_linked(Path::new("/bin/sh")),
            "/bin/sh should need ld.so"
        );
        let busybox = Path::new("/bin/busybox");
        if busybox.exists() {
            assert!(
                !is_dynamically_linked(busybox),
                "busybox-static has no interpreter"
            );
        }
        assert!(!elf_has_interpreter(b"not an elf"));
    }

    #[test]
    fn a_configured_kernel_that_does_not_exist_is_named() {
        let guest = GuestConfig {
            kernel: Some("/nonexistent/vmlinuz".into()),
            ..Default::default()
        };
        let err = choose_kernel(&guest).expect_err("missing kernel");
        assert!(err.to_string().contains("/nonexistent/vmlinuz"), "{err}");
    }
}
