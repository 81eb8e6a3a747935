//! `lightpod demo`: a Kubernetes pod in a VM, end to end, on a fresh machine.
//!
//! It starts a private containerd (its own root, state, socket and CNI bridge; never the
//! system one) with lightpod as the runtime handler `lightpod`, imports a demo web image
//! built from Debian's busybox-static, runs a two-container pod through containerd's CRI
//! plugin as kubelet would, queries the pod's web server from the host, prints what happened
//! and how long each step took, and removes everything again, also when interrupted.

mod report;

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use lightpod_harness::{
    containerd::{ContainerdOptions, PrivateContainerd},
    cri::{ContainerConfigBuilder, CriClient, CriPod, PodSandboxConfigBuilder},
    image::{Images, BUSYBOX_IMAGE, WEB_IMAGE, WEB_PORT},
};

use self::report::{Report, Step};

/// Options of `lightpod demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Directory of the private containerd (removed afterwards).
    #[arg(long, default_value = "/run/lightpod-demo")]
    dir: PathBuf,
    /// Where the demo images are built and cached.
    #[arg(long, default_value = "/var/lib/lightpod/demo")]
    cache: PathBuf,
    /// The CNI bridge of the demo's pod network.
    #[arg(long, default_value = "lpdemo0")]
    bridge: String,
    /// The demo's pod subnet.
    #[arg(long, default_value = "10.250.77.0/24")]
    subnet: String,
    /// Directory holding `containerd-shim-lightpod-v2` (default: beside this binary).
    #[arg(long)]
    shim_dir: Option<PathBuf>,
}

/// Runs the demo; returns when everything it started is gone again.
///
/// # Errors
///
/// A step failed; the message names it. What was started is removed first.
pub fn demo(config: Option<&Path>, args: DemoArgs) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the demo starts containerd and VMs and makes mounts: run it as root (sudo lightpod demo)");
    }
    // containerd starts the shim from its own working directory: paths given to it must be
    // absolute.
    let shim_dir = match args.shim_dir.clone() {
        Some(dir) => {
            std::path::absolute(&dir).with_context(|| format!("--shim-dir {}", dir.display()))?
        }
        None => beside_this_binary()?,
    };
    if !shim_dir.join("containerd-shim-lightpod-v2").exists() {
        bail!(
            "containerd-shim-lightpod-v2 is not in {}: install lightpod (sudo deploy/install.sh) \
             or pass --shim-dir",
            shim_dir.display()
        );
    }
    // containerd passes its environment on to the shims it starts.
    if let Some(config) = config {
        let config = config.canonicalize().with_context(|| {
            format!(
                "the configuration file {} (given with --config)",
                config.display()
            )
        })?;
        std::env::set_var(lightpod_sandbox::config::CONFIG_ENV, config);
    }
    let interrupted = watch_interrupts()?;
    let mut report = Report::new();
    println!("lightpod demo: a two-container pod in a VM, through containerd's CRI plugin");

    let started = Instant::now();
    let images = Images::build(&args.cache).context("build the demo images")?;
    report.step(Step::new("demo images ready", started).detail(args.cache.display()));

    let mut options = ContainerdOptions::new(&args.dir);
    options.shim_dir = Some(shim_dir);
    options.bridge = args.bridge.clone();
    options.subnet = args
        .subnet
        .parse()
        .with_context(|| format!("--subnet {}", args.subnet))?;
    options.images = images.all().into_iter().cloned().collect();
    let started = Instant::now();
    let containerd = PrivateContainerd::start(&options).context("start the private containerd")?;
    report.step(Step::new("private containerd running", started).detail(args.dir.display()));

    let outcome = run_pod(&containerd, &interrupted, &mut report);
    let started = Instant::now();
    let stopped = containerd.stop().context("stop the private containerd");
    report.step(Step::new(
        "cleaned up: pod removed, containerd stopped",
        started,
    ));
    let facts = outcome?;
    stopped?;
    report.print(&facts);
    Ok(())
}

/// What the demo learned about its pod.
#[derive(Debug, Default)]
pub struct PodFacts {
    pod_ip: String,
    guest_kernel: String,
    host_kernel: String,
    status_line: String,
    page: String,
    sidecar_saw: String,
    vm_phases: Vec<(String, String)>,
}

