#![allow(clippy::unwrap_used)]

//! The lifecycle of real guests under QEMU, driven by the busybox test init: stop and kill,
//! guest panic, a dropped handle, the boot probe's runner, failed creates, and cleanup after
//! an abandoned VM; each checks that nothing is left behind.

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{wait_exit, WAIT_LIMIT};
use lightpod_vmm::{
    qemu::{MachineType, QemuHypervisor},
    Hypervisor, SharedDir, VmExit,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_a_guest_that_does_not_power_off() -> Result<()> {
    const NAME: &str = "stop_kills_a_guest_that_does_not_power_off";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let vm = hypervisor
        .create(common::spec(env, NAME, state_dir.clone(), "hang"))
        .await?;
    let pids = vm.host_pids();

    // Let the guest reach its init, then measure an idle guest.
    let console = state_dir.join("console.log");
    let deadline = std::time::Instant::now() + WAIT_LIMIT;
    while !std::fs::read_to_string(&console)
        .unwrap_or_default()
        .contains("test-init: mode=hang")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "guest never reached init"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{NAME}: idle guest (256 MiB), QEMU RSS {:?} KiB",
        common::rss_kib(pids[0])
    );
    vm.pause().await?;
    vm.resume().await?;

    let waiter = {
        let exit = vm.wait();
        tokio::time::timeout(WAIT_LIMIT, exit)
    };
    let (stopped, waited) = tokio::join!(vm.stop(Duration::from_millis(500)), waiter);
    assert_eq!(
        stopped?,
        VmExit::Killed,
        "stop after the grace period kills"
    );
    assert_eq!(
        waited?,
        VmExit::Killed,
        "a concurrent waiter sees the same exit"
    );
    common::assert_nothing_left(&state_dir, &pids, NAME);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_panic_is_a_crash() -> Result<()> {
    const NAME: &str = "guest_panic_is_a_crash";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let vm = hypervisor
        .create(common::spec(env, NAME, state_dir.clone(), "panic"))
        .await?;
    let pids = vm.host_pids();
    match wait_exit(vm.as_ref()).await? {
        VmExit::Crashed(reason) => {
            assert!(
                reason.contains("Kernel panic"),
                "reason carries the console: {reason}"
            )
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    vm.stop(Duration::ZERO).await?;
    common::assert_nothing_left(&state_dir, &pids, NAME);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_vm_is_killed_and_removed() -> Result<()> {
    const NAME: &str = "dropped_vm_is_killed_and_removed";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let vm = hypervisor
        .create(common::spec(env, NAME, state_dir.clone(), "hang"))
        .await?;
    let pids = vm.host_pids();
    drop(vm);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !common::processes_mentioning(&state_dir).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "QEMU outlived its dropped handle"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    common::assert_nothing_left(&state_dir, &pids, NAME);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_probe_runner_sees_a_power_off() -> Result<()> {
    const NAME: &str = "boot_probe_runner_sees_a_power_off";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    // The KVM probe's machinery, run under TCG: the test init powers off on lightpod.probe=1
    // as the agent does.
    let verdict = hypervisor
        .run_boot_probe(&env.kernel, &env.initrd, lightpod_vmm::Accelerator::Tcg)
        .await;
    assert!(verdict.kvm_works, "probe guest powered off: {verdict:?}");
    let probe_dir = tmp.path().join("probe");
    let left: Vec<_> = std::fs::read_dir(&probe_dir)?
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "probe VM state removed: {left:?}");
    assert!(
        common::processes_mentioning(&probe_dir).is_empty(),
        "probe QEMU gone"
    );
    Ok(())
}

/// Failed creates, each of which must leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_creates_leave_nothing() -> Result<()> {
    const NAME: &str = "failed_creates_leave_nothing";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let config = common::config(env, MachineType::Microvm, tmp.path());

    let missing = lightpod_vmm::qemu::QemuConfig {
        binary: "/nonexistent/qemu".into(),
        ..config.clone()
    };
    match QemuHypervisor::new(missing) {
        Err(lightpod_vmm::VmError::VmmMissing { hint, .. }) => {
            assert!(
                hint.contains("apt-get install qemu-system-x86"),
                "hint: {hint}"
            )
        }
        other => panic!("missing QEMU: expected VmmMissing, got {other:?}"),
    }

    let hypervisor = QemuHypervisor::new(config.clone())?;
    let state_dir = tmp.path().join("no-kernel");
    let mut spec = common::spec(env, "no-kernel", state_dir.clone(), "echo");
    spec.kernel = tmp.path().join("no-such-vmlinuz");
    match hypervisor.create(spec).await {
        Err(lightpod_vmm::VmError::GuestFile { what: "kernel", .. }) => {}
        Err(other) => panic!("missing kernel: expected GuestFile, got {other:?}"),
        Ok(_) => panic!("missing kernel: create succeeded"),
    }
    common::assert_nothing_left(&state_dir, &[], "missing kernel");

    // A kernel QEMU cannot load: QEMU and virtiofsd have started and must be unwound.
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared)?;
    let bogus = tmp.path().join("vmlinuz-bogus");
    std::fs::write(&bogus, vec![0x5au8; 64 * 1024])?;
    let state_dir = tmp.path().join("bogus-kernel");
    let mut spec = common::spec(env, "bogus-kernel", state_dir.clone(), "echo");
    spec.kernel = bogus;
    if env.virtiofsd.is_some() {
        spec.shared_dirs.push(SharedDir {
            tag: "lightpod".into(),
            host_path: shared,
            readonly: true,
        });
    }
    match hypervisor.create(spec).await {
        Err(lightpod_vmm::VmError::VmmExited { status, log }) => {
            eprintln!("bogus kernel: QEMU {status}: {log}");
        }
        Err(other) => panic!("bogus kernel: expected VmmExited, got {other:?}"),
        Ok(vm) => {
            let exit = wait_exit(vm.as_ref()).await;
            vm.stop(Duration::ZERO).await?;
            panic!("bogus kernel: create succeeded, guest ended {exit:?}");
        }
    }
    common::assert_nothing_left(&state_dir, &[], "bogus kernel");

    // A "QEMU" that exits at once.
    let false_qemu = lightpod_vmm::qemu::QemuConfig {
        binary: "/bin/false".into(),
        ..config
    };
    let hypervisor = QemuHypervisor::new(false_qemu)?;
    let state_dir = tmp.path().join("false-qemu");
    match hypervisor
        .create(common::spec(env, "false-qemu", state_dir.clone(), "echo"))
        .await
    {
        Err(lightpod_vmm::VmError::VmmExited { .. }) => {}
        Err(other) => panic!("failing QEMU: expected VmmExited, got {other:?}"),
        Ok(_) => panic!("failing QEMU: create succeeded"),
    }
    common::assert_nothing_left(&state_dir, &[], "failing QEMU");

    // A state dir that already exists is refused and left alone.
    let existing = tmp.path().join("existing");
    std::fs::create_dir(&existing)?;
    std::fs::write(existing.join("keep"), "")?;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let result = hypervisor
        .create(common::spec(env, "existing", existing.clone(), "echo"))
        .await;
    assert!(
        matches!(result, Err(lightpod_vmm::VmError::InvalidSpec(_))),
        "existing dir refused"
    );
    assert!(
        existing.join("keep").exists(),
        "an existing dir is not removed"
    );
    Ok(())
}

/// What a new owner does after the previous one crashed: the pid files in the state dir lead
/// to the VM's processes, which are killed, and the directory goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleanup_state_dir_ends_an_abandoned_vm() -> Result<()> {
    const NAME: &str = "cleanup_state_dir_ends_an_abandoned_vm";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let mut spec = common::spec(env, NAME, state_dir.clone(), "hang");
    if env.virtiofsd.is_some() {
        let shared = tmp.path().join("shared");
        std::fs::create_dir(&shared)?;
        spec.shared_dirs.push(SharedDir {
            tag: "lightpod".into(),
            host_path: shared,
            readonly: false,
        });
    }
    let vm = hypervisor.create(spec).await?;
    let pids = vm.host_pids();

    let report = lightpod_vmm::qemu::cleanup_state_dir(&state_dir)?;
    let mut killed: Vec<u32> = report
        .killed
        .iter()
        .map(|&p| u32::try_from(p).unwrap())
        .collect();
    killed.sort_unstable();
    let mut expected = pids.clone();
    expected.sort_unstable();
    assert_eq!(
        killed, expected,
        "every process of the VM is found through its pid file"
    );
    assert!(report.skipped.is_empty(), "nothing skipped: {report:?}");
    match wait_exit(vm.as_ref()).await? {
        VmExit::Crashed(reason) => assert!(reason.contains("signal 9"), "{reason}"),
        other => panic!("a VM killed from outside is a crash, got {other:?}"),
    }
    vm.stop(Duration::ZERO).await?;
    common::assert_nothing_left(&state_dir, &pids, NAME);
    Ok(())
}
