//! containerd-shim-lightpod-v2 end to end: `ctr` against the private containerd with the
//! runtime `io.containerd.lightpod.v2`, each task in a real guest under QEMU.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use lightpod_e2e::shim::{pids_matching, stderr, stdout, EventRecorder, ShimTest};

#[test]
fn output_and_exit_codes_come_back_through_ctr() {
    let t = ShimTest::new("shim-exit");
    let out = t.run(
        &["--rm"],
        "out",
        &["sh", "-c", "echo to-out; echo to-err >&2; uname -r; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "stdout: {lines:?}");
    assert_eq!(lines[0], "to-out");
    assert_ne!(
        lines[1],
        host_release.trim(),
        "the guest runs its own kernel"
    );
    assert!(stderr(&out).contains("to-err"), "stderr: {}", stderr(&out));
    assert!(!stdout(&out).contains("to-err"), "stderr kept apart");

    let ok = t.run(&["--rm"], "ok", &["true"]);
    assert_eq!(ok.status.code(), Some(0), "stderr: {}", stderr(&ok));
    t.assert_clean();
}

#[test]
fn stdin_reaches_the_process_and_fast_output_is_complete() {
    let t = ShimTest::new("shim-stdio");
    let input: Vec<u8> = (0..20_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let out = t.run_with_stdin(&["--rm"], "in", &["sh", "-c", "wc -l"], Some(&input));
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "20000");

    // Written as fast as possible right before exiting: none of it may be lost.
    let out = t.run(&["--rm"], "burst", &["sh", "-c", "seq 1 200000"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 200_000);
    assert_eq!(text.lines().last(), Some("200000"));
    t.assert_clean();
}

#[test]
fn a_terminal_is_given_with_tty() {
    let t = ShimTest::new("shim-tty");
    // ctr -t needs a terminal of its own: script(1) gives it one.
    let ctr = format!(
        "ctr --address {} -n {} run --rm -t --runtime io.containerd.lightpod.v2 {} tty1 \
         sh -c 'tty; stty size'",
        t.ns.containerd.address().display(),
        t.ns.name,
        lightpod_harness::image::BUSYBOX_IMAGE
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .output()
        .expect("script");
    let text = stdout(&out);
    assert!(out.status.success(), "ctr -t: {text} {}", stderr(&out));
    assert!(text.contains("/dev/pts/"), "no terminal: {text:?}");
    t.assert_clean();
}

#[test]
fn exec_pause_resume_metrics_kill_and_events_in_order() {
    let t = ShimTest::new("shim-task");
    let events = EventRecorder::start(&t);
    t.run_detached(&[], "task", &["sleep", "1000"]);

    let exec = t.ns.ctr(&[
        "tasks",
        "exec",
        "--exec-id",
        "e1",
        "task",
        "sh",
        "-c",
        "echo from-exec; exit 5",
    ]);
    assert_eq!(exec.status.code(), Some(5), "exec: {}", stderr(&exec));
    assert_eq!(stdout(&exec), "from-exec\n");

    t.ns.ctr_ok(&["tasks", "pause", "task"]);
    t.wait_status("task", "PAUSED");
    t.ns.ctr_ok(&["tasks", "resume", "task"]);
    t.wait_status("task", "RUNNING");

    let metrics = t.ns.ctr_ok(&["tasks", "metrics", "task"]);
    let value = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0)
    };
    assert!(
        value("memory.usage ") > 0,
        "memory from the guest: {metrics}"
    );
    assert!(
        value("cpu.usage_usec ") > 0,
        "cpu from the guest: {metrics}"
    );
    assert_eq!(value("pids.current "), 1, "one process: {metrics}");
    let ps = t.ns.ctr_ok(&["tasks", "ps", "task"]);
    assert_eq!(ps.lines().count(), 2, "header and the sleep: {ps}");

    t.ns.ctr_ok(&["tasks", "kill", "--signal", "SIGTERM", "task"]);
    let exit = events.wait_for_init_exit("task");
    t.ns.ctr_ok(&["tasks", "delete", "task"]);
    events.wait_for("/tasks/delete", "task");

    let topics: Vec<String> = events.task_events().into_iter().map(|e| e.topic).collect();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exec-added",
            "/tasks/exec-started",
            "/tasks/exit",
            "/tasks/paused",
            "/tasks/resumed",
            "/tasks/exit",
            "/tasks/delete",
        ],
        "event order"
    );
    let init_exit = events
        .task_events()
        .into_iter()
        .filter(|e| e.topic == "/tasks/exit")
        .collect::<Vec<_>>();
    assert_eq!(init_exit[0].body["id"], "e1", "the exec exits first");
    assert_eq!(init_exit[0].body["exit_status"], 5);
    assert_eq!(
        exit.body["exit_status"],
        128 + 15,
        "SIGTERM: {:?}",
        exit.body
    );
    t.assert_clean();
}