fn run_pod(
    containerd: &PrivateContainerd,
    interrupted: &AtomicBool,
    report: &mut Report,
) -> anyhow::Result<PodFacts> {
    let mut cri = containerd
        .cri()
        .context("connect to containerd's CRI socket")?;
    let check = || {
        if interrupted.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        Ok(())
    };

    let started = Instant::now();
    let pod = CriPod::run(
        &mut cri,
        containerd.address(),
        PodSandboxConfigBuilder::new("demo").hostname("lightpod-demo"),
        "lightpod",
    )
    .map_err(|s| anyhow::anyhow!("RunPodSandbox: {}", s.message()))?;
    let mut facts = PodFacts {
        pod_ip: cri.pod_ip(&pod.id).unwrap_or_default(),
        ..PodFacts::default()
    };
    report.step(Step::new("pod sandbox running: its VM booted", started).detail(&facts.pod_ip));
    check()?;

    let started = Instant::now();
    let web = ContainerConfigBuilder::new("web", WEB_IMAGE).build();
    let web = pod
        .run_container(&mut cri, &web)
        .map_err(|s| anyhow::anyhow!("start the web container: {}", s.message()))?;
    // The sidecar reaches the web server over the pod's own loopback, as containers of a
    // pod do.
    let fetch = format!(
        "until printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc 127.0.0.1 {WEB_PORT} \
         > /tmp/page; do sleep 0.2; done; tail -n 1 /tmp/page; exec sleep 3600"
    );
    let sidecar = ContainerConfigBuilder::new("sidecar", BUSYBOX_IMAGE)
        .command(&["sh", "-c", &fetch])
        .build();
    let sidecar_log = pod.log_file(&sidecar);
    pod.run_container(&mut cri, &sidecar)
        .map_err(|s| anyhow::anyhow!("start the sidecar container: {}", s.message()))?;
    report.step(Step::new("containers web and sidecar started", started));
    check()?;

    let started = Instant::now();
    let response = get_page(&facts.pod_ip, interrupted)?;
    facts.status_line = response.lines().next().unwrap_or_default().to_string();
    facts.page = response.lines().last().unwrap_or_default().to_string();
    report.step(
        Step::new("web server answered the host on the pod IP", started).detail(&facts.status_line),
    );

    facts.guest_kernel = exec_line(&mut cri, &web, &["uname", "-r"])?;
    facts.host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    facts.sidecar_saw = wait_for_log_line(&sidecar_log, interrupted)?;
    facts.vm_phases = report::vm_phases(&containerd.log_file(), &pod.id);

    pod.remove(&mut cri)
        .map_err(|s| anyhow::anyhow!("remove the pod: {}", s.message()))?;
    Ok(facts)
}

fn exec_line(cri: &mut CriClient, id: &str, command: &[&str]) -> anyhow::Result<String> {
    let out = cri
        .exec_sync(id, command, 30)
        .map_err(|s| anyhow::anyhow!("exec {command:?}: {}", s.message()))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `GET /index.html` from the pod's web server, retried while it starts (up to 60 s).
fn get_page(pod_ip: &str, interrupted: &AtomicBool) -> anyhow::Result<String> {
    let address = format!("{pod_ip}:{WEB_PORT}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http_get(&address) {
            Ok(response) if response.starts_with("HTTP/") => return Ok(response),
            Ok(_) | Err(_) if Instant::now() < deadline && !interrupted.load(Ordering::SeqCst) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Ok(response) => bail!("{address} answered {response:?}"),
            Err(e) => return Err(e).with_context(|| format!("GET http://{address}/index.html")),
        }
    }
}

fn http_get(address: &str) -> std::io::Result<String> {
    let address = address
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: demo\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The first line the sidecar logged (up to 60 s).
fn wait_for_log_line(log: &Path, interrupted: &AtomicBool) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(lines) = lightpod_harness::cri::log::read(log) {
            if let Some(line) = lines.first() {
                return Ok(line.content.clone());
            }
        }
        if Instant::now() >= deadline || interrupted.load(Ordering::SeqCst) {
            bail!("the sidecar logged nothing to {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The directory of the running `lightpod` binary.
fn beside_this_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("find the lightpod binary")?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// A flag set when SIGINT or SIGTERM arrives; the demo checks it between steps and then
/// cleans up instead of dying with its pod and containerd still running.
fn watch_interrupts() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the signal watcher")?;
    std::thread::Builder::new()
        .name("demo-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                }
                eprintln!("lightpod demo: interrupted; cleaning up");
                set.store(true, Ordering::SeqCst);
            });
        })
        .context("start the signal watcher")?;
    Ok(flag)
}
