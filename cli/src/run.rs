//! `lightpod run`: one process from a root filesystem directory, in a VM of its own.

use std::{path::PathBuf, process::ExitCode, sync::Arc};

use anyhow::{bail, Context};
use lightpod_sandbox::{
    backend, stdio, stdio::OutputStream, Config, ContainerSpec, Sandbox, SandboxSpec,
};
use lightpod_vmm::BackendKind;
use oci_spec::runtime::Spec;
use tokio::signal::unix::{signal, SignalKind};

use crate::terminal::RawTerminal;

/// Arguments of `lightpod run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Root filesystem directory of the container.
    #[arg(long)]
    rootfs: PathBuf,
    /// Give the process a terminal (and put this terminal in raw mode).
    #[arg(short, long)]
    tty: bool,
    /// Environment variable KEY=VALUE (repeatable). PATH defaults to the usual one.
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long, default_value = "/")]
    cwd: String,
    /// User id to run as.
    #[arg(long, default_value_t = 0)]
    uid: u32,
    /// Group id to run as.
    #[arg(long, default_value_t = 0)]
    gid: u32,
    /// Mount the root filesystem read-only.
    #[arg(long)]
    read_only: bool,
    /// vCPUs of the VM (default from the configuration).
    #[arg(long)]
    vcpus: Option<u32>,
    /// Memory of the VM in MiB (default from the configuration).
    #[arg(long)]
    memory_mib: Option<u32>,
    /// Print where the time went (VMM start, kernel boot, agent ready, process) to stderr.
    #[arg(long)]
    timings: bool,
    /// Hypervisor backend: qemu or xen (default from the configuration, runtime.backend).
    #[arg(long, value_parser = parse_backend)]
    backend: Option<BackendKind>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

/// The command is not in the root filesystem: `lightpod run` exits with 127, as a shell and
/// `docker run` do, so a caller can tell it from a failure of the runtime (125).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct CommandNotFound(lightpod_sandbox::SandboxError);

/// Runs the command and returns its exit code (128 + signal when a signal killed it).
pub async fn run(config_path: Option<&std::path::Path>, args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(config_path)?;
    if let Some(kind) = args.backend {
        config.runtime.backend = kind;
    }
    let started = std::time::Instant::now();
    let rootfs = std::fs::canonicalize(&args.rootfs)
        .with_context(|| format!("root filesystem {}", args.rootfs.display()))?;
    if !rootfs.is_dir() {
        bail!("root filesystem {} is not a directory", rootfs.display());
    }

    let mut vm = config.vm.clone();
    vm.vcpus = args.vcpus.unwrap_or(vm.vcpus);
    vm.memory_mib = args.memory_mib.unwrap_or(vm.memory_mib);
    let vm = vm.with_annotations(&Default::default())?;

    let container = {
        let spec = oci_spec(&args)?;
        let mut container = ContainerSpec::from_oci("main", &spec, Some(rootfs))?;
        container.process.stdin = true;
        container
    };

    let hypervisor = backend::hypervisor(&config)?;
    let id = format!(
        "run-{}-{}",
        std::process::id(),
        started.elapsed().subsec_nanos()
    );
    let sandbox = Arc::new(
        Sandbox::start(
            &config,
            hypervisor.as_ref(),
            SandboxSpec {
                id,
                vm,
                network_namespace: None,
            },
        )
        .await?,
    );
    let result = run_in(&sandbox, &container, &args).await;
    let stopped = sandbox.stop().await;
    let (code, process_done) = result?;
    if let Err(e) = stopped {
        tracing::warn!(error = %lightpod_sandbox::chain(&e), "stop the VM");
    }
    if args.timings {
        print_timings(&sandbox, process_done, started.elapsed());
        eprintln!("  backend                  {}", config.runtime.backend);
    }
    Ok(ExitCode::from(code))
}

async fn run_in(
    sandbox: &Arc<Sandbox>,
    container: &ContainerSpec,
    args: &RunArgs,
) -> anyhow::Result<(u8, std::time::Duration)> {
    let t0 = std::time::Instant::now();
    sandbox.create_container(container).await?;
    let raw = if args.tty { RawTerminal::enter() } else { None };
    if args.tty {
        if let Some((cols, rows)) = crate::terminal::size() {
            let _ = resize(sandbox, cols, rows).await;
        }
    }
    if let Err(e) = sandbox.start_process(&container.id, "", None).await {
        // The agent answers NotFound only when the executable is missing from the rootfs.
        if e.kind() == lightpod_sandbox::ErrorKind::NotFound {
            return Err(CommandNotFound(e).into());
        }
        return Err(e.into());
    }

    let out = spawn_output(sandbox.clone(), &container.id, OutputStream::Stdout);
    let err =
        (!args.tty).then(|| spawn_output(sandbox.clone(), &container.id, OutputStream::Stderr));
    let input = {
        let sandbox = sandbox.clone();
        let id = container.id.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            stdio::copy_stdin(sandbox.agent(), &id, "", &mut stdin).await
        })
    };
    let signals = forward_signals(sandbox.clone(), container.id.clone(), args.tty);

    let exit = sandbox.wait(&container.id, "").await;
    let process_done = t0.elapsed();
    // Output is complete once both streams reached EOF; the agent closes them after exit.
    let _ = out.await;
    if let Some(err) = err {
        let _ = err.await;
    }
    input.abort();
    signals.abort();
    drop(raw);
    let exit = exit?;
    Ok(((exit.code & 0xff) as u8, process_done))
}

