//! Kubernetes pods on lightpod through containerd's CRI plugin, driven as kubelet drives it:
//! RuntimeClass handler `lightpod`, each pod one VM under QEMU, real CNI networking.
//!
//! The calls every runtime must answer (pod IP, logs, exec, attach, port-forward, stats,
//! volumes, log rotation) run as the same scenarios as the runc tests of `fixtures_smoke`;
//! the rest is what is particular to a pod in a VM.

#![allow(clippy::print_stderr, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use lightpod_e2e::{
    containerd::{Containerd, PodFootprint},
    lightpod_pod::{assert_pod_gone, vmm_pid},
    scenarios::{self, http_get, wait_for},
};
use lightpod_harness::{
    cri::{
        api::ContainerState,
        log::{self, LogStream},
        ContainerConfigBuilder, CriClient, CriPod, PodSandboxConfigBuilder,
    },
    image::{BUSYBOX_IMAGE, WEB_IMAGE, WEB_PAGE, WEB_PORT},
};

const HANDLER: &str = "lightpod";

fn run_pod(cri: &mut CriClient, containerd: &Containerd, name: &str) -> CriPod {
    CriPod::run(
        cri,
        containerd.address(),
        PodSandboxConfigBuilder::new(name),
        HANDLER,
    )
    .expect("RunPodSandbox")
}

fn sleeper(name: &str) -> lightpod_harness::cri::api::ContainerConfig {
    ContainerConfigBuilder::new(name, BUSYBOX_IMAGE)
        .command(&["sleep", "3600"])
        .build()
}

fn exec_text(cri: &mut CriClient, id: &str, command: &[&str]) -> String {
    let out = cri.exec_sync(id, command, 20).expect("ExecSync");
    assert_eq!(
        out.exit_code,
        0,
        "{command:?} in {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes the pod and checks that nothing of it is left, in containerd or of its VM.
fn remove_and_check(cri: &mut CriClient, containerd: &Containerd, pod: CriPod) {
    let footprint = PodFootprint::record(cri, containerd, &pod.id);
    let id = pod.id.clone();
    pod.remove(cri).expect("StopPodSandbox + RemovePodSandbox");
    footprint.assert_gone(containerd);
    assert_pod_gone(&id);
}

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
fn two_containers_share_the_pod_vm_each_with_its_own_rootfs() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("twins").hostname("twins-host"),
        HANDLER,
    )
    .expect("RunPodSandbox");
    let first = pod.run_container(&mut cri, &sleeper("first")).unwrap();
    let second = pod.run_container(&mut cri, &sleeper("second")).unwrap();
    exec_text(&mut cri, &first, &["sh", "-c", "echo one > /mine"]);
    exec_text(&mut cri, &second, &["sh", "-c", "echo two > /mine"]);

    let boot = "/proc/sys/kernel/random/boot_id";
    assert_eq!(
        exec_text(&mut cri, &first, &["cat", boot]),
        exec_text(&mut cri, &second, &["cat", boot]),
        "both containers run on one guest kernel"
    );
    let host_release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_ne!(
        exec_text(&mut cri, &first, &["uname", "-r"]),
        host_release.trim(),
        "the pod has a kernel of its own"
    );
    assert_eq!(exec_text(&mut cri, &first, &["cat", "/mine"]), "one");
    assert_eq!(exec_text(&mut cri, &second, &["cat", "/mine"]), "two");
    for id in [&first, &second] {
        assert_eq!(
            exec_text(&mut cri, id, &["hostname"]),
            "twins-host",
            "the pod's hostname in {id}"
        );
    }
    let listed = cri.list_containers(Some(&pod.id)).unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    for id in [&first, &second] {
        let status = cri.container_status(id).unwrap();
        assert_eq!(
            status.state(),
            ContainerState::ContainerRunning,
            "{status:?}"
        );
    }
    remove_and_check(&mut cri, &containerd, pod);
}

