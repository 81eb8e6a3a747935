//! The CRI scenarios every runtime must pass, run by the runc tests (`fixtures_smoke`) and
//! the lightpod tests (`cri`) alike: a pod gets an IP on the test bridge, logs land complete
//! in the CRI format, exec (sync and streaming), attach and port-forward work, the web image
//! answers from the host and through a host port, volumes, DNS and log rotation behave, and
//! removing the pod leaves nothing in containerd.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

use lightpod_harness::{
    cri::{
        api::{AttachRequest, ContainerState, ExecRequest},
        log::{self, LogStream},
        ContainerConfigBuilder, CriPod, PodSandboxConfigBuilder,
    },
    image::{BUSYBOX_IMAGE, WEB_IMAGE, WEB_PAGE, WEB_PORT},
};

use crate::{
    containerd::{Containerd, PodFootprint, CRI_NAMESPACE},
    stream::{self, CommandStatus, RemoteCommand, STDOUT},
};

/// Polls `check` every 100 ms until it returns `Some`, or fails the test after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /index.html` over HTTP/1.0 from `address`; the whole response.
pub fn http_get(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: e2e\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// A pod with one container under `handler`: its IP is on the bridge, its log lands complete
/// in the CRI format, ExecSync returns output and exit code, status, listing and stats answer,
/// and removing the pod leaves nothing in containerd or on the network.
pub fn pod_runs_logs_execs_and_leaves_nothing(handler: &str) {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();

    let start = Instant::now();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("smoke"),
        handler,
    )
    .expect("RunPodSandbox");
    eprintln!("RunPodSandbox ({handler}): {:?}", start.elapsed());

    let pod_ip = cri.pod_ip(&pod.id).unwrap();
    let prefix = containerd.subnet().rsplit_once('.').unwrap().0;
    assert!(
        pod_ip.starts_with(prefix),
        "pod IP {pod_ip} is not in {}",
        containerd.subnet()
    );

    let script = "echo to-stdout; echo to-stderr >&2; printf partial; sleep 0.2; echo ' done'; \
                  exec sleep 3600";
    let config = ContainerConfigBuilder::new("app", BUSYBOX_IMAGE)
        .command(&["sh", "-c", script])
        .env("GREETING", "hi")
        .build();
    let start = Instant::now();
    let app = pod
        .run_container(&mut cri, &config)
        .expect("CreateContainer + StartContainer");
    eprintln!(
        "CreateContainer + StartContainer ({handler}): {:?}",
        start.elapsed()
    );

    let status = cri.container_status(&app).unwrap();
    assert_eq!(
        status.state(),
        ContainerState::ContainerRunning,
        "status: {status:?}"
    );
    assert_eq!(status.log_path, pod.log_file(&config).display().to_string());

    let log_file = pod.log_file(&config);
    let lines = wait_for("the container's log", Duration::from_secs(20), || {
        let lines = log::read(&log_file).ok()?;
        (log::contents(&lines, LogStream::Stdout).len() >= 2).then_some(lines)
    });
    assert_eq!(
        log::contents(&lines, LogStream::Stdout),
        ["to-stdout", "partial done"]
    );
    assert_eq!(log::contents(&lines, LogStream::Stderr), ["to-stderr"]);

    let exec = cri
        .exec_sync(
            &app,
            &["sh", "-c", "echo $GREETING; echo oops >&2; exit 3"],
            10,
        )
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&exec.stdout), "hi\n");
    assert_eq!(String::from_utf8_lossy(&exec.stderr), "oops\n");
    assert_eq!(exec.exit_code, 3);

    let listed = cri.list_containers(Some(&pod.id)).unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [app.as_str()]
    );
    let stats = cri.container_stats(&app).unwrap();
    let memory = stats
        .memory
        .and_then(|m| m.working_set_bytes)
        .map(|v| v.value)
        .unwrap_or(0);
    assert!(
        memory > 0,
        "{handler} reports the container's memory: {memory}"
    );
    assert_eq!(cri.list_container_stats(Some(&pod.id)).unwrap().len(), 1);

    let footprint = PodFootprint::record(&mut cri, &containerd, &pod.id);
    assert_eq!(footprint.pod_ip, pod_ip);
    assert!(
        footprint.netns.as_ref().is_some_and(|n| n.exists()),
        "netns: {footprint:?}"
    );
    assert!(
        !footprint.host_interfaces.is_empty(),
        "a veth on the bridge: {footprint:?}"
    );

    cri.stop_container(&app, 2).unwrap();
    let stopped = cri.container_status(&app).unwrap();
    assert_eq!(
        stopped.state(),
        ContainerState::ContainerExited,
        "status: {stopped:?}"
    );
    pod.remove(&mut cri)
        .expect("StopPodSandbox + RemovePodSandbox");
    footprint.assert_gone(&containerd);
    assert!(cri
        .list_pod_sandboxes(Some(&footprint.pod_id))
        .unwrap()
        .is_empty());
}

