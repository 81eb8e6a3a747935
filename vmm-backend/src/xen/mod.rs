//! The Xen backend: guests as Xen PV (or PVH) domains, built by the `xl` toolstack from the
//! host's dom0.
//!
//! What differs from QEMU, and why:
//!
//! - **Process.** There is no VMM process per guest; `xl create -F` stays in the foreground
//!   and watches its domain, so each guest still has a host process that lives exactly as
//!   long as it does (its pid is the task pid) and says in its log how the guest ended.
//! - **Agent channel.** The domain's PV console, reached through xenconsoled's pty, carries
//!   the boot log and then, once the agent took the console over, the ttrpc stream (see
//!   [`console`]). It needs no device model in dom0.
//! - **Root filesystems.** Xen has no virtio-fs; [`Hypervisor::shares_directories`] is false,
//!   and containers' root filesystems arrive as disk images hot-plugged with
//!   `xl block-attach` ([`Vm::attach_block`]), served by blkback in dom0.
//! - **Networking.** A [`crate::NetDevice`] becomes a vif whose dom0 end netback creates
//!   under the device's `tap_name`, joined to `[xen] bridge` by Xen's `vif-bridge` script.
//!
//! Files by concern: [`config`] (the TOML section), [`domain_config`] (the xl configuration),
//! `kernel_params`, `validate`, [`xl`] (running xl, `xl info`), [`xenstore`] (a minimal
//! client), [`console`] (the channel), `disks` and [`loop_device`] (guest disks), `domain`
//! (a spec as a domain), `state` (its files), `create`, [`exit`], `vm`, [`cleanup`] (after a
//! crashed owner) and [`host`] (for `lightpod doctor`).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lightpod_vmm::{
//!     xen::{XenConfig, XenHypervisor},
//!     BlockDevice, Hypervisor, VmSpec,
//! };
//!
//! # async fn boot() -> Result<(), lightpod_vmm::VmError> {
//! let hypervisor = XenHypervisor::new(XenConfig::default())?;
//! let vm = hypervisor
//!     .create(VmSpec {
//!         id: "pod-1".into(),
//!         state_dir: "/run/lightpod/sandboxes/pod-1/vm".into(),
//!         vcpus: 1,
//!         memory_mib: 256,
//!         kernel: "/var/lib/lightpod/kernel/vmlinuz".into(),
//!         initrd: "/var/lib/lightpod/guest/<digest>/initrd.img".into(),
//!         kernel_params: Vec::new(),
//!         shared_dirs: Vec::new(),
//!         net_devices: Vec::new(),
//!         block_devices: Vec::new(),
//!         boot_timeout: Duration::from_secs(60),
//!     })
//!     .await?;
//! let _agent = vm.connect_agent().await?; // waits for the agent to take the console over
//! let disk = BlockDevice { path: "/run/lightpod/sandboxes/pod-1/blocks/c1.img".into(), readonly: false };
//! let _device = vm.attach_block(disk).await?; // "/dev/xvdb" in the guest
//! vm.stop(Duration::from_secs(5)).await?;
//! # Ok(())
//! # }
//! ```

pub mod cleanup;
pub mod config;
pub mod console;
mod create;
mod disks;
mod domain;
pub mod domain_config;
pub mod exit;
pub mod host;
mod kernel_params;
pub mod loop_device;
mod state;
mod validate;
mod vm;
pub mod xenstore;
pub mod xl;

use std::time::Duration;

use async_trait::async_trait;

use self::xl::Xl;
pub use self::{
    cleanup::{destroy_leftover_domain, XenCleanupError},
    config::{TscMode, XenConfig, XenGuestType},
    domain::domain_name,
    host::{probe_host, XenHostReport},
    kernel_params::{guest_cmdline, GUEST_CONSOLE},
    vm::XenVm,
};
use crate::{BackendKind, Hypervisor, Vm, VmError, VmSpec};

/// The Xen hypervisor backend.
#[derive(Debug)]
pub struct XenHypervisor {
    config: XenConfig,
    xl: Xl,
}

impl XenHypervisor {
    /// Finds `xl` and checks that this host is a Xen dom0 with xenstored running. Creating
    /// guests also needs xenconsoled ([`probe_host`] checks everything).
    ///
    /// # Errors
    ///
    /// [`VmError::VmmMissing`] without `xl`; [`VmError::BackendUnavailable`] when xenstored's
    /// socket is missing.
    pub fn new(config: XenConfig) -> Result<Self, VmError> {
        let Some(binary) = config.find_xl() else {
            let binary = config
                .xl
                .as_ref()
                .map_or_else(|| "xl".to_string(), |p| p.display().to_string());
            return Err(VmError::VmmMissing {
                binary,
                hint: "apt-get install xen-system-amd64 and boot the host into Xen (xl comes \
                       with xen-utils)"
                    .into(),
            });
        };
        if !config.xenstore_socket.exists() {
            return Err(VmError::BackendUnavailable {
                backend: BackendKind::Xen,
                reason: format!(
                    "xenstored's socket {} is missing: this host must be the dom0 of a running \
                     Xen with xenstored and xenconsoled started (xen-utils' init scripts)",
                    config.xenstore_socket.display()
                ),
            });
        }
        let xl = Xl::new(binary, Duration::from_secs(config.xl_timeout_secs));
        if config.find_block_script().is_none() {
            tracing::warn!(backend = "xen", script = %config.block_script.display(),
                "lightpod's block hotplug script is not installed; disks go through Xen's \
                 `block` script, which takes seconds each (deploy/install.sh installs it)");
        }
        tracing::debug!(backend = "xen", xl = %xl.binary().display(), "xen backend ready");
        Ok(XenHypervisor { config, xl })
    }

    /// The configuration this backend runs with.
    pub fn config(&self) -> &XenConfig {
        &self.config
    }
}

#[async_trait]
impl Hypervisor for XenHypervisor {
    fn kind(&self) -> BackendKind {
        BackendKind::Xen
    }

    async fn create(&self, spec: VmSpec) -> Result<Box<dyn Vm>, VmError> {
        let vm = create::create(&self.xl, &self.config, spec).await?;
        Ok(Box::new(vm))
    }

    fn shares_directories(&self) -> bool {
        false
    }
}

/// An error with its sources, for one-line details.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
