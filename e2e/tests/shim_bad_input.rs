//! Bad input through containerd and the lightpod shim: each a clear error in `ctr`'s
//! output, and nothing left behind (no VM, mount, state or shim).

#![allow(clippy::unwrap_used)]

use lightpod_e2e::shim::{stderr, ShimTest};

/// Runs a task that must fail; returns ctr's stderr after checking that it failed and
/// that nothing of the task is left.
fn fails(t: &ShimTest, flags: &[&str], id: &str, command: &[&str]) -> String {
    let mut all = vec!["--rm"];
    all.extend_from_slice(flags);
    let out = t.run(&all, id, command);
    assert!(!out.status.success(), "{id} should fail");
    let err = stderr(&out);
    t.assert_clean();
    err
}

#[test]
fn a_binary_missing_from_the_image() {
    let t = ShimTest::new("bad-binary");
    let err = fails(&t, &[], "nobin", &["/no/such/binary", "arg"]);
    assert!(
        err.contains("/no/such/binary") && err.contains("not found"),
        "error names the binary: {err}"
    );
}

#[test]
fn a_bind_mount_of_a_missing_host_path() {
    let t = ShimTest::new("bad-mount");
    let err = fails(
        &t,
        &[
            "--mount",
            "type=bind,src=/nonexistent-lightpod-src,dst=/x,options=rbind",
        ],
        "nomount",
        &["true"],
    );
    assert!(
        err.contains("/nonexistent-lightpod-src") && err.contains("does not exist"),
        "error names the source: {err}"
    );
}

#[test]
fn an_invalid_or_unknown_lightpod_annotation() {
    let t = ShimTest::new("bad-annotation");
    let err = fails(
        &t,
        &["--annotation", "lightpod.io/vcpus=lots"],
        "vcpus",
        &["true"],
    );
    assert!(
        err.contains("lightpod.io/vcpus") && err.contains("lots"),
        "error names the annotation and value: {err}"
    );
    let err = fails(
        &t,
        &["--annotation", "lightpod.io/flavour=x"],
        "unknown",
        &["true"],
    );
    assert!(
        err.contains("lightpod.io/flavour") && err.contains("unknown"),
        "error names the unknown annotation: {err}"
    );
    let err = fails(
        &t,
        &["--annotation", "lightpod.io/memory-mib=99999999"],
        "huge",
        &["true"],
    );
    assert!(
        err.contains("memory"),
        "error says memory is too large: {err}"
    );
}

#[test]
fn a_container_naming_a_sandbox_that_is_not_running() {
    let t = ShimTest::new("bad-sandbox");
    let err = fails(
        &t,
        &[
            "--annotation",
            "io.kubernetes.cri.container-type=container",
            "--annotation",
            "io.kubernetes.cri.sandbox-id=no-such-pod",
        ],
        "stray",
        &["true"],
    );
    assert!(
        err.contains("no-such-pod"),
        "error names the sandbox: {err}"
    );
}
