//! Starting an instance: checks, host state recorded, configuration rendered, containerd
//! spawned and awaited, plugins checked, images imported. A start that fails after its checks
//! undoes what it did before it returns.

use std::{
    fs::OpenOptions,
    io,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use super::{
    config::{Rendering, CNI_CONFLIST, CONFIG_FILE},
    ctr::{Ctr, CtrError},
    network,
    options::{ContainerdOptions, OptionsError, Subnet, SOCKET},
    preflight,
    state::InstanceState,
    stop::{self, DirAfter},
    CRI_NAMESPACE, LOG_FILE,
};

/// The system part of containerd's PATH, after the shim directory.
const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Host directories containerd and CNI create when they are missing.
const SHARED_DIRS: [&str; 2] = ["/run/containerd", "/var/run/netns"];
/// How long containerd may take to answer on its socket.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(50);
/// The gRPC plugins the instance is useless without: a plugin that fails to load only warns
/// in containerd's log.
const REQUIRED_PLUGINS: [&str; 2] = ["tasks", "cri"];
const GRPC_PLUGIN: &str = "io.containerd.grpc.v1";
/// Lines of containerd's log shown when it fails.
const LOG_TAIL: usize = 20;

/// Why a private containerd could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An option cannot work.
    #[error("invalid options")]
    Options(#[from] OptionsError),
    /// Not root.
    #[error("must run as root (containerd, mounts, network namespaces)")]
    NotRoot,
    /// A program the instance runs is not in PATH.
    #[error("{tool} not found (apt-get install {package})")]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// A CNI plugin the network list uses is missing.
    #[error("{} missing (apt-get install containernetworking-plugins)", path.display())]
    CniPluginMissing {
        /// The plugin binary.
        path: PathBuf,
    },
    /// A containerd of an earlier start in the same directory still runs.
    #[error("a containerd already runs for {} (pid {pid}); stop it first", dir.display())]
    AlreadyRunning {
        /// The instance directory.
        dir: PathBuf,
        /// Its pid.
        pid: u32,
    },
    /// The directory holds what an earlier instance left.
    #[error("{} holds an earlier instance; stop it first", dir.display())]
    EarlierInstance {
        /// The instance directory.
        dir: PathBuf,
    },
    /// The directory holds files of something else: they would be removed with the instance.
    #[error("{} is not empty; give a new or empty directory", dir.display())]
    DirNotEmpty {
        /// The instance directory.
        dir: PathBuf,
    },
    /// The bridge exists already.
    #[error("bridge {bridge} exists (left by an earlier run?); stop that instance or choose another bridge")]
    BridgeExists {
        /// The bridge name.
        bridge: String,
    },
    /// The host's routing table could not be read.
    #[error("read the host's routes")]
    ReadRoutes(#[source] io::Error),
    /// The subnet is in use on this host.
    #[error("{subnet} is already routed on this host ({route}); choose another subnet")]
    SubnetRouted {
        /// The pod subnet.
        subnet: Subnet,
        /// The overlapping route.
        route: String,
    },
    /// `net.ipv4.ip_forward` could not be read.
    #[error("read net.ipv4.ip_forward")]
    ReadIpForward(#[source] io::Error),
    /// A directory of the instance could not be created.
    #[error("create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The instance record could not be written.
    #[error("write the instance record in {}", dir.display())]
    WriteState {
        /// The instance directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// containerd's configuration or the CNI network list could not be written.
    #[error("write {}", path.display())]
    WriteConfig {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// containerd could not be started.
    #[error("spawn containerd")]
    SpawnContainerd(#[source] io::Error),
    /// containerd exited before it answered.
    #[error("containerd exited ({status}); its log is {}", log.display())]
    ContainerdExited {
        /// How it exited.
        status: ExitStatus,
        /// containerd's log.
        log: PathBuf,
    },
    /// containerd did not answer in time.
    #[error("containerd did not answer on {} within {limit:?}; its log is {}", address.display(), log.display())]
    NoAnswer {
        /// The socket.
        address: PathBuf,
        /// How long it was given.
        limit: Duration,
        /// containerd's log.
        log: PathBuf,
    },
    /// containerd's plugins could not be listed.
    #[error("list containerd's plugins")]
    ListPlugins(#[source] CtrError),
    /// A required plugin did not load.
    #[error("plugin {GRPC_PLUGIN}.{plugin} did not load (status {status}); see {} and fix {}", log.display(), config.display())]
    PluginNotLoaded {
        /// The plugin id.
        plugin: &'static str,
        /// Its status in `ctr plugins ls`.
        status: String,
        /// containerd's log.
        log: PathBuf,
        /// containerd's configuration.
        config: PathBuf,
    },
    /// An image could not be imported.
    #[error("import {image} from {}", archive.display())]
    ImportImage {
        /// The image name.
        image: &'static str,
        /// Its archive.
        archive: PathBuf,
        /// The cause.
        #[source]
        source: CtrError,
    },
    /// An image was imported under another name than its own.
    #[error("{image} missing after importing {}", archive.display())]
    ImageMissing {
        /// The image name.
        image: &'static str,
        /// Its archive.
        archive: PathBuf,
    },
}

/// What a successful start hands to [`super::PrivateContainerd`].
pub(super) struct Started {
    pub dir: PathBuf,
    pub address: PathBuf,
    pub pid: u32,
}

/// Checks, then starts; undoes everything when a step after the checks fails.
pub(super) fn start(options: &ContainerdOptions) -> Result<Started, StartError> {
    let dir = options.validate()?;
    preflight::check_host()?;
    preflight::check_instance(&dir)?;
    preflight::check_network(&options.bridge, options.subnet)?;

    let mut state = InstanceState {
        address: dir.join(SOCKET),
        config: dir.join(CONFIG_FILE),
        bridge: options.bridge.clone(),
        subnet: options.subnet.to_string(),
        pid: None,
        created_dirs: SHARED_DIRS
            .iter()
            .map(PathBuf::from)
            .filter(|d| !d.exists())
            .collect(),
        created_portmap_chains: !network::portmap_chains_exist(),
        ip_forward: Some(network::ip_forward().map_err(StartError::ReadIpForward)?),
    };
    let dir_existed = dir.exists();
    match launch(options, &dir, &mut state) {
        Ok(pid) => Ok(Started {
            address: state.address,
            dir,
            pid,
        }),
        Err(error) => {
            let after = if dir_existed {
                DirAfter::Empty
            } else {
                DirAfter::Remove
            };
            let left = stop::teardown(&dir, &state, after);
            if !left.is_empty() {
                tracing::error!(dir = %dir.display(), ?left, "the failed start left things behind");
            }
            Err(error)
        }
    }
}

/// The steps that change the host; containerd's pid.
fn launch(
    options: &ContainerdOptions,
    dir: &Path,
    state: &mut InstanceState,
) -> Result<u32, StartError> {
    for sub in ["", "root", "state", "cni/net.d", "cni/ipam"] {
        let path = dir.join(sub);
        std::fs::create_dir_all(&path).map_err(|source| StartError::CreateDir { path, source })?;
    }
    write_state(state, dir)?;

    let rendering = Rendering {
        dir,
        bridge: &options.bridge,
        subnet: options.subnet,
        log_level: options.log_level,
    };
    write_file(&state.config, &rendering.config_toml())?;
    write_file(&dir.join(CNI_CONFLIST), &rendering.cni_conflist())?;

    let started = Instant::now();
    let log = dir.join(LOG_FILE);
    // containerd finds shims with Go's exec.LookPath, which refuses relative PATH entries.
    let shim_dir = options
        .shim_dir
        .as_deref()
        .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf()));
    let pid = spawn(&state.config, &log, shim_dir.as_deref())?;
    state.pid = Some(pid);
    write_state(state, dir)?;
    let ctr = Ctr::new(&state.address);
    wait_ready(pid, &ctr, &state.address, &log)?;
    check_plugins(&ctr, &log, &state.config)?;
    tracing::info!(
        pid,
        log = %log.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "containerd is up"
    );

    let started = Instant::now();
    for image in &options.images {
        let import_error = |source| StartError::ImportImage {
            image: image.name,
            archive: image.path.clone(),
            source,
        };
        ctr.import(CRI_NAMESPACE, &image.path)
            .map_err(import_error)?;
        let names = ctr.image_names(CRI_NAMESPACE).map_err(import_error)?;
        if !names.iter().any(|name| name == image.name) {
            return Err(StartError::ImageMissing {
                image: image.name,
                archive: image.path.clone(),
            });
        }
    }
    tracing::info!(
        images = options.images.len(),
        namespace = CRI_NAMESPACE,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "images imported"
    );
    Ok(pid)
}

/// Starts containerd in a session of its own, so it survives the terminal and process group
/// of whoever started it, with the shim directory first in its PATH and its output in `log`.
fn spawn(config: &Path, log: &Path, shim_dir: Option<&Path>) -> Result<u32, StartError> {
    let open_log = || OpenOptions::new().create(true).append(true).open(log);
    let stdout = open_log().map_err(StartError::SpawnContainerd)?;
    let stderr = open_log().map_err(StartError::SpawnContainerd)?;
    let path = match shim_dir {
        Some(shim_dir) => format!("{}:{SYSTEM_PATH}", shim_dir.display()),
        None => SYSTEM_PATH.to_string(),
    };
    let mut command = Command::new("containerd");
    command
        .arg("--config")
        .arg(config)
        .env("PATH", path)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: the closure runs in the forked child before exec; it only calls setsid(2), which
    // is async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(drop).map_err(io::Error::from));
    }
    let child = command.spawn().map_err(StartError::SpawnContainerd)?;
    // The child is not waited for here: whoever stops the instance reaps it (see
    // `process::is_running`), or init does once this process is gone.
    Ok(child.id())
}

/// Polls until containerd answers `ctr version` on its socket.
fn wait_ready(pid: u32, ctr: &Ctr, address: &Path, log: &Path) -> Result<(), StartError> {
    let quick = ctr.clone().with_limit(Duration::from_secs(5));
    let deadline = Instant::now() + READY_LIMIT;
    loop {
        if address.exists() && quick.run("default", &["version"]).is_ok() {
            return Ok(());
        }
        if let Some(status) = exit_status(pid) {
            show_log_tail(log, |_| true);
            return Err(StartError::ContainerdExited {
                status,
                log: log.to_path_buf(),
            });
        }
        if Instant::now() >= deadline {
            show_log_tail(log, |_| true);
            return Err(StartError::NoAnswer {
                address: address.to_path_buf(),
                limit: READY_LIMIT,
                log: log.to_path_buf(),
            });
        }
        thread::sleep(READY_POLL);
    }
}

fn check_plugins(ctr: &Ctr, log: &Path, config: &Path) -> Result<(), StartError> {
    for plugin in REQUIRED_PLUGINS {
        let status = ctr
            .plugin_status(GRPC_PLUGIN, plugin)
            .map_err(StartError::ListPlugins)?
            .unwrap_or_else(|| "absent".into());
        if status != "ok" {
            show_log_tail(log, |line| {
                line.contains("level=warning") || line.contains("level=error")
            });
            return Err(StartError::PluginNotLoaded {
                plugin,
                status,
                log: log.to_path_buf(),
                config: config.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// How containerd exited, when it did: it is a child of this process.
fn exit_status(pid: u32) -> Option<ExitStatus> {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    use std::os::unix::process::ExitStatusExt;

    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).ok()?);
    match waitpid(pid, Some(WaitPidFlag::WNOHANG)).ok()? {
        WaitStatus::Exited(_, code) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        WaitStatus::Signaled(_, signal, _) => Some(ExitStatus::from_raw(signal as i32)),
        _ => None,
    }
}

/// Logs the last lines of containerd's log that `keep` selects, for whoever reads ours.
fn show_log_tail(log: &Path, keep: impl Fn(&str) -> bool) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|line| keep(line)).collect();
    let tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n");
    tracing::error!(log = %log.display(), "containerd's log ends with:\n{tail}");
}

fn write_state(state: &InstanceState, dir: &Path) -> Result<(), StartError> {
    state.write(dir).map_err(|source| StartError::WriteState {
        dir: dir.to_path_buf(),
        source,
    })
}

fn write_file(path: &Path, text: &str) -> Result<(), StartError> {
    std::fs::write(path, text).map_err(|source| StartError::WriteConfig {
        path: path.to_path_buf(),
        source,
    })
}