#[test]
fn container_stats_are_the_guest_figures() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = run_pod(&mut cri, &containerd, "stats");
    let busy = ContainerConfigBuilder::new("busy", BUSYBOX_IMAGE)
        .command(&[
            "sh",
            "-c",
            "x=$(head -c 8000000 /dev/zero | tr '\\0' a); while :; do :; done",
        ])
        .build();
    let busy = pod.run_container(&mut cri, &busy).unwrap();
    let idle = pod.run_container(&mut cri, &sleeper("idle")).unwrap();

    let cpu = |cri: &mut CriClient| {
        cri.container_stats(&busy)
            .unwrap()
            .cpu
            .and_then(|c| c.usage_core_nano_seconds)
            .map_or(0, |v| v.value)
    };
    let first = cpu(&mut cri);
    std::thread::sleep(Duration::from_secs(2));
    let second = cpu(&mut cri);
    assert!(
        second > first + 200_000_000,
        "a busy loop uses CPU in the guest: {first} then {second} ns"
    );
    // The shell fills its 8 MB string before the loop starts; under emulation, with other
    // guests booting beside it, that can take a while.
    let working_set = wait_for(
        "the busy container's working set to show the shell's 8 MB",
        Duration::from_secs(60),
        || {
            let bytes = cri
                .container_stats(&busy)
                .unwrap()
                .memory
                .and_then(|m| m.working_set_bytes)
                .map_or(0, |v| v.value);
            (bytes > 8_000_000).then_some(bytes)
        },
    );
    eprintln!("busy container: working set {working_set} bytes");
    let all = cri.list_container_stats(Some(&pod.id)).unwrap();
    let ids: Vec<&str> = all
        .iter()
        .filter_map(|s| s.attributes.as_ref().map(|a| a.id.as_str()))
        .collect();
    assert!(
        ids.contains(&busy.as_str()) && ids.contains(&idle.as_str()),
        "{ids:?}"
    );
    remove_and_check(&mut cri, &containerd, pod);
}

#[test]
fn logs_are_complete_and_exec_sync_reports_codes_and_timeouts() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = run_pod(&mut cri, &containerd, "logs");
    let config = ContainerConfigBuilder::new("burst", BUSYBOX_IMAGE)
        .command(&["sh", "-c", "seq 1 20000; echo done >&2; exec sleep 3600"])
        .build();
    let burst = pod.run_container(&mut cri, &config).unwrap();
    let log_file = pod.log_file(&config);
    let lines = wait_for(
        "20000 lines in the CRI log",
        Duration::from_secs(60),
        || {
            let lines = log::read(&log_file).ok()?;
            let complete = log::contents(&lines, LogStream::Stdout).len() >= 20000
                && !log::contents(&lines, LogStream::Stderr).is_empty();
            complete.then_some(lines)
        },
    );
    let stdout = log::contents(&lines, LogStream::Stdout);
    assert_eq!(stdout.len(), 20000);
    assert!(
        stdout
            .iter()
            .enumerate()
            .all(|(i, l)| *l == (i + 1).to_string()),
        "every line once, in order"
    );
    assert_eq!(log::contents(&lines, LogStream::Stderr), ["done"]);

    let out = cri
        .exec_sync(&burst, &["sh", "-c", "echo out; echo err >&2; exit 4"], 10)
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_slice(), out.stderr.as_slice()),
        (4, &b"out\n"[..], &b"err\n"[..])
    );
    let started = Instant::now();
    let timed_out = cri.exec_sync(&burst, &["sleep", "30"], 2);
    let err = timed_out.expect_err("ExecSync past its timeout fails");
    assert!(err.message().contains("timeout"), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    wait_for(
        "the timed-out exec to be killed",
        Duration::from_secs(20),
        || {
            let ps = exec_text(&mut cri, &burst, &["ps", "-o", "args"]);
            (!ps.contains("sleep 30")).then_some(())
        },
    );
    remove_and_check(&mut cri, &containerd, pod);
}

#[test]
fn stop_container_sends_sigterm_then_sigkill_after_the_grace_period() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = run_pod(&mut cri, &containerd, "stop");
    let polite = pod.run_container(&mut cri, &sleeper("polite")).unwrap();
    let stubborn = ContainerConfigBuilder::new("stubborn", BUSYBOX_IMAGE)
        .command(&[
            "sh",
            "-c",
            "trap '' TERM; touch /trapped; while :; do sleep 1; done",
        ])
        .build();
    let stubborn = pod.run_container(&mut cri, &stubborn).unwrap();
    wait_for("the trap to be set", Duration::from_secs(30), || {
        let out = cri
            .exec_sync(&stubborn, &["test", "-e", "/trapped"], 10)
            .ok()?;
        (out.exit_code == 0).then_some(())
    });

    let started = Instant::now();
    cri.stop_container(&polite, 30).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "SIGTERM ends sleep at once: {:?}",
        started.elapsed()
    );
    let status = cri.container_status(&polite).unwrap();
    assert_eq!(status.state(), ContainerState::ContainerExited);
    assert_eq!(status.exit_code, 128 + 15, "{status:?}");

    let started = Instant::now();
    cri.stop_container(&stubborn, 3).unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "the grace period is honoured: {took:?}"
    );
    let status = cri.container_status(&stubborn).unwrap();
    assert_eq!(status.state(), ContainerState::ContainerExited);
    assert_eq!(
        status.exit_code,
        128 + 9,
        "SIGKILL after the grace period: {status:?}"
    );
    remove_and_check(&mut cri, &containerd, pod);
}

