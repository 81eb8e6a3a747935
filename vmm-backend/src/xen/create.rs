//! Creating a guest: state directory, xl domain configuration, `xl create -F`, the domain id
//! from xl's log, the console pty from xenstore.
//!
//! Everything started is recorded in [`Started`]; a failure at any step unwinds it in reverse
//! order (domain, xl, state directory) before the error is returned.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    sync::oneshot,
    time::Instant,
};

use crate::{
    xen::{
        chain,
        config::XenConfig,
        console::ConsoleStream,
        disks::GuestDisks,
        domain::domain_config,
        exit::{self, ExitLogs},
        state::{make_state_dir, write_file, StatePaths},
        validate::validate,
        vm::{XenVm, XenVmParts},
        xenstore::Xenstore,
        xl::{last_lines, Xl, XlError},
    },
    BootTimings, VmError, VmSpec,
};

/// How often xl's log and xenstore are polled while a domain is being built.
const POLL: Duration = Duration::from_millis(10);

/// What a create has started so far, unwound on failure.
struct Started {
    dir: Option<PathBuf>,
    xl: Option<Child>,
    /// The domain's name, once `xl create` runs: a create stopped half-way may have left a
    /// domain whose id nobody learnt.
    name: Option<String>,
    domid: Option<u32>,
}

impl Started {
    async fn unwind(mut self, xl: &Xl) {
        if let Some(mut child) = self.xl.take() {
            // xl must not go on building while the domain is destroyed under it.
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
        let target = match (self.domid.take(), self.name.take()) {
            (Some(domid), _) => Some(domid.to_string()),
            (None, name) => name,
        };
        if let Some(target) = target {
            match xl.run(&["destroy", &target]).await {
                Ok(_) => tracing::debug!(domain = %target, "half-created domain destroyed"),
                // After a clean failure xl has removed the domain itself.
                Err(XlError::Failed { output, .. }) if output.contains("invalid domain") => {}
                Err(e) => tracing::warn!(domain = %target, error = %chain(&e),
                    "cannot destroy the half-created domain"),
            }
        }
        if let Some(dir) = self.dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove VM state dir");
            }
        }
    }
}

/// Creates and boots a guest; see [`crate::Hypervisor::create`].
pub async fn create(xl: &Xl, config: &XenConfig, spec: VmSpec) -> Result<XenVm, VmError> {
    let t0 = Instant::now();
    validate(&spec)?;
    make_state_dir(&spec.state_dir)?;
    let mut started = Started {
        dir: Some(spec.state_dir.clone()),
        xl: None,
        name: None,
        domid: None,
    };
    match boot(xl, config, &spec, &mut started, t0).await {
        Ok(vm) => Ok(vm),
        Err(e) => {
            started.unwind(xl).await;
            Err(e)
        }
    }
}

