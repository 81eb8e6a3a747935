//! The QEMU backend: Debian's `qemu-system-x86_64` with `-M microvm` or `q35`, controlled
//! over QMP, guest RAM in a shared memfd so virtiofsd can serve shared directories.
//!
//! Files by concern: [`config`] (the TOML section), [`cmdline`] (one struct per option
//! group), `kernel_params` (the guest command line), `validate` (spec checks), [`accel`] and
//! [`probe_cache`] (KVM or TCG), [`tsc`], [`qmp`], [`process`] (spawn and exit),
//! [`virtiofsd`], `create` (boot and unwind), `vm` (the running guest) and [`cleanup`] (after
//! a crashed owner).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use lightpod_vmm::{
//!     qemu::{QemuConfig, QemuHypervisor},
//!     Hypervisor, VmSpec,
//! };
//!
//! # async fn boot() -> Result<(), lightpod_vmm::VmError> {
//! let hypervisor = QemuHypervisor::new(QemuConfig::default())?;
//! let vm = hypervisor
//!     .create(VmSpec {
//!         id: "pod-1".into(),
//!         state_dir: "/run/lightpod/sandboxes/pod-1/vm".into(),
//!         vcpus: 1,
//!         memory_mib: 256,
//!         kernel: "/boot/vmlinuz-6.1.0-57-cloud-amd64".into(),
//!         initrd: "/var/lib/lightpod/guest/<digest>/initrd.img".into(),
//!         kernel_params: vec!["lightpod.log=info".into()],
//!         shared_dirs: Vec::new(),
//!         net_devices: Vec::new(),
//!         block_devices: Vec::new(),
//!         boot_timeout: Duration::from_secs(30),
//!     })
//!     .await?;
//! let _agent = vm.connect_agent().await?; // ttrpc runs over this stream
//! vm.stop(Duration::from_secs(5)).await?; // after the agent's Shutdown call
//! # Ok(())
//! # }
//! ```

pub mod accel;
pub mod cleanup;
pub mod cmdline;
pub mod config;
mod create;
mod kernel_params;
pub(crate) mod logs;
pub mod probe_cache;
pub mod process;
pub mod qmp;
pub mod tsc;
mod validate;
pub mod virtiofsd;
mod vm;

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::OnceCell;

pub use self::{
    accel::{AcceleratorProbe, BootProbeVerdict, HostFacts, PROBE_PARAM},
    cleanup::{cleanup_state_dir, CleanupError, CleanupReport},
    config::{AcceleratorChoice, MachineType, QemuConfig},
    kernel_params::{guest_cmdline, AGENT_PORT_NAME},
    vm::QemuVm,
};
use self::{create::CreateParams, probe_cache::ProbeCache};
use crate::{Accelerator, BackendKind, Hypervisor, Vm, VmError, VmExit, VmSpec};

/// Where virtiofsd is looked for when the configured path does not exist.
const VIRTIOFSD_FALLBACKS: &[&str] = &["/usr/libexec/virtiofsd", "/usr/local/bin/virtiofsd"];

/// The QEMU hypervisor backend.
#[derive(Debug)]
pub struct QemuHypervisor {
    config: QemuConfig,
    virtiofsd: Option<PathBuf>,
    facts: HostFacts,
    cache: ProbeCache,
    /// The boot probe's verdict, once known (from the cache or from the first create).
    boot_probe: OnceCell<BootProbeVerdict>,
}

impl QemuHypervisor {
    /// Checks that QEMU is installed and gathers what decides the accelerator. Where the host
    /// facts leave KVM possible, the first [`Hypervisor::create`] runs the boot probe with its
    /// kernel and initramfs (unless this host boot already has a cached verdict).
    ///
    /// # Errors
    ///
    /// [`VmError::VmmMissing`] when the QEMU binary does not exist.
    pub fn new(config: QemuConfig) -> Result<Self, VmError> {
        if !is_executable(&config.binary) {
            return Err(VmError::VmmMissing {
                binary: config.binary.display().to_string(),
                hint: "apt-get install qemu-system-x86".into(),
            });
        }
        let virtiofsd = find_virtiofsd(&config.virtiofsd);
        let facts = HostFacts::gather();
        let cache = ProbeCache::for_this_boot(&config.probe_cache_dir);
        let boot_probe = OnceCell::new();
        let probe = AcceleratorProbe::new(config.accelerator, facts.clone(), None, None);
        if probe.needs_boot_probe() {
            if let Some(cached) = cache.load() {
                let _ = boot_probe.set(cached);
            }
        }
        let hypervisor = QemuHypervisor {
            config,
            virtiofsd,
            facts,
            cache,
            boot_probe,
        };
        hypervisor.log_choice();
        Ok(hypervisor)
    }

    /// The configuration this backend runs with.
    pub fn config(&self) -> &QemuConfig {
        &self.config
    }

    /// The virtiofsd binary in use, if one was found.
    pub fn virtiofsd(&self) -> Option<&Path> {
        self.virtiofsd.as_deref()
    }

    /// The accelerator decision as it stands (for `lightpod doctor`).
    pub fn accelerator_probe(&self) -> AcceleratorProbe {
        let probe = AcceleratorProbe::new(
            self.config.accelerator,
            self.facts.clone(),
            self.boot_probe.get().cloned(),
            None,
        );
        // The TSC is measured only where a TCG guest needs it.
        let host_tsc_khz = (probe.chosen == Accelerator::Tcg)
            .then(tsc::host_tsc_khz)
            .flatten();
        AcceleratorProbe {
            host_tsc_khz,
            ..probe
        }
    }

