//! `lightpod doctor`'s checks of the Xen backend: is this a Xen dom0 whose toolstack can
//! create guests, with memory free for one, and the tools root filesystem images need.

use lightpod_sandbox::Config;
use lightpod_vmm::{
    xen::{probe_host, XenGuestType},
    BackendKind,
};

use crate::doctor::{which, Check, Verdict};

/// The Xen checks; essential when the configuration selects the Xen backend.
pub async fn checks(config: &Config) -> Vec<Check> {
    let selected = config.runtime.backend == BackendKind::Xen;
    let host = probe_host(&config.xen).await;
    let verdict = match (&host.xl, &host.info) {
        (None, _) => Verdict::Missing(
            "xl not found: this host is not a Xen dom0".into(),
            "apt-get install xen-system-amd64, reboot into Xen, run lightpod in dom0".into(),
        ),
        (Some(_), Err(why)) => Verdict::Missing(
            format!("xl info fails: {why}"),
            "run as root in the dom0 of a running Xen (xencommons started)".into(),
        ),
        (Some(xl), Ok(info)) => {
            let free = info.free_memory_mib().unwrap_or(0);
            let text = format!(
                "Xen {} via {}, {free} MiB free for guests, guest type {}",
                info.xen_version().unwrap_or("?"),
                xl.display(),
                config.xen.guest_type.xl_name()
            );
            if !host.xenstored {
                Verdict::Missing(
                    format!(
                        "{text}; xenstored's socket {} is missing",
                        config.xen.xenstore_socket.display()
                    ),
                    "start xenstored (xencommons) or set xen.xenstore_socket".into(),
                )
            } else if !host.xenconsoled {
                Verdict::Missing(
                    format!("{text}; xenconsoled is not running (it carries the agent channel)"),
                    "start xenconsoled (xencommons)".into(),
                )
            } else if config.xen.guest_type == XenGuestType::Pvh && !info.supports_pvh() {
                Verdict::Missing(
                    format!("{text}; this Xen offers no HVM, which PVH guests need"),
                    "set xen.guest_type = \"pv\", or enable VT-x/AMD-V".into(),
                )
            } else if free < u64::from(config.vm.memory_mib) {
                Verdict::Warn(
                    text,
                    format!(
                        "less free memory than one guest's vm.memory_mib = {}: lower it, or \
                         give dom0 less (dom0_mem=)",
                        config.vm.memory_mib
                    ),
                )
            } else {
                Verdict::Ok(text)
            }
        }
    };
    let mkfs = match which("mkfs.ext4") {
        Some(path) => Verdict::Ok(format!(
            "{} (container root filesystems go into Xen guests as ext4 images)",
            path.display()
        )),
        None => Verdict::Missing(
            "mkfs.ext4 not found (the xen backend builds rootfs images with it)".into(),
            "apt-get install e2fsprogs".into(),
        ),
    };
    vec![
        Check {
            name: "xen",
            verdict,
            essential: selected,
        },
        Check {
            name: "mkfs.ext4",
            verdict: mkfs,
            essential: selected,
        },
    ]
}
