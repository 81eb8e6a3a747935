//! The xl domain configuration file (xl.cfg(5)) of a guest, and the disk and vif
//! specifications (xl-disk-configuration(5), xl-network-configuration(5)) inside it and on
//! `xl block-attach`'s command line, built from typed values.
//!
//! xl's parser has no escape sequences that every version understands, and a disk or vif
//! specification is a comma-separated `key=value` list, so values holding a quote,
//! backslash, comma, `=` or a control character are refused rather than escaped.

use std::{fmt::Write, path::PathBuf};

use crate::xen::config::{TscMode, XenGuestType};

/// A value cannot be written into an xl configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} cannot go into an xl configuration: {reason}")]
pub struct XlValueError {
    /// Which value (`kernel`, `disk target`, …).
    pub what: &'static str,
    /// The value.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Access of a guest to a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskAccess {
    /// Read and write.
    ReadWrite,
    /// Read only.
    ReadOnly,
}

/// A raw disk image or block device of the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Guest device name (`xvdb`).
    pub vdev: String,
    /// Read-only or read-write.
    pub access: DiskAccess,
    /// Hotplug script instead of Xen's `block`.
    pub script: Option<PathBuf>,
    /// Host file or block device.
    pub target: PathBuf,
}

impl DiskSpec {
    /// The specification string, `target` last as xl-disk-configuration(5) requires.
    ///
    /// # Errors
    ///
    /// The device name or path holds characters the specification syntax cannot carry.
    pub fn render(&self) -> Result<String, XlValueError> {
        let vdev = list_value("disk vdev", &self.vdev)?;
        let target = self.target.to_string_lossy();
        let target = list_value("disk target", &target)?;
        let access = match self.access {
            DiskAccess::ReadWrite => "rw",
            DiskAccess::ReadOnly => "ro",
        };
        let script = match &self.script {
            Some(script) => {
                let script = script.to_string_lossy();
                format!("script={},", list_value("disk script", &script)?)
            }
            None => String::new(),
        };
        Ok(format!(
            "format=raw,vdev={vdev},access={access},{script}target={target}"
        ))
    }
}

/// A network interface of the guest: netback's end in dom0 is named `vifname`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VifSpec {
    /// The guest interface's MAC address.
    pub mac: String,
    /// MTU of both ends.
    pub mtu: u32,
    /// Name of the interface in dom0.
    pub vifname: String,
    /// Bridge the dom0 end joins; `None` keeps xl's default.
    pub bridge: Option<String>,
}

impl VifSpec {
    /// The specification string.
    ///
    /// # Errors
    ///
    /// A value holds characters the specification syntax cannot carry.
    pub fn render(&self) -> Result<String, XlValueError> {
        let mut spec = format!(
            "mac={},mtu={},vifname={}",
            list_value("vif mac", &self.mac)?,
            self.mtu,
            list_value("vif name", &self.vifname)?
        );
        if let Some(bridge) = &self.bridge {
            let _ = write!(spec, ",bridge={}", list_value("vif bridge", bridge)?);
        }
        Ok(spec)
    }
}

/// Everything xl needs to build one lightpod guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainConfig {
    /// Domain name, unique on the host.
    pub name: String,
    /// PV or PVH.
    pub guest_type: XenGuestType,
    /// Guest kernel (ELF vmlinux or bzImage).
    pub kernel: PathBuf,
    /// Initramfs.
    pub ramdisk: PathBuf,
    /// Kernel command line.
    pub cmdline: String,
    /// Memory in MiB (also the maximum: lightpod guests do not balloon).
    pub memory_mib: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// `tsc_mode`, when not Xen's default.
    pub tsc_mode: Option<TscMode>,
    /// Disks present from the start.
    pub disks: Vec<DiskSpec>,
    /// Network interfaces.
    pub vifs: Vec<VifSpec>,
}

impl DomainConfig {
    /// The configuration file's text.
    ///
    /// # Errors
    ///
    /// A value holds characters xl's syntax cannot carry.
    pub fn render(&self) -> Result<String, XlValueError> {
        let mut text = String::new();
        let mut line = |key: &str, value: String| {
            let _ = writeln!(text, "{key} = {value}");
        };
        line("name", quoted("domain name", &self.name)?);
        line("type", quoted("type", self.guest_type.xl_name())?);
        line("kernel", quoted("kernel", &self.kernel.to_string_lossy())?);
        line(
            "ramdisk",
            quoted("ramdisk", &self.ramdisk.to_string_lossy())?,
        );
        line("cmdline", quoted("kernel command line", &self.cmdline)?);
        line("memory", self.memory_mib.to_string());
        line("maxmem", self.memory_mib.to_string());
        line("vcpus", self.vcpus.to_string());
        // The guest's own power-off, a reboot (panic=-1) and a crash all end the domain:
        // a pod VM is never restarted in place.
        for event in ["on_poweroff", "on_reboot", "on_crash"] {
            line(event, "\"destroy\"".into());
        }
        if let Some(mode) = self.tsc_mode {
            line("tsc_mode", quoted("tsc_mode", mode.xl_name())?);
        }
        let disks: Vec<String> = self
            .disks
            .iter()
            .map(|d| d.render().map(|s| format!("'{s}'")))
            .collect::<Result<_, _>>()?;
        if !disks.is_empty() {
            line("disk", format!("[ {} ]", disks.join(", ")));
        }
        let vifs: Vec<String> = self
            .vifs
            .iter()
            .map(|v| v.render().map(|s| format!("'{s}'")))
            .collect::<Result<_, _>>()?;
        if !vifs.is_empty() {
            line("vif", format!("[ {} ]", vifs.join(", ")));
        }
        Ok(text)
    }
}

/// A double-quoted string value.
fn quoted(what: &'static str, value: &str) -> Result<String, XlValueError> {
    plain(what, value, &['"', '\'', '\\'])?;
    Ok(format!("\"{value}\""))
}

/// A value inside a disk or vif specification (which is itself single-quoted).
fn list_value<'a>(what: &'static str, value: &'a str) -> Result<&'a str, XlValueError> {
    plain(what, value, &['"', '\'', '\\', ',', '=', ' '])?;
    if value.is_empty() {
        return Err(XlValueError {
            what,
            value: value.into(),
            reason: "it is empty",
        });
    }
    Ok(value)
}

fn plain(what: &'static str, value: &str, forbidden: &[char]) -> Result<(), XlValueError> {
    let bad = |reason| XlValueError {
        what,
        value: value.into(),
        reason,
    };
    if value.chars().any(char::is_control) {
        return Err(bad("it holds a control character"));
    }
    if value.contains(forbidden) {
        return Err(bad("it holds a quote, backslash or separator"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "domain_config_tests.rs"]
mod tests;
