//! Proves the shared containerd and CRI fixtures with runc, containerd's default runtime:
//! images built locally import and run, a CRI pod gets an IP on the test bridge, logs land in
//! the CRI format, exec (sync and streaming), attach and port-forward work, the web image
//! answers from the host, and removing a pod leaves nothing.
//!
//! These tests are the template of lightpod's own: the same calls with the runtime
//! `io.containerd.lightpod.v2` / handler `lightpod`. They need root and the private
//! containerd of `lightpod-e2e-fixture containerd-start` (the runner `e2e/run.sh` starts it).

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::time::Instant;

use lightpod_e2e::{
    containerd::{Containerd, TestNamespace, RUNC_RUNTIME},
    images, scenarios,
};
use lightpod_harness::{
    cri::{CriPod, PodSandboxConfigBuilder},
    image::{BUSYBOX_IMAGE, PAUSE_IMAGE, WEB_IMAGE},
};

/// The CRI runtime handler under test; `tests/cri.rs` runs the same scenarios with lightpod.
const HANDLER: &str = "runc";

#[test]
fn image_archives_are_deterministic_and_named() {
    let first = images().all();
    let names: Vec<&str> = first.iter().map(|i| i.name).collect();
    assert_eq!(names, [BUSYBOX_IMAGE, PAUSE_IMAGE, WEB_IMAGE]);
    for archive in first {
        let bytes = std::fs::read(&archive.path).unwrap();
        assert!(
            bytes.len() > 1_000_000,
            "{} holds busybox: {} bytes",
            archive.name,
            bytes.len()
        );
        assert!(
            archive
                .path
                .to_string_lossy()
                .contains(&archive.digest[7..23]),
            "the archive name carries the manifest digest: {}",
            archive.path.display()
        );
    }
}

#[test]
fn ctr_imports_and_runs_the_busybox_image_with_runc() {
    let ns = TestNamespace::new("ctr-run");
    let listed = ns.ctr_ok(&["images", "ls"]);
    let busybox = &images().busybox;
    assert!(
        listed.contains(BUSYBOX_IMAGE) && listed.contains(&busybox.digest),
        "busybox imported under its name and digest {}: {listed}",
        busybox.digest
    );

    let start = Instant::now();
    let out = ns.ctr(&[
        "run",
        "--runtime",
        RUNC_RUNTIME,
        "--rm",
        BUSYBOX_IMAGE,
        "hello",
        "echo",
        "hello",
    ]);
    eprintln!("ctr run --rm with runc: {:?}", start.elapsed());
    assert!(
        out.status.success(),
        "ctr run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");

    let id = ns.ctr(&[
        "run",
        "--runtime",
        RUNC_RUNTIME,
        "--rm",
        BUSYBOX_IMAGE,
        "id",
        "id",
        "-u",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&id.stdout),
        "0\n",
        "the image's /etc/passwd maps root"
    );
    let fail = ns.ctr(&[
        "run",
        "--runtime",
        RUNC_RUNTIME,
        "--rm",
        BUSYBOX_IMAGE,
        "fail",
        "sh",
        "-c",
        "exit 7",
    ]);
    assert_eq!(
        fail.status.code(),
        Some(7),
        "ctr run passes the exit code on"
    );

    assert!(ns.tasks().is_empty(), "tasks left: {:?}", ns.tasks());
    assert!(
        ns.containers().is_empty(),
        "containers left: {:?}",
        ns.containers()
    );
}

#[test]
fn cri_knows_the_imported_images() {
    let mut cri = Containerd::from_env().cri();
    let version = cri.version().unwrap();
    assert_eq!(version.runtime_name, "containerd");
    for name in [BUSYBOX_IMAGE, PAUSE_IMAGE, WEB_IMAGE] {
        let image = cri.image_status(name).unwrap();
        let image = image.unwrap_or_else(|| panic!("CRI does not know {name}"));
        assert!(
            image.repo_tags.iter().any(|t| t == name),
            "{name}: tags {:?}",
            image.repo_tags
        );
    }
    assert!(cri
        .image_status("docker.io/lightpod/absent:e2e")
        .unwrap()
        .is_none());
}

/// The host's first global IPv4 address (port mappings are reached through it).

#[test]
fn cri_pod_runs_logs_execs_and_leaves_nothing() {
    scenarios::pod_runs_logs_execs_and_leaves_nothing(HANDLER);
}

#[test]
fn cri_streaming_exec_attach_and_port_forward() {
    scenarios::streaming_exec_attach_and_port_forward(HANDLER);
}

#[test]
fn cri_web_image_answers_on_the_pod_ip_from_the_host() {
    scenarios::web_image_answers_on_the_pod_ip_from_the_host(HANDLER);
}

#[test]
fn cri_pod_config_port_mapping_dns_volumes_and_log_reopen() {
    scenarios::pod_config_port_mapping_dns_volumes_and_log_reopen(HANDLER);
}

#[test]
fn cri_reports_an_unknown_runtime_handler() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let err = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("bad"),
        "no-such-handler",
    )
    .err()
    .expect("RunPodSandbox with an unknown handler must fail");
    assert!(
        err.message().contains("no-such-handler"),
        "the error names the handler: {err:?}"
    );
}
