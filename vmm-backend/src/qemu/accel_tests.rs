#![allow(clippy::unwrap_used)]

use super::*;

const CPUINFO_PLAIN: &str = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae hypervisor\n";
const CPUINFO_SVM: &str = "processor\t: 0\nflags\t\t: fpu vme svm npt tsc\n";
const CPUINFO_VMX: &str = "processor\t: 0\nflags\t\t: fpu vmx ept tsc\nbugs\t: svm_fake\n";

fn sys_module(with_pvm: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("kvm")).unwrap();
    if with_pvm {
        std::fs::create_dir(dir.path().join("kvm_pvm")).unwrap();
    }
    dir
}

#[test]
fn facts_from_parts() {
    let pvm = sys_module(true);
    let facts = HostFacts::from_parts(Ok(()), pvm.path(), CPUINFO_PLAIN);
    assert!(
        facts.kvm_pvm,
        "kvm_pvm directory means the module is loaded"
    );
    assert_eq!(facts.hardware_virt, None, "no vmx/svm in flags");

    let plain = sys_module(false);
    let facts = HostFacts::from_parts(Ok(()), plain.path(), CPUINFO_VMX);
    assert!(!facts.kvm_pvm);
    assert_eq!(facts.hardware_virt.as_deref(), Some("vmx"));
    assert_eq!(cpu_virt_flag(CPUINFO_SVM), Some("svm"));
}

#[test]
fn static_decisions() {
    let pvm = sys_module(true);
    let plain = sys_module(false);
    struct Case {
        name: &'static str,
        choice: AcceleratorChoice,
        facts: HostFacts,
        expect: Option<Accelerator>,
        reason_has: &'static str,
    }
    let cases = [
        Case {
            name: "this machine: kvm_pvm, no vmx/svm",
            choice: AcceleratorChoice::Auto,
            facts: HostFacts::from_parts(Ok(()), pvm.path(), CPUINFO_PLAIN),
            expect: Some(Accelerator::Tcg),
            reason_has: "kvm_pvm",
        },
        Case {
            name: "pvm even with svm flag",
            choice: AcceleratorChoice::Auto,
            facts: HostFacts::from_parts(Ok(()), pvm.path(), CPUINFO_SVM),
            expect: Some(Accelerator::Tcg),
            reason_has: "kvm_pvm",
        },
        Case {
            name: "no /dev/kvm",
            choice: AcceleratorChoice::Auto,
            facts: HostFacts::from_parts(
                Err("/dev/kvm: No such file".into()),
                plain.path(),
                CPUINFO_VMX,
            ),
            expect: Some(Accelerator::Tcg),
            reason_has: "/dev/kvm: No such file",
        },
        Case {
            name: "no vmx/svm",
            choice: AcceleratorChoice::Auto,
            facts: HostFacts::from_parts(Ok(()), plain.path(), CPUINFO_PLAIN),
            expect: Some(Accelerator::Tcg),
            reason_has: "vmx/svm",
        },
        Case {
            name: "real host needs the boot probe",
            choice: AcceleratorChoice::Auto,
            facts: HostFacts::from_parts(Ok(()), plain.path(), CPUINFO_VMX),
            expect: None,
            reason_has: "",
        },
        Case {
            name: "forced kvm on a pvm host",
            choice: AcceleratorChoice::Kvm,
            facts: HostFacts::from_parts(Ok(()), pvm.path(), CPUINFO_PLAIN),
            expect: Some(Accelerator::Kvm),
            reason_has: "forced",
        },
        Case {
            name: "forced tcg on a real host",
            choice: AcceleratorChoice::Tcg,
            facts: HostFacts::from_parts(Ok(()), plain.path(), CPUINFO_SVM),
            expect: Some(Accelerator::Tcg),
            reason_has: "forced",
        },
    ];
    for case in cases {
        match (static_verdict(case.choice, &case.facts), case.expect) {
            (StaticVerdict::Settled(accel, reason), Some(expect)) => {
                assert_eq!(accel, expect, "{}", case.name);
                assert!(
                    reason.contains(case.reason_has),
                    "{}: reason {reason:?}",
                    case.name
                );
            }
            (StaticVerdict::NeedsBootProbe, None) => {}
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.name),
        }
    }
}

#[test]
fn boot_probe_verdict_settles_a_real_host() {
    let plain = sys_module(false);
    let facts = HostFacts::from_parts(Ok(()), plain.path(), CPUINFO_VMX);

    let pending = AcceleratorProbe::new(AcceleratorChoice::Auto, facts.clone(), None, None);
    assert!(pending.needs_boot_probe(), "no verdict yet");

    let works = BootProbeVerdict {
        kvm_works: true,
        detail: "powered off".into(),
        cached: false,
    };
    let probe = AcceleratorProbe::new(AcceleratorChoice::Auto, facts.clone(), Some(works), None);
    assert_eq!(probe.chosen, Accelerator::Kvm);
    assert!(!probe.needs_boot_probe());

    let fails = BootProbeVerdict {
        kvm_works: false,
        detail: "timed out".into(),
        cached: true,
    };
    let probe = AcceleratorProbe::new(AcceleratorChoice::Auto, facts, Some(fails), None);
    assert_eq!(probe.chosen, Accelerator::Tcg);
    assert!(
        probe.reason.contains("timed out"),
        "reason carries the probe's detail"
    );
}