/// Streaming calls under `handler` through containerd's streaming server: exec with and
/// without a terminal, attach to a running container's output, port-forward into the pod.
pub fn streaming_exec_attach_and_port_forward(handler: &str) {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("stream"),
        handler,
    )
    .expect("RunPodSandbox");
    let web = pod
        .run_container(
            &mut cri,
            &ContainerConfigBuilder::new("web", WEB_IMAGE).build(),
        )
        .unwrap();
    let ticker = ContainerConfigBuilder::new("ticker", BUSYBOX_IMAGE)
        .command(&["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
        .build();
    let ticker = pod.run_container(&mut cri, &ticker).unwrap();

    // Exec without a terminal: separate stdout and stderr, the exit code on the error channel.
    let url = cri
        .exec(ExecRequest {
            container_id: web.clone(),
            cmd: ["sh", "-c", "echo out; echo err >&2; exit 5"]
                .map(String::from)
                .to_vec(),
            stdout: true,
            stderr: true,
            ..Default::default()
        })
        .unwrap();
    let output = stream::run(&url, b"").unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&output.stderr), "err\n");
    assert_eq!(output.status, CommandStatus::ExitCode(5));

    // Exec with a terminal and stdin: an interactive shell.
    let url = cri
        .exec(ExecRequest {
            container_id: web.clone(),
            cmd: vec!["sh".into()],
            tty: true,
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .unwrap();
    let mut shell = RemoteCommand::connect(&url).unwrap();
    shell.resize(100, 30).unwrap();
    shell
        .write_stdin(b"stty size; echo $((6 * 7)); exit 0\n")
        .unwrap();
    let output = shell.finish().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("30 100"),
        "the terminal got its size: {text:?}"
    );
    assert!(text.contains("42"), "the shell ran the command: {text:?}");
    assert_eq!(output.status, CommandStatus::Success);

    // Attach to the running ticker's stdout.
    let url = cri
        .attach(AttachRequest {
            container_id: ticker.clone(),
            stdout: true,
            ..Default::default()
        })
        .unwrap();
    let mut attached = RemoteCommand::connect(&url).unwrap();
    attached.read_until(STDOUT, "tick\ntick").unwrap();
    drop(attached);

    // Port-forward into the pod's network namespace.
    let url = cri.port_forward(&pod.id, &[WEB_PORT.into()]).unwrap();
    let response =
        stream::port_forward(&url, WEB_PORT, b"GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "response: {response:?}"
    );
    assert!(response.ends_with(WEB_PAGE), "response: {response:?}");

    let footprint = PodFootprint::record(&mut cri, &containerd, &pod.id);
    assert_eq!(footprint.container_ids.len(), 2);
    pod.remove(&mut cri).unwrap();
    footprint.assert_gone(&containerd);
}

/// The web image under `handler` answers on the pod IP from the host, and its request log
/// lands in the CRI log.
pub fn web_image_answers_on_the_pod_ip_from_the_host(handler: &str) {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("web"),
        handler,
    )
    .expect("RunPodSandbox");
    let config = ContainerConfigBuilder::new("web", WEB_IMAGE).build();
    let web = pod.run_container(&mut cri, &config).unwrap();
    let pod_ip = cri.pod_ip(&pod.id).unwrap();

    let address = format!("{pod_ip}:{WEB_PORT}");
    let response = wait_for("the web server", Duration::from_secs(20), || {
        http_get(&address).ok()
    });
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "response: {response:?}"
    );
    assert!(response.ends_with(WEB_PAGE), "response: {response:?}");

    // httpd -v logs each response to stderr: it lands in the CRI log.
    let log_file = pod.log_file(&config);
    wait_for("httpd's request log", Duration::from_secs(10), || {
        let lines = log::read(&log_file).ok()?;
        log::contents(&lines, LogStream::Stderr)
            .iter()
            .any(|l| l.contains("response:200"))
            .then_some(())
    });

    let footprint = PodFootprint::record(&mut cri, &containerd, &pod.id);
    cri.stop_container(&web, 5).unwrap();
    pod.remove(&mut cri).unwrap();
    footprint.assert_gone(&containerd);
    assert!(
        containerd.tasks(CRI_NAMESPACE).iter().all(|t| t.id != web),
        "the web task is gone"
    );
}

