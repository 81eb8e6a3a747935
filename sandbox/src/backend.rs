//! The hypervisor backend the configuration selects.

use lightpod_vmm::{qemu::QemuHypervisor, xen::XenHypervisor, BackendKind, Hypervisor};

use crate::{config::Config, error::SandboxError};

/// Creates the backend named by `runtime.backend`.
///
/// # Errors
///
/// The backend's tools are missing, or the backend is not available on this host.
pub fn hypervisor(config: &Config) -> Result<Box<dyn Hypervisor>, SandboxError> {
    match config.runtime.backend {
        BackendKind::Qemu => Ok(Box::new(QemuHypervisor::new(config.qemu.clone())?)),
        BackendKind::Xen => Ok(Box::new(XenHypervisor::new(config.xen.clone())?)),
    }
}