#[test]
fn sigkill_ends_a_task_that_ignores_sigterm() {
    let t = ShimTest::new("shim-kill");
    let events = EventRecorder::start(&t);
    t.run_detached(
        &[],
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; touch /trapped; while :; do sleep 1; done",
        ],
    );
    // RUNNING comes before the shell ran its first line.
    t.wait_for_file("stubborn", "/trapped");
    t.ns.ctr_ok(&["tasks", "kill", "--signal", "SIGTERM", "stubborn"]);
    std::thread::sleep(Duration::from_secs(2));
    t.wait_status("stubborn", "RUNNING");
    t.ns.ctr_ok(&["tasks", "kill", "--signal", "SIGKILL", "--all", "stubborn"]);
    let exit = events.wait_for_init_exit("stubborn");
    assert_eq!(exit.body["exit_status"], 128 + 9, "{:?}", exit.body);
    t.assert_clean();
}

#[test]
fn two_containers_of_one_sandbox_share_one_vm() {
    let t = ShimTest::new("shim-pod");
    let sandbox = "pod-sandbox";
    t.run_detached(
        &[
            "--annotation",
            "io.kubernetes.cri.container-type=sandbox",
            "--annotation",
            &format!("io.kubernetes.cri.sandbox-id={sandbox}"),
        ],
        sandbox,
        &["sleep", "1000"],
    );
    let member = [
        "--annotation",
        "io.kubernetes.cri.container-type=container",
        "--annotation",
        "io.kubernetes.cri.sandbox-id=pod-sandbox",
    ];
    t.run_detached(
        &member,
        "app1",
        &["sh", "-c", "echo one > /mine; sleep 1000"],
    );
    t.run_detached(
        &member,
        "app2",
        &["sh", "-c", "echo two > /mine; sleep 1000"],
    );

    let read = |id: &str, what: &str| {
        let out = t.ns.ctr(&[
            "tasks",
            "exec",
            "--exec-id",
            &format!("r-{id}"),
            id,
            "cat",
            what,
        ]);
        assert!(out.status.success(), "exec in {id}: {}", stderr(&out));
        stdout(&out).trim().to_string()
    };
    let boot = "/proc/sys/kernel/random/boot_id";
    assert_eq!(read("app1", boot), read("app2", boot), "one guest kernel");
    assert_eq!(read("app1", boot), read(sandbox, boot), "the sandbox's VM");
    assert_eq!(read("app1", "/mine"), "one", "each has its own rootfs");
    assert_eq!(read("app2", "/mine"), "two", "each has its own rootfs");

    let tasks = t.ns.tasks();
    let shims = pids_matching(&["containerd-shim-lightpod-v2", &t.ns.name]);
    assert_eq!(shims.len(), 1, "one shim serves the pod: {shims:?}");
    let vmm: Vec<u32> = tasks.iter().map(|task| task.pid).collect();
    assert!(vmm.iter().all(|p| *p == vmm[0]), "one VMM pid: {tasks:?}");
    for id in ["app1", "app2"] {
        t.ns.ctr_ok(&["tasks", "kill", "--signal", "SIGKILL", id]);
    }
    t.assert_clean();
}