async fn boot(
    xl: &Xl,
    config: &XenConfig,
    spec: &VmSpec,
    started: &mut Started,
    t0: Instant,
) -> Result<XenVm, VmError> {
    let deadline = t0 + spec.boot_timeout;
    let paths = StatePaths::new(spec.state_dir.clone());
    let disks = GuestDisks::new(config.find_block_script());
    let domain = domain_config(config, spec, &disks)?;
    let text = domain
        .render()
        .map_err(|e| VmError::InvalidSpec(e.to_string()))?;
    write_file(&paths.domain_config(), &text)?;
    write_file(&paths.domain_name(), &domain.name)?;

    started.name = Some(domain.name.clone());
    let child = spawn_xl_create(xl.binary(), &paths)?;
    let xl_pid = child.id().unwrap_or_default();
    write_file(&paths.xl_pid(), &xl_pid.to_string())?;
    started.xl = Some(child);
    let vmm_spawned = t0.elapsed();
    tracing::debug!(vm = %spec.id, domain = %domain.name, "xl create started");

    let domid = wait_for_domid(xl, spec, &paths, started, deadline).await?;
    started.domid = Some(domid);
    let domain_running = t0.elapsed();

    let remaining = deadline.saturating_duration_since(Instant::now());
    let console_path = console_pty(&config.xenstore_socket, domid, remaining).await?;
    let console = ConsoleStream::open(&console_path)
        .map_err(|e| VmError::AgentChannel(std::io::Error::other(e)))?;

    let timings = BootTimings {
        vmm_spawned: Some(vmm_spawned),
        vmm_ready: Some(domain_running),
        guest_started: Some(domain_running),
        accelerator: None,
    };
    tracing::info!(
        vm = %spec.id,
        backend = "xen",
        domain = %domain.name,
        domid,
        guest_type = domain.guest_type.xl_name(),
        domain_running_ms = domain_running.as_millis() as u64,
        "VM booted"
    );

    let Some(child) = started.xl.take() else {
        return Err(VmError::Control("xl child lost".into()));
    };
    let (kill_tx, kill_rx) = oneshot::channel();
    let logs = ExitLogs {
        xl: paths.xl_log(),
        console: paths.console_log(),
    };
    let exit = exit::watch_exit(child, kill_rx, logs);
    started.domid = None;
    started.name = None;
    started.dir = None;
    Ok(XenVm::new(XenVmParts {
        id: spec.id.clone(),
        domid,
        state_dir: spec.state_dir.clone(),
        paths,
        xl: xl.clone(),
        xl_pid,
        console,
        console_path,
        boot_timeout: spec.boot_timeout,
        timings,
        exit,
        kill_xl: kill_tx,
        disks,
    }))
}

/// Starts `xl create -F`: in the foreground, xl watches the domain and exits when it ends,
/// so the guest has a host process as a QEMU guest does. Its output goes to `xl.log`.
fn spawn_xl_create(binary: &Path, paths: &StatePaths) -> Result<Child, VmError> {
    let spawn_err = |source| VmError::SpawnVmm {
        binary: binary.display().to_string(),
        source,
    };
    let log = std::fs::File::create(paths.xl_log()).map_err(spawn_err)?;
    let log_err = log.try_clone().map_err(spawn_err)?;
    Command::new(binary)
        .arg("create")
        .arg("-F")
        .arg(paths.domain_config())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // A Ctrl-C on the caller's terminal must not end the guest's monitor behind its back.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)
}

