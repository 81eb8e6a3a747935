//! `lightpod run` with bad input: each a clear error naming the problem, exit code 125 (or
//! 127 for a missing command, as shells and `docker run` use), and nothing left behind.

use lightpod_e2e::{
    leaks::assert_no_leaks,
    rootfs::busybox_copy,
    run::{stderr, TestEnv},
};

#[test]
fn a_rootfs_that_does_not_exist() {
    let env = TestEnv::new("");
    let missing = env.dir.path().join("no-such-rootfs");
    let out = env.run(&missing, &[], &["true"], b"");
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("no-such-rootfs"),
        "error does not name the rootfs: {err}"
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn a_missing_kernel() {
    let kernel = std::path::Path::new("/nonexistent/vmlinuz-lightpod-test");
    let env = TestEnv::with_kernel(Some(kernel), "");
    let rootfs = busybox_copy(env.dir.path()).expect("rootfs");
    let out = env.run(&rootfs, &[], &["true"], b"");
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/vmlinuz-lightpod-test"),
        "error does not name the kernel: {err}"
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn a_command_that_is_not_in_the_rootfs() {
    let env = TestEnv::new("");
    let rootfs = busybox_copy(env.dir.path()).expect("rootfs");
    let out = env.run(&rootfs, &[], &["no-such-command", "arg"], b"");
    assert_eq!(out.status.code(), Some(127), "stderr: {}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("no-such-command"),
        "error does not name the command: {err}"
    );
    assert_no_leaks(&env.state_dir);
}

#[test]
fn qemu_missing() {
    let env = TestEnv::new("binary = \"/nonexistent/qemu-system-x86_64\"\n");
    let rootfs = busybox_copy(env.dir.path()).expect("rootfs");
    let out = env.run(&rootfs, &[], &["true"], b"");
    assert_eq!(out.status.code(), Some(125));
    let err = stderr(&out);
    assert!(
        err.contains("/nonexistent/qemu-system-x86_64"),
        "error does not name QEMU: {err}"
    );
    assert!(
        err.contains("apt-get install qemu-system-x86"),
        "error gives no fix: {err}"
    );
    assert_no_leaks(&env.state_dir);
}
