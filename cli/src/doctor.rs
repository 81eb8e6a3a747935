//! `lightpod doctor`: what this host can run, and the command that fixes each missing piece.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use lightpod_sandbox::{guest, Config};
use lightpod_vmm::{guest::kernel_release, qemu::QemuHypervisor, BackendKind, VmError};

/// How one check went.
pub(crate) enum Verdict {
    Ok(String),
    /// Works, but not as well as it could.
    Warn(String, String),
    /// Missing: what, and the command that fixes it.
    Missing(String, String),
}

pub(crate) struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    /// A missing piece here stops pods from running.
    pub essential: bool,
}

/// Runs every check, prints one line each, and fails when an essential piece is missing.
pub async fn doctor(config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut checks = Vec::new();
    // The checks of the backend the configuration selects decide the verdict.
    let qemu_selected = config.runtime.backend == BackendKind::Qemu;
    checks.push(Check {
        name: "backend",
        verdict: Verdict::Ok(format!("{} (runtime.backend)", config.runtime.backend)),
        essential: false,
    });

    match QemuHypervisor::new(config.qemu.clone()) {
        Ok(qemu) => {
            let mut probe = qemu.accelerator_probe();
            if probe.needs_boot_probe() {
                if let Ok(image) = guest::resolve(&config.guest).await {
                    probe = qemu.probe_with_guest(&image.kernel, &image.initrd).await;
                }
            }
            let verdict = match probe.chosen {
                lightpod_vmm::Accelerator::Kvm => Verdict::Ok(format!("kvm: {}", probe.reason)),
                lightpod_vmm::Accelerator::Tcg => Verdict::Warn(
                    format!("tcg (software emulation): {}", probe.reason),
                    "guests boot several times slower than under KVM; use a host with VT-x/AMD-V \
                     and /dev/kvm for production"
                        .into(),
                ),
            };
            checks.push(Check {
                name: "accelerator",
                verdict,
                essential: qemu_selected,
            });
            checks.push(Check {
                name: "qemu",
                verdict: Verdict::Ok(first_line(&config.qemu.binary, &["--version"])),
                essential: qemu_selected,
            });
            checks.push(Check {
                name: "virtiofsd",
                verdict: match qemu.virtiofsd() {
                    Some(path) => Verdict::Ok(format!(
                        "{} ({})",
                        path.display(),
                        first_line(path, &["--version"])
                    )),
                    None => Verdict::Missing(
                        format!("{} not found", config.qemu.virtiofsd.display()),
                        "sudo deploy/install.sh (builds it with `cargo install virtiofsd`)".into(),
                    ),
                },
                essential: qemu_selected,
            });
        }
        Err(VmError::VmmMissing { binary, hint }) => checks.push(Check {
            name: "qemu",
            verdict: Verdict::Missing(format!("{binary} not found"), hint),
            essential: qemu_selected,
        }),
        Err(e) => checks.push(Check {
            name: "qemu",
            verdict: Verdict::Missing(
                lightpod_sandbox::chain(&e),
                "apt-get install qemu-system-x86".into(),
            ),
            essential: qemu_selected,
        }),
    }

    checks.extend(crate::doctor_xen::checks(&config).await);

    checks.push(Check {
        name: "guest kernel",
        verdict: match guest::choose_kernel(&config.guest) {
            Ok(choice) => {
                let release =
                    kernel_release(&choice.kernel).unwrap_or_else(|_| "unknown release".into());
                let text = format!("{} ({release}; {})", choice.kernel.display(), choice.reason);
                if choice.modules_dir.is_some() {
                    Verdict::Warn(
                        text,
                        "a distribution kernel boots slower; build lightpod's own with \
                         vmm-backend/guest/kernel/build-kernel.sh (deploy/install.sh does)"
                            .into(),
                    )
                } else {
                    Verdict::Ok(text)
                }
            }
            Err(e) => Verdict::Missing(
                lightpod_sandbox::chain(&e),
                "sudo deploy/install.sh (builds lightpod's kernel), or apt-get install \
                 linux-image-cloud-amd64"
                    .into(),
            ),
        },
        essential: true,
    });
    checks.push(Check {
        name: "guest agent",
        verdict: match guest::choose_agent(&config.guest) {
            Ok(path) => Verdict::Ok(path.display().to_string()),
            Err(e) => {
                Verdict::Missing(lightpod_sandbox::chain(&e), "sudo deploy/install.sh".into())
            }
        },
        essential: true,
    });
    checks.push(Check {
        name: "containerd",
        verdict: match which("containerd") {
            Some(path) => Verdict::Ok(first_line(&path, &["--version"])),
            None => Verdict::Missing(
                "containerd not found".into(),
                "apt-get install containerd".into(),
            ),
        },
        essential: false,
    });
    checks.push(Check {
        name: "containerd shim",
        verdict: match which("containerd-shim-lightpod-v2") {
            Some(path) => Verdict::Ok(path.display().to_string()),
            None => Verdict::Missing(
                "containerd-shim-lightpod-v2 not in PATH".into(),
                "sudo deploy/install.sh".into(),
            ),
        },
        essential: false,
    });
    checks.push(Check {
        name: "CNI plugins",
        verdict: match ["/usr/lib/cni/bridge", "/opt/cni/bin/bridge"]
            .iter()
            .find(|p| Path::new(p).exists())
        {
            Some(p) => Verdict::Ok(
                Path::new(p)
                    .parent()
                    .map_or_else(String::new, |d| d.display().to_string()),
            ),
            None => Verdict::Missing(
                "no CNI plugins".into(),
                "apt-get install containernetworking-plugins".into(),
            ),
        },
        essential: false,
    });
    checks.push(Check {
        name: "cgroups",
        verdict: Verdict::Ok(cgroup_mode()),
        essential: false,
    });
    checks.push(Check {
        name: "vhost-vsock",
        verdict: if Path::new("/dev/vhost-vsock").exists() {
            Verdict::Ok("present (not needed: the agent channel is virtio-serial)".into())
        } else {
            Verdict::Ok("absent (not needed: the agent channel is virtio-serial)".into())
        },
        essential: false,
    });

    let mut failed = false;
    for check in &checks {
        match &check.verdict {
            Verdict::Ok(text) => println!("ok       {:<16} {text}", check.name),
            Verdict::Warn(text, advice) => {
                println!("warn     {:<16} {text}", check.name);
                println!("         {:<16} → {advice}", "");
            }
            Verdict::Missing(text, fix) => {
                failed |= check.essential;
                println!("MISSING  {:<16} {text}", check.name);
                println!("         {:<16} → fix: {fix}", "");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn first_line(binary: &Path, args: &[&str]) -> String {
    Command::new(binary)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| binary.display().to_string())
}

/// The first `name` in `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn cgroup_mode() -> String {
    let v2_only = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let v1 =
        Path::new("/sys/fs/cgroup/memory").exists() || Path::new("/sys/fs/cgroup/cpu").exists();
    match (v2_only, v1) {
        (true, false) => "v2 (unified)".into(),
        (_, true) => "v1 (with v2 beside it on some hosts); guests use v2 inside".into(),
        _ => "unknown".into(),
    }
}