/// Pod-level configuration under `handler`: a host port mapping (CNI portmap), DNS, hostname,
/// host-path volumes read-write and read-only, and log rotation with ReopenContainerLog.
pub fn pod_config_port_mapping_dns_volumes_and_log_reopen(handler: &str) {
    let containerd = Containerd::from_env();
    let mut cri = containerd.cri();
    let host_port = 18080 + (std::process::id() % 1000) as u16;
    let builder = PodSandboxConfigBuilder::new("config")
        .port_mapping(WEB_PORT, host_port)
        .dns(&["10.250.0.53"], &["e2e.svc.local"]);
    let pod = CriPod::run(&mut cri, containerd.address(), builder, handler).expect("RunPodSandbox");
    let volume = tempfile::tempdir().unwrap();
    std::fs::write(volume.path().join("seed"), "from the host\n").unwrap();
    let config = ContainerConfigBuilder::new("web", WEB_IMAGE)
        .mount(volume.path(), "/data", false)
        .mount(volume.path(), "/ro", true)
        .build();
    let web = pod.run_container(&mut cri, &config).unwrap();

    // hostPath-style volumes: the host's file is there, writes land on the host, and the
    // read-only mount refuses them.
    let write = cri.exec_sync(
        &web,
        &["sh", "-c", "cat /data/seed && echo out > /data/written"],
        10,
    );
    let write = write.unwrap();
    assert_eq!(
        (
            write.exit_code,
            String::from_utf8_lossy(&write.stdout).as_ref()
        ),
        (0, "from the host\n")
    );
    assert_eq!(
        std::fs::read_to_string(volume.path().join("written")).unwrap(),
        "out\n"
    );
    let refused = cri.exec_sync(&web, &["touch", "/ro/nope"], 10).unwrap();
    assert_ne!(refused.exit_code, 0, "a read-only mount takes no writes");
    assert!(!volume.path().join("nope").exists());

    let resolv = cri
        .exec_sync(&web, &["cat", "/etc/resolv.conf"], 10)
        .unwrap();
    let resolv = String::from_utf8_lossy(&resolv.stdout);
    assert!(
        resolv.contains("nameserver 10.250.0.53"),
        "resolv.conf: {resolv}"
    );
    assert!(
        resolv.contains("search e2e.svc.local"),
        "resolv.conf: {resolv}"
    );
    let hostname = cri.exec_sync(&web, &["hostname"], 10).unwrap();
    assert_eq!(String::from_utf8_lossy(&hostname.stdout), "config\n");

    // CNI's portmap plugin: the host port reaches the pod's web server.
    let address = format!("{}:{host_port}", host_address());
    let response = wait_for("the mapped host port", Duration::from_secs(20), || {
        http_get(&address).ok()
    });
    assert!(
        response.ends_with(WEB_PAGE),
        "response through {address}: {response:?}"
    );

    // Log rotation as kubelet does it: move the file away, ask the runtime to reopen it.
    let log_file = pod.log_file(&config);
    wait_for(
        "the first response in the log",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log_file)
                .ok()
                .filter(|t| t.contains("response:200"))
                .map(drop)
        },
    );
    let rotated = log_file.with_extension("log.1");
    std::fs::rename(&log_file, &rotated).unwrap();
    cri.reopen_container_log(&web).expect("ReopenContainerLog");
    assert!(
        log_file.exists(),
        "ReopenContainerLog creates a fresh {}",
        log_file.display()
    );
    http_get(&format!("{}:{WEB_PORT}", cri.pod_ip(&pod.id).unwrap())).unwrap();
    wait_for(
        "a response logged to the new file",
        Duration::from_secs(10),
        || {
            let lines = log::read(&log_file).ok()?;
            (!log::contents(&lines, LogStream::Stderr).is_empty()).then_some(())
        },
    );

    let footprint = PodFootprint::record(&mut cri, &containerd, &pod.id);
    pod.remove(&mut cri).unwrap();
    footprint.assert_gone(&containerd);
    let nat = std::process::Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .unwrap();
    let nat = String::from_utf8_lossy(&nat.stdout);
    assert!(
        !nat.contains(&format!("--dport {host_port}")),
        "portmap rule left: {nat}"
    );
}

fn host_address() -> String {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = text.split_whitespace().skip_while(|f| *f != "inet").nth(1);
    field
        .and_then(|cidr| cidr.split('/').next())
        .expect("a global IPv4 address")
        .to_string()
}