    /// Runs the KVM boot probe now with this kernel and initramfs, when the decision needs it
    /// and has no verdict yet, and returns the decision.
    pub async fn probe_with_guest(&self, kernel: &Path, initrd: &Path) -> AcceleratorProbe {
        if self.accelerator_probe().needs_boot_probe() {
            self.boot_probe
                .get_or_init(|| async {
                    let verdict = self.run_boot_probe(kernel, initrd, Accelerator::Kvm).await;
                    self.cache.store(&verdict);
                    verdict
                })
                .await;
            self.log_choice();
        }
        self.accelerator_probe()
    }

    /// Boots the guest once under `accel` with [`PROBE_PARAM`] and reports whether it powered
    /// off cleanly within the probe timeout.
    pub async fn run_boot_probe(
        &self,
        kernel: &Path,
        initrd: &Path,
        accel: Accelerator,
    ) -> BootProbeVerdict {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let id = format!("probe-{}-{n}", std::process::id());
        let timeout = Duration::from_secs(self.config.probe_timeout_secs);
        let spec = VmSpec {
            id: id.clone(),
            state_dir: self.config.probe_cache_dir.join(&id),
            vcpus: 1,
            memory_mib: 256,
            kernel: kernel.to_path_buf(),
            initrd: initrd.to_path_buf(),
            kernel_params: vec![PROBE_PARAM.to_string()],
            shared_dirs: Vec::new(),
            net_devices: Vec::new(),
            block_devices: Vec::new(),
            boot_timeout: timeout,
        };
        let _ = std::fs::create_dir_all(&self.config.probe_cache_dir);
        let started = std::time::Instant::now();
        let vm = match create::create(&self.create_params(accel), spec).await {
            Ok(vm) => vm,
            Err(e) => {
                let detail = format!("create failed: {}", error_chain(&e));
                return BootProbeVerdict {
                    kvm_works: false,
                    detail,
                    cached: false,
                };
            }
        };
        let exit = tokio::time::timeout(timeout, vm.wait()).await;
        let _ = vm.stop(Duration::ZERO).await;
        let ms = started.elapsed().as_millis();
        match exit {
            Ok(VmExit::PoweredOff) => BootProbeVerdict {
                kvm_works: true,
                detail: format!("probe guest powered off after {ms} ms"),
                cached: false,
            },
            Ok(other) => BootProbeVerdict {
                kvm_works: false,
                detail: format!("probe guest ended as {other:?}"),
                cached: false,
            },
            Err(_) => BootProbeVerdict {
                kvm_works: false,
                detail: format!("probe guest did not power off within {timeout:?}"),
                cached: false,
            },
        }
    }

    fn create_params(&self, accel: Accelerator) -> CreateParams {
        CreateParams {
            qemu: self.config.binary.clone(),
            virtiofsd: self.virtiofsd.clone(),
            machine: self.config.machine,
            accel,
            tsc_khz: (accel == Accelerator::Tcg)
                .then(tsc::host_tsc_khz)
                .flatten(),
            tcg_tb_mib: self.config.tcg_tb_size_mib,
            free_page_reporting: self.config.free_page_reporting,
            pvh_boot: self.config.pvh_boot,
        }
    }

    fn log_choice(&self) {
        let probe = self.accelerator_probe();
        if probe.needs_boot_probe() {
            tracing::debug!(reason = %probe.reason, "KVM boot probe pending");
        } else if probe.chosen == Accelerator::Tcg
            && self.config.accelerator == AcceleratorChoice::Auto
        {
            tracing::warn!(backend = "qemu", reason = %probe.reason, "falling back to TCG");
        } else {
            tracing::info!(backend = "qemu", accelerator = %probe.chosen, reason = %probe.reason, "accelerator chosen");
        }
    }
}

#[async_trait]
impl Hypervisor for QemuHypervisor {
    fn kind(&self) -> BackendKind {
        BackendKind::Qemu
    }

    async fn create(&self, spec: VmSpec) -> Result<Box<dyn Vm>, VmError> {
        let accel = self
            .probe_with_guest(&spec.kernel, &spec.initrd)
            .await
            .chosen;
        let vm = create::create(&self.create_params(accel), spec).await?;
        Ok(Box::new(vm))
    }
}

/// The accelerator decision for `config`, without creating a backend (for `lightpod doctor`).
/// With `guest` (kernel, initramfs), runs the KVM boot probe where it is needed.
pub async fn probe_accelerator(
    config: &QemuConfig,
    guest: Option<(&Path, &Path)>,
) -> Result<AcceleratorProbe, VmError> {
    let hypervisor = QemuHypervisor::new(config.clone())?;
    Ok(match guest {
        Some((kernel, initrd)) => hypervisor.probe_with_guest(kernel, initrd).await,
        None => hypervisor.accelerator_probe(),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The configured virtiofsd, else a well-known location, else one on `PATH`.
fn find_virtiofsd(configured: &Path) -> Option<PathBuf> {
    if is_executable(configured) {
        return Some(configured.to_path_buf());
    }
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    VIRTIOFSD_FALLBACKS
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path_dirs).map(|d| d.join("virtiofsd")))
        .find(|p| is_executable(p))
}

/// An error with its sources, for one-line details.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