#[test]
fn pods_reach_each_other_and_runc_pods() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let web = run_pod(&mut cri, &containerd, "net-web");
    pod_web(&mut cri, &web);
    let client = run_pod(&mut cri, &containerd, "net-client");
    let client_box = client.run_container(&mut cri, &sleeper("client")).unwrap();
    let runc_web = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("net-runc-web"),
        "runc",
    )
    .unwrap();
    pod_web(&mut cri, &runc_web);
    let runc_client = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("net-runc-client"),
        "runc",
    )
    .unwrap();
    let runc_box = runc_client
        .run_container(&mut cri, &sleeper("client"))
        .unwrap();

    let web_ip = cri.pod_ip(&web.id).unwrap();
    let runc_ip = cri.pod_ip(&runc_web.id).unwrap();
    // busybox's wget crashes in these images (static glibc's resolver); nc speaks HTTP/1.0.
    let fetch = |cri: &mut CriClient, from: &str, ip: &str| {
        let request =
            format!("printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {ip} {WEB_PORT}");
        wait_for(
            &format!("{ip} from {from}"),
            Duration::from_secs(30),
            || {
                let out = cri.exec_sync(from, &["sh", "-c", &request], 15).ok()?;
                let response = String::from_utf8_lossy(&out.stdout).into_owned();
                (out.exit_code == 0 && response.starts_with("HTTP/1.")).then_some(response)
            },
        )
    };
    for (from, ip, what) in [
        (&client_box, &web_ip, "lightpod to lightpod"),
        (&client_box, &runc_ip, "lightpod to runc"),
        (&runc_box, &web_ip, "runc to lightpod"),
    ] {
        let response = fetch(&mut cri, from, ip);
        assert!(response.ends_with(WEB_PAGE), "{what}: {response:?}");
    }
    let from_host = http_get(&format!("{web_ip}:{WEB_PORT}")).unwrap();
    assert!(
        from_host.ends_with(WEB_PAGE),
        "host to lightpod: {from_host:?}"
    );

    // The guest owns the pod's address, MTU and routes as CNI gave them.
    let address = exec_text(
        &mut cri,
        &client_box,
        &["ip", "-4", "-o", "addr", "show", "eth0"],
    );
    let client_ip = cri.pod_ip(&client.id).unwrap();
    assert!(address.contains(&format!("inet {client_ip}/")), "{address}");
    let mtu = exec_text(&mut cri, &client_box, &["cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(mtu, "1500", "the veth's MTU");
    let routes = exec_text(&mut cri, &client_box, &["ip", "route"]);
    let gateway = format!(
        "default via {}.1",
        containerd.subnet().rsplit_once('.').unwrap().0
    );
    assert!(routes.contains(&gateway), "routes: {routes}");

    for pod in [web, client] {
        remove_and_check(&mut cri, &containerd, pod);
    }
    runc_web.remove(&mut cri).unwrap();
    runc_client.remove(&mut cri).unwrap();
}

fn pod_web(cri: &mut CriClient, pod: &CriPod) -> String {
    pod.run_container(cri, &ContainerConfigBuilder::new("web", WEB_IMAGE).build())
        .unwrap()
}

#[test]
fn volumes_and_the_pod_files_containerd_prepares() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("files")
            .hostname("files-host")
            .dns(&["10.250.0.10"], &["svc.cluster.local"]),
        HANDLER,
    )
    .unwrap();
    // HostToContainer needs a host mount with shared propagation, as kubelet's pod
    // directories are on a node; this host's / is private.
    let host_path = SharedMount::new();
    let empty_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_path.path().join("config"), "from the host\n").unwrap();
    let config = ContainerConfigBuilder::new("app", BUSYBOX_IMAGE)
        .command(&["sleep", "3600"])
        .mount(host_path.path(), "/config", true)
        .mount(empty_dir.path(), "/scratch", false)
        .mount_with_propagation(
            host_path.path(),
            "/watched",
            true,
            lightpod_harness::cri::api::MountPropagation::PropagationHostToContainer,
        )
        .build();
    let app = pod.run_container(&mut cri, &config).unwrap();

    assert_eq!(
        exec_text(&mut cri, &app, &["cat", "/config/config"]),
        "from the host"
    );
    let refused = cri.exec_sync(&app, &["touch", "/config/nope"], 10).unwrap();
    assert_ne!(refused.exit_code, 0, "a read-only volume takes no writes");
    exec_text(
        &mut cri,
        &app,
        &["sh", "-c", "echo from the guest > /scratch/out"],
    );
    assert_eq!(
        std::fs::read_to_string(empty_dir.path().join("out")).unwrap(),
        "from the guest\n",
        "what the container writes into a volume is on the host"
    );
    // A mount made on the host under the volume after the container started reaches it.
    let late = host_path.path().join("late");
    std::fs::create_dir(&late).unwrap();
    mount_tmpfs(&late);
    std::fs::write(late.join("news"), "mounted later\n").unwrap();
    wait_for(
        "the host's new mount in the container",
        Duration::from_secs(30),
        || {
            let out = cri
                .exec_sync(&app, &["cat", "/watched/late/news"], 10)
                .ok()?;
            (out.exit_code == 0 && out.stdout == b"mounted later\n").then_some(())
        },
    );

    // The pod files are the ones containerd wrote for the sandbox.
    let sandbox = containerd
        .root()
        .join("io.containerd.grpc.v1.cri/sandboxes")
        .join(&pod.id);
    for (file, path) in [
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
    ] {
        let expected = std::fs::read_to_string(sandbox.join(file)).unwrap();
        assert_eq!(
            exec_text(&mut cri, &app, &["cat", path]),
            expected.trim(),
            "{path} is containerd's {file}"
        );
    }
    assert!(
        exec_text(&mut cri, &app, &["cat", "/etc/resolv.conf"]).contains("nameserver 10.250.0.10")
    );
    remove_and_check(&mut cri, &containerd, pod);
}

