//! The configuration file, `/etc/lightpod/config.toml`, and per-pod annotation overrides.
//!
//! Every key has a default that works on a host where `deploy/install.sh` ran, so an empty
//! or missing file is a valid configuration. Unknown keys are rejected, so a typo does not
//! silently fall back to a default.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use lightpod_vmm::{qemu::QemuConfig, xen::XenConfig, BackendKind};
use serde::Deserialize;

/// Where the configuration file lives unless `LIGHTPOD_CONFIG` or a flag says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/lightpod/config.toml";

/// Environment variable naming another configuration file.
pub const CONFIG_ENV: &str = "LIGHTPOD_CONFIG";

/// Prefix of the annotations lightpod reads.
pub const ANNOTATION_PREFIX: &str = "lightpod.io/";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys or wrong types.
    #[error("parse {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("{key} = {value}: {reason}")]
    Invalid {
        /// The key (`vm.vcpus`) or annotation (`lightpod.io/vcpus`).
        key: String,
        /// The value given.
        value: String,
        /// What would be accepted.
        reason: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where state lives and which backend runs guests.
    pub runtime: RuntimeConfig,
    /// Size and boot parameters of each pod's VM.
    pub vm: VmConfig,
    /// The guest kernel and agent.
    pub guest: GuestConfig,
    /// The QEMU backend.
    pub qemu: QemuConfig,
    /// The Xen backend.
    pub xen: XenConfig,
}

/// `[runtime]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Root of per-sandbox state (sockets, shared directories).
    pub state_dir: PathBuf,
    /// Backend that runs guests: `qemu` or `xen`.
    pub backend: BackendKind,
    /// How long a guest gets to power off by itself before it is killed, in seconds.
    pub stop_grace_secs: u64,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            state_dir: PathBuf::from("/run/lightpod"),
            backend: BackendKind::Qemu,
            stop_grace_secs: 5,
        }
    }
}

/// `[vm]`: defaults for every pod, overridable per pod by annotation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VmConfig {
    /// vCPUs per VM (`lightpod.io/vcpus`).
    pub vcpus: u32,
    /// Guest memory in MiB (`lightpod.io/memory-mib`).
    pub memory_mib: u32,
    /// How long a guest may take from VMM start to agent ready, in seconds.
    pub boot_timeout_secs: u64,
    /// Extra guest kernel parameters (`lightpod.io/kernel-params`, space separated).
    pub kernel_params: Vec<String>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            vcpus: 1,
            memory_mib: 256,
            boot_timeout_secs: 60,
            kernel_params: Vec::new(),
        }
    }
}

impl VmConfig {
    /// Boot timeout as a duration.
    pub fn boot_timeout(&self) -> Duration {
        Duration::from_secs(self.boot_timeout_secs)
    }
}

/// `[guest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuestConfig {
    /// Guest kernel; unset picks lightpod's own kernel if installed, else the host's newest.
    pub kernel: Option<PathBuf>,
    /// Static agent binary; unset looks beside the running binary, then in
    /// `/usr/local/lib/lightpod`.
    pub agent: Option<PathBuf>,
    /// Cache of built initramfs images.
    pub image_cache: PathBuf,
}

impl Default for GuestConfig {
    fn default() -> Self {
        GuestConfig {
            kernel: None,
            agent: None,
            image_cache: PathBuf::from("/var/lib/lightpod/guest"),
        }
    }
}

impl Config {
    /// Loads the configuration: `path` if given, else `$LIGHTPOD_CONFIG`, else
    /// `/etc/lightpod/config.toml`; a missing default file means all defaults.
    ///
    /// # Errors
    ///
    /// The file cannot be read or parsed, or a value is out of range.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let explicit = path
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                String::new()
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Config::parse(&text, &path)
    }

    /// Parses configuration text; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// The text is not a valid configuration.
    pub fn parse(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: origin.to_path_buf(),
            source,
        })?;
        config.vm.validate(false)?;
        if config.qemu.tcg_tb_size_mib == 0 {
            return Err(ConfigError::Invalid {
                key: "qemu.tcg_tb_size_mib".into(),
                value: "0".into(),
                reason: "must be at least 1 (MiB of translated code per guest)".into(),
            });
        }
        Ok(config)
    }
}