#[test]
fn writes_land_in_the_snapshot_and_read_only_is_honoured() {
    let t = ShimTest::new("shim-rootfs");
    let out = t.run(
        &[],
        "writer",
        &["sh", "-c", "echo from-guest > /written-by-guest"],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let snapshots =
        t.ns.containerd
            .root()
            .join("io.containerd.snapshotter.v1.overlayfs/snapshots");
    let found = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .map(|e| e.path().join("fs/written-by-guest"))
        .find(|p| p.exists())
        .expect("the file is in a snapshot's upper directory on the host");
    assert_eq!(std::fs::read_to_string(found).unwrap(), "from-guest\n");

    let ro = t.run(&["--rm", "--read-only"], "ro", &["sh", "-c", "touch /nope"]);
    assert_ne!(
        ro.status.code(),
        Some(0),
        "a read-only rootfs refused the write"
    );
    assert!(stderr(&ro).contains("Read-only"), "stderr: {}", stderr(&ro));
    t.assert_clean();
}

#[test]
fn bind_and_tmpfs_mounts_of_the_spec_appear() {
    let t = ShimTest::new("shim-mounts");
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("from-host"), "hello\n").unwrap();
    let bind = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        host.path().display()
    );
    let out = t.run(
        &[
            "--rm",
            "--mount",
            &bind,
            "--mount",
            "type=tmpfs,src=tmpfs,dst=/scratch,options=size=1m",
        ],
        "mounts",
        &[
            "sh",
            "-c",
            "cat /data/from-host; echo back > /data/from-guest; grep ' /scratch ' /proc/mounts",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).starts_with("hello\n"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("tmpfs /scratch tmpfs"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("from-guest")).unwrap(),
        "back\n"
    );
    t.assert_clean();
}

#[test]
fn an_oom_kill_in_the_guest_is_a_task_oom_event() {
    let t = ShimTest::new("shim-oom");
    let events = EventRecorder::start(&t);
    let out = t.run(
        &["--rm", "--memory-limit", "33554432"],
        "hog",
        &[
            "sh",
            "-c",
            "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived",
        ],
    );
    assert_ne!(
        out.status.code(),
        Some(0),
        "the hog was killed: {}",
        stdout(&out)
    );
    events.wait_for("/tasks/oom", "hog");
    t.assert_clean();
}

#[test]
fn nothing_is_left_after_the_shim_is_killed() {
    let t = ShimTest::new("shim-crash");
    t.run_detached(&[], "victim", &["sleep", "1000"]);
    let shims = pids_matching(&["containerd-shim-lightpod-v2", &t.ns.name, "-id victim"]);
    assert_eq!(shims.len(), 1, "{shims:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shims[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // containerd notices the dead shim and runs `containerd-shim-lightpod-v2 delete`.
    t.wait_stopped_or_gone("victim");
    t.assert_clean();
}

#[test]
fn a_task_whose_vm_dies_exits_with_a_clear_status() {
    let t = ShimTest::new("shim-vmdeath");
    let events = EventRecorder::start(&t);
    t.run_detached(&[], "orphan", &["sleep", "1000"]);
    let vmm = t.ns.tasks()[0].pid;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(vmm as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let exit = events.wait_for("/tasks/exit", "orphan");
    assert_eq!(exit.body["exit_status"], 255, "{:?}", exit.body);
    t.wait_status("orphan", "STOPPED");
    let log = std::fs::read_to_string(t.ns.containerd.log_file()).unwrap();
    assert!(
        log.contains("the pod's VM stopped under its tasks"),
        "the shim says why in containerd's log"
    );
    t.assert_clean();
}
