//! Bad input to lightpod pods through containerd's CRI plugin: each an error status that
//! names the problem, and no VM, state or network left behind.

#![allow(clippy::unwrap_used)]

use lightpod_e2e::{containerd::Containerd, lightpod_pod::assert_no_orphan_sandboxes};
use lightpod_harness::cri::{
    api::LinuxContainerResources, ContainerConfigBuilder, CriClient, CriPod,
    PodSandboxConfigBuilder,
};
use lightpod_harness::image::BUSYBOX_IMAGE;

const HANDLER: &str = "lightpod";

/// Runs a pod that must fail; returns the status message after checking nothing is left.
fn refused(
    cri: &mut CriClient,
    containerd: &Containerd,
    builder: PodSandboxConfigBuilder,
) -> String {
    let err = CriPod::run(cri, containerd.address(), builder, HANDLER)
        .err()
        .expect("RunPodSandbox must fail");
    assert_no_orphan_sandboxes(cri);
    err.message().to_string()
}

#[test]
fn a_pod_asking_more_memory_than_the_host_has() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let builder = PodSandboxConfigBuilder::new("too-big").resources(LinuxContainerResources {
        memory_limit_in_bytes: 64 << 40,
        ..Default::default()
    });
    let message = refused(&mut cri, &containerd, builder);
    assert!(
        message.contains("io.kubernetes.cri.sandbox-memory") && message.contains("MiB"),
        "the error says the pod asks too much memory: {message}"
    );
}

#[test]
fn a_pod_asking_more_cpus_than_the_host_has() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let builder =
        PodSandboxConfigBuilder::new("too-many-cpus").resources(LinuxContainerResources {
            cpu_period: 100_000,
            cpu_quota: 100_000 * 512,
            ..Default::default()
        });
    let message = refused(&mut cri, &containerd, builder);
    assert!(
        message.contains("512 CPUs"),
        "the error names the CPU count: {message}"
    );
}

#[test]
fn invalid_lightpod_annotations() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let cases = [
        ("lightpod.io/vcpus", "lots", "whole number"),
        ("lightpod.io/vcpus", "4096", "host's"),
        ("lightpod.io/memory-mib", "99999999", "host's"),
        ("lightpod.io/flavour", "x", "unknown lightpod annotation"),
    ];
    for (key, value, reason) in cases {
        let builder = PodSandboxConfigBuilder::new("bad-annotation").annotation(key, value);
        let message = refused(&mut cri, &containerd, builder);
        assert!(
            message.contains(key) && message.contains(reason),
            "{key}={value}: the error names the annotation and why: {message}"
        );
    }
}

#[test]
fn a_container_in_a_removed_sandbox() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("gone"),
        HANDLER,
    )
    .unwrap();
    let (id, config) = (pod.id.clone(), pod.config.clone());
    pod.remove(&mut cri).unwrap();
    let container = ContainerConfigBuilder::new("late", BUSYBOX_IMAGE).build();
    let err = cri
        .create_container(&id, &container, &config)
        .expect_err("CreateContainer in a removed pod must fail");
    assert_eq!(err.code(), lightpod_harness::cri::Code::NotFound, "{err:?}");
    assert!(
        err.message().contains(&id),
        "the error names the pod: {err:?}"
    );
    assert_no_orphan_sandboxes(&mut cri);
}