/// Waits for xl's `Waiting for domain <name> (domid <n>) to die` line: the domain is built
/// and running. When xl exits first, its log says why.
async fn wait_for_domid(
    xl: &Xl,
    spec: &VmSpec,
    paths: &StatePaths,
    started: &mut Started,
    deadline: Instant,
) -> Result<u32, VmError> {
    loop {
        let text = std::fs::read_to_string(paths.xl_log()).unwrap_or_default();
        if let Some(domid) = parse_domid(&text) {
            return Ok(domid);
        }
        if let Some(child) = started.xl.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                // xl failed on its own and removed what it had built.
                started.xl = None;
                started.name = None;
                let text = std::fs::read_to_string(paths.xl_log()).unwrap_or_default();
                return Err(create_failure(xl, spec, &status.to_string(), &text).await);
            }
        }
        if Instant::now() >= deadline {
            return Err(VmError::Timeout(spec.boot_timeout, "xl create"));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The domain id in xl's log.
pub fn parse_domid(xl_log: &str) -> Option<u32> {
    xl_log
        .lines()
        .filter_map(|l| l.split_once("(domid "))
        .filter(|(before, _)| before.starts_with("Waiting for domain "))
        .find_map(|(_, rest)| rest.split(')').next()?.trim().parse().ok())
}

/// The error of an `xl create` that failed: out of memory (with what Xen has free), or xl's
/// own words.
async fn create_failure(xl: &Xl, spec: &VmSpec, status: &str, xl_log: &str) -> VmError {
    let memory = [
        "Out of memory",
        "Cannot allocate memory",
        "not enough memory",
    ];
    if memory.iter().any(|m| xl_log.contains(m)) {
        if let Ok(info) = xl.info().await {
            if let Some(free_mib) = info.free_memory_mib() {
                return VmError::OutOfMemory {
                    needed_mib: spec.memory_mib,
                    free_mib,
                };
            }
        }
    }
    let lines: Vec<&str> = xl_log
        .lines()
        .filter(|l| !l.starts_with("Parsing config from"))
        .collect();
    VmError::VmmExited {
        status: format!("xl create {status}"),
        log: last_lines(&lines.join("\n"), 4),
    }
}

/// The pty xenconsoled made for the domain's console (it writes the path once it has
/// noticed the new domain).
async fn console_pty(socket: &Path, domid: u32, limit: Duration) -> Result<PathBuf, VmError> {
    let key = format!("/local/domain/{domid}/console/tty");
    let control = |e: crate::xen::xenstore::XenstoreError| VmError::Control(crate::xen::chain(&e));
    let mut xenstore = Xenstore::connect(socket).await.map_err(control)?;
    match xenstore
        .wait_for(&key, POLL, limit)
        .await
        .map_err(control)?
    {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(VmError::BackendUnavailable {
            backend: crate::BackendKind::Xen,
            reason: format!(
                "no console pty in xenstore ({key}) after {limit:?}: is xenconsoled running?"
            ),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(memory_mib: u32) -> VmSpec {
        VmSpec {
            id: "run-1".into(),
            state_dir: "/run/lightpod/sandboxes/run-1/vm".into(),
            vcpus: 1,
            memory_mib,
            kernel: "/dev/null".into(),
            initrd: "/dev/null".into(),
            kernel_params: Vec::new(),
            shared_dirs: Vec::new(),
            net_devices: Vec::new(),
            block_devices: Vec::new(),
            boot_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn a_failed_create_says_why() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in for xl whose `info` reports 512 MiB free.
        let fake = dir.path().join("xl");
        std::fs::write(&fake, "#!/bin/sh\necho 'free_memory            : 512'\n").unwrap();
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
        std::fs::set_permissions(&fake, mode).unwrap();
        let xl = Xl::new(fake, Duration::from_secs(5));
        let oom = "Parsing config from /x/domain.cfg\n\
            xc: error: panic: xg_dom_boot.c:119: xc_dom_boot_mem_init: can't allocate low \
            memory for domain: Out of memory\n";
        match create_failure(&xl, &spec(6000), "exit status: 3", oom).await {
            VmError::OutOfMemory {
                needed_mib,
                free_mib,
            } => assert_eq!((needed_mib, free_mib), (6000, 512)),
            other => panic!("{other:?}"),
        }
        let bad_kernel = "Parsing config from /x/domain.cfg\n\
            xc: error: panic: xg_dom_core.c:205: failed to open file '/k': No such file\n\
            libxl: error: libxl_create.c:1640:domcreate_rebuild_done: cannot (re-)build domain\n";
        match create_failure(&xl, &spec(256), "exit status: 3", bad_kernel).await {
            VmError::VmmExited { status, log } => {
                assert!(status.contains("xl create"), "{status}");
                assert!(log.contains("failed to open file '/k'"), "{log}");
                assert!(!log.contains("Parsing config"), "{log}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finds_the_domain_id_in_xl_output() {
        let log = "Parsing config from /run/x/domain.cfg\n\
                   Waiting for domain lightpod-run-1 (domid 12) to die [pid 138]\n";
        assert_eq!(parse_domid(log), Some(12));
        assert_eq!(parse_domid("Parsing config from /x\n"), None);
        assert_eq!(
            parse_domid("libxl: error: (domid 3) something\n"),
            None,
            "only xl's waiting line counts"
        );
    }
}