/// `--backend`'s value.
fn parse_backend(name: &str) -> Result<BackendKind, String> {
    match name {
        "qemu" => Ok(BackendKind::Qemu),
        "xen" => Ok(BackendKind::Xen),
        other => Err(format!("unknown backend {other:?} (expected qemu or xen)")),
    }
}

fn spawn_output(
    sandbox: Arc<Sandbox>,
    id: &str,
    stream: OutputStream,
) -> tokio::task::JoinHandle<Result<u64, lightpod_sandbox::SandboxError>> {
    let id = id.to_string();
    tokio::spawn(async move {
        match stream {
            OutputStream::Stdout => {
                let mut out = tokio::io::stdout();
                stdio::copy_output(sandbox.agent(), &id, "", stream, &mut out).await
            }
            OutputStream::Stderr => {
                let mut err = tokio::io::stderr();
                stdio::copy_output(sandbox.agent(), &id, "", stream, &mut err).await
            }
        }
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP to the process (as `runc run` does without a terminal;
/// with a terminal, ^C travels as a byte) and SIGWINCH as a terminal resize.
fn forward_signals(sandbox: Arc<Sandbox>, id: String, tty: bool) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut winch)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::window_change()),
        ) else {
            return;
        };
        loop {
            let sig = tokio::select! {
                _ = int.recv() => libc::SIGINT,
                _ = term.recv() => libc::SIGTERM,
                _ = hup.recv() => libc::SIGHUP,
                _ = winch.recv() => {
                    if tty {
                        if let Some((cols, rows)) = crate::terminal::size() {
                            let _ = resize(&sandbox, cols, rows).await;
                        }
                    }
                    continue;
                }
            };
            let _ = sandbox.signal(&id, "", sig as u32, false).await;
        }
    })
}

async fn resize(
    sandbox: &Sandbox,
    cols: u16,
    rows: u16,
) -> Result<(), lightpod_sandbox::SandboxError> {
    let mut req = lightpod_proto::agent::ResizeTerminalRequest::new();
    req.container_id = "main".into();
    req.width = u32::from(cols);
    req.height = u32::from(rows);
    sandbox.agent().resize_terminal(&req).await.map(|_| ())
}

/// The OCI spec of a `lightpod run` container: the mounts `runc spec` would write.
fn oci_spec(args: &RunArgs) -> anyhow::Result<Spec> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("TERM={}", if args.tty { "xterm" } else { "dumb" }),
        "HOME=/root".to_string(),
    ];
    for var in &args.env {
        let Some((key, _)) = var.split_once('=') else {
            bail!("--env {var:?}: expected KEY=VALUE");
        };
        env.retain(|e| !e.starts_with(&format!("{key}=")));
        env.push(var.clone());
    }
    let spec = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": args.read_only},
        "hostname": "lightpod",
        "process": {
            "terminal": args.tty,
            "args": args.command,
            "env": env,
            "cwd": args.cwd,
            "user": {"uid": args.uid, "gid": args.gid},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1048576u64, "soft": 1048576u64}],
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
    });
    serde_json::from_value(spec).context("build the OCI spec")
}

fn print_timings(sandbox: &Sandbox, process: std::time::Duration, total: std::time::Duration) {
    let t = sandbox.timings();
    let ms =
        |d: Option<std::time::Duration>| d.map_or("-".to_string(), |d| d.as_millis().to_string());
    eprintln!("lightpod timings (ms, host clock from start of the VM creation unless noted):");
    eprintln!("  guest image ready        {}", t.image_ready.as_millis());
    eprintln!("  VMM spawned              {}", ms(t.vm.vmm_spawned));
    eprintln!("  VMM control ready        {}", ms(t.vm.vmm_ready));
    eprintln!("  guest started            {}", ms(t.vm.guest_started));
    eprintln!(
        "  agent start (guest up)   {}",
        t.guest_agent_start.as_millis()
    );
    eprintln!(
        "  agent ready (guest up)   {}",
        t.guest_agent_ready.as_millis()
    );
    eprintln!("  agent answered           {}", t.agent_ready.as_millis());
    eprintln!("  sandbox ready            {}", t.total.as_millis());
    eprintln!("  container create → exit  {}", process.as_millis());
    eprintln!("  total incl. VM stop      {}", total.as_millis());
    if let Some(accel) = t.vm.accelerator {
        eprintln!("  accelerator              {accel}");
    }
}
