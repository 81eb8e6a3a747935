//! The guest kernel command line the QEMU backend adds before the caller's parameters.

use crate::Accelerator;

/// Name of the agent's virtio-serial port (ARCHITECTURE.md, "The agent channel").
pub const AGENT_PORT_NAME: &str = "lightpod.agent";

/// Smallest block of free guest memory reported to the host, as a page order: 2^6 pages,
/// 256 KiB. Linux's default (a pageblock, 4 MiB in lightpod's kernel) leaves most memory
/// freed after boot unreported; smaller blocks cost more reports for little more memory.
pub const PAGE_REPORTING_ORDER: u32 = 6;

/// The rate of the local APIC timer of QEMU's emulated APIC: it counts nanoseconds. Handed to
/// TCG guests as `lapic_timer_hz=` (a parameter of lightpod's kernel, from its patch
/// `0001-x86-apic-timer-rate-from-the-command-line`), so they skip calibrating the timer,
/// 100 ms of every boot. Other kernels ignore the parameter (and hand it to init as an
/// environment variable, which the agent ignores too).
pub const TCG_APIC_TIMER_HZ: u64 = 1_000_000_000;

/// The parameter that sets [`PAGE_REPORTING_ORDER`] (the agent applies it again after the
/// balloon driver has reset it).
pub fn page_reporting_param() -> String {
    format!("page_reporting.page_reporting_order={PAGE_REPORTING_ORDER}")
}

/// The guest kernel command line: the backend's parameters, then the caller's.
pub fn guest_cmdline(accel: Accelerator, tsc_khz: Option<u64>, extra: &[String]) -> String {
    // panic=-1 reboots at once on a panic, and -no-reboot turns that reboot into QEMU's exit;
    // reboot=t (triple fault) works on every machine type, including microvm.
    let mut params = vec![
        "console=ttyS0".to_string(),
        "panic=-1".to_string(),
        "reboot=t".to_string(),
        format!("lightpod.channel=virtio-port:{AGENT_PORT_NAME}"),
    ];
    if let (Accelerator::Tcg, Some(khz)) = (accel, tsc_khz) {
        params.push(format!("tsc_early_khz={khz}"));
    }
    // Under KVM the guest has the TSC deadline timer and calibrates nothing, and rewriting
    // its own code is cheap. Under TCG every code page the kernel patches loses its
    // translations: a one-vCPU guest would otherwise strip the lock prefix of every atomic
    // instruction at boot (about 50 ms), for a gain TCG does not show.
    if accel == Accelerator::Tcg {
        params.push(format!("lapic_timer_hz={TCG_APIC_TIMER_HZ}"));
        params.push("noreplace-smp".to_string());
    }
    params.extend(extra.iter().cloned());
    params.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_cmdline_per_accelerator() {
        let extra = vec!["lightpod.log=debug".to_string()];
        let tcg = guest_cmdline(Accelerator::Tcg, Some(2_596_094), &extra);
        assert!(tcg.contains("tsc_early_khz=2596094"), "{tcg}");
        assert!(tcg.contains("lapic_timer_hz=1000000000"), "{tcg}");
        assert!(tcg.contains("noreplace-smp"), "{tcg}");
        assert!(
            tcg.ends_with("lightpod.log=debug"),
            "caller's params come last: {tcg}"
        );
        let kvm = guest_cmdline(Accelerator::Kvm, Some(2_596_094), &extra);
        assert!(
            !kvm.contains("tsc_early_khz"),
            "KVM guests read the real TSC: {kvm}"
        );
        assert!(
            !kvm.contains("lapic_timer_hz"),
            "KVM guests have the TSC deadline timer: {kvm}"
        );
        assert!(
            !kvm.contains("noreplace-smp"),
            "KVM guests patch their code cheaply: {kvm}"
        );
        for want in [
            "console=ttyS0",
            "panic=-1",
            "lightpod.channel=virtio-port:lightpod.agent",
        ] {
            assert!(kvm.contains(want), "{want} in {kvm}");
        }
    }
}
