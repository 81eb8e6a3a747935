#![allow(clippy::unwrap_used)]

//! Real guests under QEMU (with whatever accelerator the probe picks), driven by a busybox
//! test init instead of the agent: boot on microvm and q35, the agent channel both ways,
//! virtio-fs including a bind mount added after boot, a tap and a block device, power-off.

mod common;

use std::{path::Path, time::Duration};

use anyhow::Result;
use common::{read_line, wait_exit};
use lightpod_vmm::{
    qemu::{MachineType, QemuHypervisor},
    Hypervisor, SharedDir, VmExit,
};
use tokio::io::{AsyncWriteExt, BufReader};

/// Boots the `share` test init on `machine` and checks everything the test init does.
async fn boot_share_and_power_off(machine: MachineType, name: &str) -> Result<()> {
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(name, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    if env.virtiofsd.is_none() {
        eprintln!("SKIP {name}: virtiofsd missing (cargo install virtiofsd)");
        return Ok(());
    }
    let root_user = nix::unistd::geteuid().is_root();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared)?;
    std::fs::write(shared.join("from-host.txt"), "hello-from-host")?;
    let late_src = tmp.path().join("late-src");
    std::fs::create_dir(&late_src)?;
    std::fs::write(late_src.join("marker.txt"), "mounted-after-boot")?;

    let hypervisor = QemuHypervisor::new(common::config(env, machine, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let mut spec = common::spec(env, name, state_dir.clone(), "share");
    spec.shared_dirs.push(SharedDir {
        tag: "lightpod".into(),
        host_path: shared.clone(),
        readonly: false,
    });

    let started = std::time::Instant::now();
    let vm = hypervisor.create(spec).await?;
    let pids = vm.host_pids();
    assert_eq!(pids.len(), 2, "QEMU and one virtiofsd");
    for file in [
        "qmp.sock",
        "agent.sock",
        "vfs-lightpod.sock",
        "console.log",
        "qemu.pid",
    ] {
        assert!(state_dir.join(file).exists(), "{file} in the state dir");
    }

    let (read, mut write) = tokio::io::split(vm.connect_agent().await?);
    let mut read = BufReader::new(read);
    write.write_all(b"ping\n").await?;
    assert_eq!(
        read_line(&mut read).await?,
        "echo:ping",
        "guest echoes over the agent port"
    );
    let answered = started.elapsed();
    assert_eq!(
        read_line(&mut read).await?,
        "host-file:hello-from-host",
        "guest reads the share"
    );
    assert_eq!(read_line(&mut read).await?, "written");
    let written = std::fs::read_to_string(shared.join("from-guest.txt"))?;
    assert_eq!(written.trim(), "guest-wrote", "guest writes reach the host");

    // A bind mount made after boot, as the sandbox does for each new container's rootfs.
    let late = shared.join("late");
    std::fs::create_dir(&late)?;
    let bind = if root_user {
        Some(common::BindMount::new(&late_src, &late)?)
    } else {
        eprintln!("{name}: not root, so the late bind mount is a plain copy (mount needs root)");
        std::fs::copy(late_src.join("marker.txt"), late.join("marker.txt"))?;
        None
    };
    write.write_all(b"mounted\n").await?;
    let late_line = read_line(&mut read).await;
    drop(bind);
    assert_eq!(
        late_line?, "late:mounted-after-boot",
        "a bind mount added after boot is visible"
    );

    let timings = vm.timings();
    eprintln!(
        "{name}: accelerator {:?}, vmm spawned {:?}, QMP ready {:?}, cont {:?}, test init answered {:?}, QEMU RSS {:?} KiB",
        timings.accelerator,
        timings.vmm_spawned,
        timings.vmm_ready,
        timings.guest_started,
        answered,
        common::rss_kib(pids[0]),
    );

    write.write_all(b"bye\n").await?;
    assert_eq!(
        wait_exit(vm.as_ref()).await?,
        VmExit::PoweredOff,
        "guest poweroff"
    );
    // virtiofsd exits by itself once QEMU is gone.
    let virtiofsd = i32::try_from(pids[1])?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::processes_mentioning(&state_dir).contains(&virtiofsd) {
        assert!(
            std::time::Instant::now() < deadline,
            "virtiofsd outlived QEMU"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(
        vm.stop(Duration::from_secs(1)).await?,
        VmExit::PoweredOff,
        "stop reports the exit"
    );
    assert_eq!(
        vm.stop(Duration::ZERO).await?,
        VmExit::PoweredOff,
        "stop is idempotent"
    );
    common::assert_nothing_left(&state_dir, &pids, name);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microvm_boots_shares_and_powers_off() -> Result<()> {
    boot_share_and_power_off(MachineType::Microvm, "microvm_boots_shares_and_powers_off").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn q35_boots_shares_and_powers_off() -> Result<()> {
    boot_share_and_power_off(MachineType::Q35, "q35_boots_shares_and_powers_off").await
}

/// A tap descriptor and a read-only raw disk reach the guest: the MAC is the spec's, the disk
/// is read-only and holds the file's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tap_and_block_devices_reach_the_guest() -> Result<()> {
    const NAME: &str = "tap_and_block_devices_reach_the_guest";
    common::init_logging();
    let tmp = tempfile::tempdir()?;
    let Some(env) = common::env(NAME, tmp.path()) else {
        return Ok(());
    };
    let env = &env;
    let tap_name = format!("lptest{}", std::process::id() % 100_000);
    let tap = match common::open_tap(&tap_name) {
        Ok(tap) => tap,
        Err(e) => {
            eprintln!("SKIP {NAME}: cannot create a tap device (needs root and /dev/net/tun): {e}");
            return Ok(());
        }
    };
    let disk = tmp.path().join("disk.raw");
    let mut bytes = b"lightpod-blk".to_vec();
    bytes.resize(1024 * 1024, 0);
    std::fs::write(&disk, bytes)?;

    let hypervisor = QemuHypervisor::new(common::config(env, MachineType::Microvm, tmp.path()))?;
    let state_dir = tmp.path().join("vm");
    let mut spec = common::spec(env, NAME, state_dir.clone(), "devices");
    spec.net_devices.push(lightpod_vmm::NetDevice {
        tap_name: tap_name.clone(),
        tap_fd: Some(tap),
        mac: "02:11:22:33:44:55".into(),
        mtu: 1400,
    });
    spec.block_devices.push(lightpod_vmm::BlockDevice {
        path: disk,
        readonly: true,
    });
    let vm = hypervisor.create(spec).await?;
    let pids = vm.host_pids();

    let (read, mut write) = tokio::io::split(vm.connect_agent().await?);
    let mut read = BufReader::new(read);
    write.write_all(b"ping\n").await?;
    assert_eq!(read_line(&mut read).await?, "echo:ping");
    assert_eq!(
        read_line(&mut read).await?,
        "mac:02:11:22:33:44:55",
        "guest NIC has the spec's MAC"
    );
    assert_eq!(
        read_line(&mut read).await?,
        "blk:1:lightpod-blk",
        "read-only disk with the file's bytes"
    );
    write.write_all(b"bye\n").await?;
    assert_eq!(wait_exit(vm.as_ref()).await?, VmExit::PoweredOff);
    vm.stop(Duration::ZERO).await?;
    common::assert_nothing_left(&state_dir, &pids, NAME);
    assert!(
        !Path::new("/sys/class/net").join(&tap_name).exists(),
        "the tap device goes with the last descriptor"
    );
    Ok(())
}
