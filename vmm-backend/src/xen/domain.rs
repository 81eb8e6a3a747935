//! A [`VmSpec`] as an xl domain: its name, the kernel xl loads, and the configuration.

use std::path::{Path, PathBuf};

use crate::{
    xen::{
        config::XenConfig,
        disks::GuestDisks,
        domain_config::{DomainConfig, VifSpec},
        kernel_params::guest_cmdline,
    },
    VmError, VmSpec,
};

/// The domain name of a VM id.
pub fn domain_name(id: &str) -> String {
    format!("lightpod-{id}")
}

/// The domain configuration of a spec whose block devices `disks` has prepared.
///
/// # Errors
///
/// A block device cannot be prepared (no name left, no loop device).
pub fn domain_config(
    config: &XenConfig,
    spec: &VmSpec,
    disks: &GuestDisks,
) -> Result<DomainConfig, VmError> {
    let disks = spec
        .block_devices
        .iter()
        .map(|block| disks.prepare(block).map(|disk| disk.spec))
        .collect::<Result<_, _>>()?;
    Ok(DomainConfig {
        name: domain_name(&spec.id),
        guest_type: config.guest_type,
        kernel: boot_kernel(&spec.kernel),
        ramdisk: spec.initrd.clone(),
        cmdline: guest_cmdline(&spec.kernel_params),
        memory_mib: spec.memory_mib,
        vcpus: spec.vcpus,
        tsc_mode: config.tsc_mode,
        disks,
        vifs: spec
            .net_devices
            .iter()
            .map(|net| VifSpec {
                mac: net.mac.clone(),
                mtu: net.mtu,
                vifname: net.tap_name.clone(),
                bridge: config.bridge.clone(),
            })
            .collect(),
    })
}

/// The kernel file xl loads: the uncompressed ELF `vmlinux` that lightpod's kernel build
/// installs beside `vmlinuz`, when there is one. libxc would otherwise decompress the
/// bzImage in dom0 on every create (about 0.3 s of the 1 s `xl create` takes in an emulated
/// dom0); both are the same build, installed together by build-kernel.sh.
pub fn boot_kernel(kernel: &Path) -> PathBuf {
    crate::guest::pvh::elf_beside(kernel).unwrap_or_else(|| kernel.to_path_buf())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_elf_kernel_beside_a_bzimage_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let bzimage = dir.path().join("vmlinuz");
        std::fs::write(&bzimage, "bz").unwrap();
        assert_eq!(boot_kernel(&bzimage), bzimage, "no vmlinux: the bzImage");
        std::fs::write(dir.path().join("vmlinux"), "elf").unwrap();
        assert_eq!(boot_kernel(&bzimage), dir.path().join("vmlinux"));
        let distro = dir.path().join("vmlinuz-6.1.0-57-cloud-amd64");
        assert_eq!(boot_kernel(&distro), distro, "only lightpod's own pair");
    }
}
