#![allow(clippy::unwrap_used)]

use std::{cell::RefCell, collections::HashMap, process::Command};

use super::*;

/// A process table of made-up processes that records kills.
#[derive(Default)]
struct FakeProcesses {
    cmdlines: HashMap<i32, Vec<u8>>,
    killed: RefCell<Vec<i32>>,
}

impl ProcessTable for FakeProcesses {
    fn cmdline(&self, pid: i32) -> Option<Vec<u8>> {
        self.cmdlines.get(&pid).cloned()
    }

    fn kill(&self, pid: i32) -> nix::Result<()> {
        self.killed.borrow_mut().push(pid);
        Ok(())
    }

    fn alive(&self, pid: i32) -> bool {
        !self.killed.borrow().contains(&pid) && self.cmdlines.contains_key(&pid)
    }
}

fn cmdline(args: &[&str]) -> Vec<u8> {
    args.iter().flat_map(|a| a.bytes().chain([0])).collect()
}

#[test]
fn kills_only_processes_that_still_belong_to_the_vm() {
    let root = tempfile::tempdir().unwrap();
    let vm = root.path().join("vm");
    std::fs::create_dir(&vm).unwrap();
    let vm_str = vm.to_str().unwrap().to_string();
    std::fs::write(vm.join("qemu.pid"), "100\n").unwrap();
    std::fs::write(vm.join("vfs-lightpod.pid"), "200\n").unwrap();
    std::fs::write(vm.join("vfs-other.pid"), "300").unwrap();
    std::fs::write(vm.join("vfs-gone.pid"), "400").unwrap();
    std::fs::write(vm.join("garbage.pid"), "not a pid").unwrap();
    std::fs::write(vm.join("agent.sock"), "").unwrap();

    let mut fake = FakeProcesses::default();
    let qmp = format!("unix:{vm_str}/qmp.sock,server=on");
    fake.cmdlines
        .insert(100, cmdline(&["qemu-system-x86_64", "-qmp", &qmp]));
    let socket = format!("--socket-path={vm_str}/vfs-lightpod.sock");
    fake.cmdlines.insert(200, cmdline(&["virtiofsd", &socket]));
    // Pid 300 was reused by a process of another VM whose directory name extends ours.
    let other = format!("--socket-path={vm_str}2/vfs-x.sock");
    fake.cmdlines.insert(300, cmdline(&["virtiofsd", &other]));

    let report = cleanup_with(&vm, &fake).unwrap();
    let mut killed = report.killed.clone();
    killed.sort_unstable();
    assert_eq!(killed, [100, 200], "the VM's own processes are killed");
    let mut skipped = report.skipped.clone();
    skipped.sort_unstable();
    assert_eq!(skipped, [300, 400], "reused and exited pids are left alone");
    assert!(report.removed_dir && !vm.exists(), "state dir removed");

    let again = cleanup_with(&vm, &fake).unwrap();
    assert_eq!(
        again,
        CleanupReport::default(),
        "second cleanup finds nothing"
    );
}

#[test]
fn kills_a_real_process_named_in_a_pid_file() {
    let root = tempfile::tempdir().unwrap();
    let vm = root.path().join("vm");
    std::fs::create_dir(&vm).unwrap();
    // A stand-in for QEMU whose command line mentions the state dir, and that forks nothing
    // (a shell would exec or fork its command and hide or orphan it).
    let marker = vm.join("qmp.sock");
    std::fs::write(&marker, "").unwrap();
    let mut child = Command::new("tail").arg("-f").arg(&marker).spawn().unwrap();
    std::fs::write(vm.join("qemu.pid"), child.id().to_string()).unwrap();
    // An unrelated process, named in a pid file as if its pid had been reused.
    let mut bystander = Command::new("sleep").arg("600").spawn().unwrap();
    std::fs::write(vm.join("vfs-x.pid"), bystander.id().to_string()).unwrap();

    let report = cleanup_state_dir(&vm);
    // Whatever happened, leave no process behind before asserting.
    let bystander_ran = bystander.try_wait().map(|s| s.is_none());
    let _ = bystander.kill();
    let _ = bystander.wait();
    let _ = child.kill();
    let status = child.wait().unwrap();

    let report = report.unwrap();
    assert_eq!(
        report.killed,
        [i32::try_from(child.id()).unwrap()],
        "the stand-in is killed"
    );
    assert!(!status.success(), "killed by a signal");
    assert!(bystander_ran.unwrap(), "the bystander was left running");
    assert!(!vm.exists());
}
