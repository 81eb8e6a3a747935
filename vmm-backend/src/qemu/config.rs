//! Configuration of the QEMU backend, as it appears in `/etc/lightpod/config.toml`.

use std::path::PathBuf;

use serde::Deserialize;

/// The QEMU machine type a guest runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MachineType {
    /// `-M microvm`: no PCI, no firmware, virtio-mmio devices found through ACPI. Fastest boot.
    #[default]
    Microvm,
    /// `-M q35`: a PC with PCIe; virtio-pci devices.
    Q35,
}

impl MachineType {
    /// QEMU's name of the machine.
    pub fn qemu_name(self) -> &'static str {
        match self {
            MachineType::Microvm => "microvm",
            MachineType::Q35 => "q35",
        }
    }
}

/// Which accelerator the operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceleratorChoice {
    /// KVM when it really runs guests on this host, TCG otherwise.
    #[default]
    Auto,
    /// Always KVM; creating a VM fails where KVM cannot serve.
    Kvm,
    /// Always TCG (software emulation).
    Tcg,
}

/// Settings of the QEMU backend. Every field has a default that works on a Debian host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QemuConfig {
    /// The `qemu-system-x86_64` binary.
    pub binary: PathBuf,
    /// Machine type.
    pub machine: MachineType,
    /// Accelerator choice.
    pub accelerator: AcceleratorChoice,
    /// The `virtiofsd` binary (the Rust implementation, 1.x).
    pub virtiofsd: PathBuf,
    /// Directory where the verdict of the KVM boot probe is cached for the current host boot.
    pub probe_cache_dir: PathBuf,
    /// How long the KVM boot probe may take before KVM is judged unusable, in seconds.
    pub probe_timeout_secs: u64,
    /// Size of TCG's translation cache per guest, in MiB (TCG only). QEMU touches only what
    /// it fills: a pod's guest fills about 27 MiB more than a 16 MiB cache holds, and with
    /// that cap QEMU translates the same code again and again (about 250 ms more per
    /// container start, and CPU while pods run). 64 holds a pod's working set.
    pub tcg_tb_size_mib: u32,
    /// Give guests a virtio balloon with free page reporting, so that memory a guest frees
    /// goes back to the host (needs `CONFIG_VIRTIO_BALLOON` in the guest kernel; lightpod's
    /// kernel has it).
    pub free_page_reporting: bool,
    /// Boot the ELF `vmlinux` that lightpod's kernel build installs beside `vmlinuz` through
    /// its PVH entry point instead of the bzImage: no decompression, no real-mode set-up
    /// (about 85 ms less per boot under TCG). Kernels without a `vmlinux` carrying the PVH
    /// note beside them boot as given either way.
    pub pvh_boot: bool,
}

impl Default for QemuConfig {
    fn default() -> Self {
        QemuConfig {
            binary: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            machine: MachineType::default(),
            accelerator: AcceleratorChoice::default(),
            virtiofsd: PathBuf::from("/usr/local/lib/lightpod/virtiofsd"),
            probe_cache_dir: PathBuf::from("/run/lightpod"),
            probe_timeout_secs: 20,
            tcg_tb_size_mib: 64,
            free_page_reporting: true,
            pvh_boot: true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Outer {
        qemu: QemuConfig,
    }

    #[test]
    fn partial_toml_keeps_defaults() {
        let parsed: Outer = serde_json::from_str(
            r#"{"qemu": {"machine": "q35", "accelerator": "tcg", "virtiofsd": "/x/virtiofsd"}}"#,
        )
        .unwrap();
        assert_eq!(parsed.qemu.machine, MachineType::Q35);
        assert_eq!(parsed.qemu.accelerator, AcceleratorChoice::Tcg);
        assert_eq!(parsed.qemu.virtiofsd, PathBuf::from("/x/virtiofsd"));
        assert_eq!(parsed.qemu.binary, QemuConfig::default().binary);
    }

    #[test]
    fn unknown_key_is_rejected() {
        let parsed = serde_json::from_str::<Outer>(r#"{"qemu": {"machin": "q35"}}"#);
        assert!(
            parsed.is_err(),
            "a misspelt key must not be ignored silently"
        );
    }
}