/// A tmpfs mounted on a fresh temporary directory with shared propagation, unmounted (with
/// everything below it) when dropped.
struct SharedMount(tempfile::TempDir);

impl SharedMount {
    fn new() -> SharedMount {
        let dir = tempfile::tempdir().unwrap();
        mount_tmpfs(dir.path());
        nix::mount::mount(
            None::<&str>,
            dir.path(),
            None::<&str>,
            nix::mount::MsFlags::MS_SHARED,
            None::<&str>,
        )
        .unwrap();
        SharedMount(dir)
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for SharedMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0.path(), nix::mount::MntFlags::MNT_DETACH);
    }
}

fn mount_tmpfs(path: &std::path::Path) {
    nix::mount::mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=4m"),
    )
    .unwrap();
}

#[test]
fn a_pod_whose_vm_dies_reports_its_containers_exited() {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = run_pod(&mut cri, &containerd, "vmdeath");
    let config = sleeper("victim");
    let victim = pod.run_container(&mut cri, &config).unwrap();
    let vmm = vmm_pid(&pod.id).expect("the pod's QEMU runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(vmm),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();

    let status = wait_for("the container to exit", Duration::from_secs(60), || {
        let status = cri.container_status(&victim).ok()?;
        (status.state() == ContainerState::ContainerExited).then_some(status)
    });
    assert_eq!(status.exit_code, 255, "{status:?}");
    let log_file = pod.log_file(&config);
    let lines = wait_for("the notice in the log", Duration::from_secs(20), || {
        let lines = log::read(&log_file).ok()?;
        let stderr: Vec<String> = log::contents(&lines, LogStream::Stderr)
            .into_iter()
            .map(str::to_string)
            .collect();
        (!stderr.is_empty()).then_some(stderr)
    });
    assert!(
        lines
            .iter()
            .any(|l| l.contains("VM of pod") && l.contains("stopped")),
        "the log says why: {lines:?}"
    );
    remove_and_check(&mut cri, &containerd, pod);
}