impl VmConfig {
    /// Checks ranges; `from_annotation` names keys as annotations instead of file keys.
    fn validate(&self, from_annotation: bool) -> Result<(), ConfigError> {
        let invalid = |field: &str, value: String, reason: String| ConfigError::Invalid {
            key: if from_annotation {
                format!("{ANNOTATION_PREFIX}{}", field.replace('_', "-"))
            } else {
                format!("vm.{field}")
            },
            value,
            reason,
        };
        let host_cpus = host_cpus();
        if self.vcpus == 0 || self.vcpus > host_cpus {
            return Err(invalid(
                "vcpus",
                self.vcpus.to_string(),
                format!("must be between 1 and the host's {host_cpus} CPUs"),
            ));
        }
        let host_mib = host_memory_mib();
        if self.memory_mib < 64 || self.memory_mib > host_mib {
            return Err(invalid(
                "memory_mib",
                self.memory_mib.to_string(),
                format!("must be between 64 and the host's {host_mib} MiB"),
            ));
        }
        if self.boot_timeout_secs == 0 {
            return Err(invalid(
                "boot_timeout_secs",
                "0".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// This configuration sized for a pod: grown by the resources containerd's CRI plugin
    /// annotates ([`crate::pod_size`]), then with the pod's `lightpod.io/` annotations
    /// applied, which win.
    ///
    /// # Errors
    ///
    /// An annotation under `lightpod.io/` is unknown or has an invalid value, or the pod
    /// asks more than the host has.
    pub fn with_annotations(
        &self,
        annotations: &HashMap<String, String>,
    ) -> Result<VmConfig, ConfigError> {
        let mut vm = crate::pod_size::for_pod(self, annotations, host_cpus(), host_memory_mib())?;
        for (key, value) in annotations {
            let Some(name) = key.strip_prefix(ANNOTATION_PREFIX) else {
                continue;
            };
            let number = |v: &str| {
                v.trim().parse::<u32>().map_err(|_| ConfigError::Invalid {
                    key: key.clone(),
                    value: v.to_string(),
                    reason: "must be a whole number".into(),
                })
            };
            match name {
                "vcpus" => vm.vcpus = number(value)?,
                "memory-mib" => vm.memory_mib = number(value)?,
                "kernel-params" => vm
                    .kernel_params
                    .extend(value.split_whitespace().map(str::to_string)),
                _ => {
                    return Err(ConfigError::Invalid {
                        key: key.clone(),
                        value: value.clone(),
                        reason: format!(
                            "unknown lightpod annotation; known: {ANNOTATION_PREFIX}vcpus, \
                             {ANNOTATION_PREFIX}memory-mib, {ANNOTATION_PREFIX}kernel-params"
                        ),
                    })
                }
            }
        }
        vm.validate(true)?;
        Ok(vm)
    }
}

/// Online CPUs of the host.
fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get()) as u32
}

/// Total memory of the host in MiB, from `/proc/meminfo` (a large value if unreadable, so
/// validation never rejects a request because of a read failure). In a Xen dom0 guests take
/// their memory from the hypervisor, not from dom0, so dom0's size is no bound: the Xen
/// backend checks what Xen has free when it builds the domain.
fn host_memory_mib() -> u32 {
    let xen_dom0 = std::fs::read_to_string("/proc/xen/capabilities")
        .is_ok_and(|caps| caps.contains("control_d"));
    if xen_dom0 {
        return u32::MAX;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u32::MAX, |kib| (kib / 1024).min(u64::from(u32::MAX)) as u32)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
