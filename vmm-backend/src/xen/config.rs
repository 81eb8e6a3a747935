//! Configuration of the Xen backend, as it appears in `/etc/lightpod/config.toml` (`[xen]`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Where `xl` is looked for when the configuration names none, after `PATH`: Debian's
/// wrapper, then the toolstack's own directory.
const XL_FALLBACKS: &[&str] = &["/usr/sbin/xl", "/usr/lib/xen-4.17/bin/xl"];

/// How a guest is virtualised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum XenGuestType {
    /// Paravirtualised: no hardware virtualisation needed, also inside a nested host.
    #[default]
    Pv,
    /// PVH: a PV guest inside an HVM container; needs VT-x/AMD-V (`hvm` in `xl info`'s
    /// `virt_caps`).
    Pvh,
}

impl XenGuestType {
    /// The value of `type=` in an xl domain configuration.
    pub fn xl_name(self) -> &'static str {
        match self {
            XenGuestType::Pv => "pv",
            XenGuestType::Pvh => "pvh",
        }
    }
}

/// `tsc_mode` of a guest (xl.cfg(5)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TscMode {
    /// Xen decides per host.
    Default,
    /// Every TSC read traps into Xen.
    AlwaysEmulate,
    /// The guest reads the host TSC directly. Avoids emulated RDTSCP, which a nested Xen
    /// under QEMU TCG cannot complete for PVH guests.
    Native,
    /// Native, with a paravirtual TSC for the guest.
    NativeParavirt,
}

impl TscMode {
    /// The value of `tsc_mode=` in an xl domain configuration.
    pub fn xl_name(self) -> &'static str {
        match self {
            TscMode::Default => "default",
            TscMode::AlwaysEmulate => "always_emulate",
            TscMode::Native => "native",
            TscMode::NativeParavirt => "native_paravirt",
        }
    }
}

/// Settings of the Xen backend. Every field has a default that works in a Debian dom0.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct XenConfig {
    /// The `xl` binary; unset looks in `PATH`, then `/usr/sbin/xl`, then Xen 4.17's own dir.
    pub xl: Option<PathBuf>,
    /// Guest type.
    pub guest_type: XenGuestType,
    /// `tsc_mode` of guests; unset keeps Xen's default.
    pub tsc_mode: Option<TscMode>,
    /// xenstored's unix socket.
    pub xenstore_socket: PathBuf,
    /// Bridge in dom0 that guest vifs join through Xen's `vif-bridge` script; unset keeps
    /// xl's default (the first bridge).
    pub bridge: Option<String>,
    /// How long one `xl` command (block-attach, destroy, …) may take, in seconds.
    pub xl_timeout_secs: u64,
    /// lightpod's block hotplug script (installed by deploy/install.sh). When it is missing,
    /// disks go through Xen's own `block` script, which works but takes seconds per disk.
    pub block_script: PathBuf,
}

impl Default for XenConfig {
    fn default() -> Self {
        XenConfig {
            xl: None,
            guest_type: XenGuestType::default(),
            tsc_mode: None,
            xenstore_socket: PathBuf::from("/run/xenstored/socket"),
            bridge: None,
            xl_timeout_secs: 60,
            block_script: PathBuf::from("/usr/local/lib/lightpod/xen-block-hotplug"),
        }
    }
}

impl XenConfig {
    /// The `xl` binary to run: the configured one, else the first executable one in `PATH`
    /// or the fallbacks. `None` when there is none.
    pub fn find_xl(&self) -> Option<PathBuf> {
        if let Some(xl) = &self.xl {
            return is_executable(xl).then(|| xl.clone());
        }
        let path_dirs = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path_dirs)
            .map(|d| d.join("xl"))
            .chain(XL_FALLBACKS.iter().map(PathBuf::from))
            .find(|p| is_executable(p))
    }

    /// lightpod's block hotplug script, if it is installed.
    pub fn find_block_script(&self) -> Option<PathBuf> {
        is_executable(&self.block_script).then(|| self.block_script.clone())
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Outer {
        xen: XenConfig,
    }

    #[test]
    fn partial_config_keeps_defaults() {
        let parsed: Outer = serde_json::from_str(
            r#"{"xen": {"guest_type": "pvh", "tsc_mode": "native", "bridge": "xenbr0"}}"#,
        )
        .unwrap();
        assert_eq!(parsed.xen.guest_type, XenGuestType::Pvh);
        assert_eq!(parsed.xen.tsc_mode, Some(TscMode::Native));
        assert_eq!(parsed.xen.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(
            parsed.xen.xenstore_socket,
            XenConfig::default().xenstore_socket
        );
    }

    #[test]
    fn unknown_keys_and_values_are_rejected() {
        for (name, text) in [
            ("misspelt key", r#"{"xen": {"guest_typ": "pv"}}"#),
            ("unknown guest type", r#"{"xen": {"guest_type": "hvm"}}"#),
            ("unknown tsc mode", r#"{"xen": {"tsc_mode": "fast"}}"#),
        ] {
            assert!(
                serde_json::from_str::<Outer>(text).is_err(),
                "{name} accepted"
            );
        }
    }

    #[test]
    fn a_configured_xl_that_does_not_exist_is_not_found() {
        let config = XenConfig {
            xl: Some("/nonexistent/xl".into()),
            ..XenConfig::default()
        };
        assert_eq!(config.find_xl(), None);
    }
}
