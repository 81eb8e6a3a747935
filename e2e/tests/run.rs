//! `lightpod run` end to end: a real guest kernel under QEMU (KVM or TCG, as the probe
//! decides), the static agent as PID 1, a busybox root filesystem shared with virtio-fs.

use lightpod_e2e::{
    leaks::assert_no_leaks,
    rootfs::busybox_copy,
    run::{stderr, stdout, TestEnv},
};
use sha2::{Digest, Sha256};

fn env_with_rootfs() -> (TestEnv, std::path::PathBuf) {
    let env = TestEnv::new("");
    let rootfs = busybox_copy(env.dir.path()).expect("busybox rootfs");
    (env, rootfs)
}

#[test]
fn stdout_and_stderr_are_separate_and_complete() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(
        &rootfs,
        &[],
        &["sh", "-c", "echo to-out; echo to-err >&2; echo more-out"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "to-out\nmore-out\n");
    assert!(
        stderr(&out).ends_with("to-err\n"),
        "stderr: {:?}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("to-err"));
    assert_no_leaks(&env.state_dir);
}

#[test]
fn exit_codes_come_back() {
    let (env, rootfs) = env_with_rootfs();
    let ok = env.run(&rootfs, &[], &["true"], b"");
    assert_eq!(ok.status.code(), Some(0), "true: {}", stderr(&ok));
    let fail = env.run(&rootfs, &[], &["sh", "-c", "exit 42"], b"");
    assert_eq!(fail.status.code(), Some(42), "exit 42: {}", stderr(&fail));
    assert_no_leaks(&env.state_dir);
}

#[test]
fn a_process_killed_by_a_signal_reports_128_plus_the_signal() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(&rootfs, &[], &["sh", "-c", "kill -KILL $$"], b"");
    assert_eq!(out.status.code(), Some(128 + 9), "stderr: {}", stderr(&out));
    let out = env.run(&rootfs, &[], &["sh", "-c", "kill -TERM $$"], b"");
    assert_eq!(
        out.status.code(),
        Some(128 + 15),
        "stderr: {}",
        stderr(&out)
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn env_cwd_and_user_are_applied() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(
        &rootfs,
        &[
            "--env",
            "GREETING=hello world",
            "--cwd",
            "/tmp",
            "--uid",
            "65534",
            "--gid",
            "65534",
        ],
        &["sh", "-c", "echo \"$GREETING\"; pwd; id -u; id -g"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out), "hello world\n/tmp\n65534\n65534\n");
    assert_no_leaks(&env.state_dir);
}

#[test]
fn five_mib_of_output_arrive_intact() {
    let (env, rootfs) = env_with_rootfs();
    // Non-repeating content, so a lost or duplicated chunk changes the digest.
    let out = env.run(
        &rootfs,
        &[],
        &["sh", "-c", "seq 1 1000000 | head -c 5242880"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(out.stdout.len(), 5 * 1024 * 1024);
    let mut expected = String::new();
    for i in 1..=1_000_000 {
        expected.push_str(&format!("{i}\n"));
        if expected.len() >= 5 * 1024 * 1024 {
            break;
        }
    }
    expected.truncate(5 * 1024 * 1024);
    assert_eq!(
        Sha256::digest(&out.stdout),
        Sha256::digest(expected.as_bytes()),
        "output differs from `seq` (lost, reordered or duplicated data)"
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn stdin_is_piped_through() {
    let (env, rootfs) = env_with_rootfs();
    let input: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let out = env.run(&rootfs, &[], &["sh", "-c", "wc -l; echo done"], &input);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out).split_whitespace().collect::<Vec<_>>(),
        vec!["200000", "done"]
    );
    let out = env.run(&rootfs, &[], &["tr", "a-z", "A-Z"], b"piped through\n");
    assert_eq!(stdout(&out), "PIPED THROUGH\n");
    assert_no_leaks(&env.state_dir);
}

#[test]
fn the_guest_runs_its_own_kernel() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(&rootfs, &[], &["uname", "-r"], b"");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let host = nix::sys::utsname::uname().expect("uname");
    let guest = stdout(&out);
    assert!(!guest.trim().is_empty(), "no output from uname");
    assert_ne!(
        guest.trim(),
        host.release().to_string_lossy(),
        "guest kernel is the host's"
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn tty_mode_gives_the_process_a_terminal() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(
        &rootfs,
        &["--tty"],
        &["sh", "-c", "test -t 0 && test -t 1 && echo is-a-tty"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains("is-a-tty"),
        "stdout: {:?}",
        stdout(&out)
    );
    let plain = env.run(
        &rootfs,
        &[],
        &["sh", "-c", "test -t 1 || echo not-a-tty"],
        b"",
    );
    assert_eq!(stdout(&plain), "not-a-tty\n");
    assert_no_leaks(&env.state_dir);
}

#[test]
fn writes_land_in_the_host_rootfs() {
    let (env, rootfs) = env_with_rootfs();
    let out = env.run(
        &rootfs,
        &[],
        &["sh", "-c", "echo from-guest > /root/marker"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let marker = std::fs::read_to_string(rootfs.join("root/marker")).expect("marker on host");
    assert_eq!(marker, "from-guest\n");
    let ro = env.run(
        &rootfs,
        &["--read-only"],
        &["sh", "-c", "echo x > /root/other"],
        b"",
    );
    assert_ne!(
        ro.status.code(),
        Some(0),
        "write to a read-only rootfs succeeded"
    );
    assert!(!rootfs.join("root/other").exists());
    assert_no_leaks(&env.state_dir);
}
