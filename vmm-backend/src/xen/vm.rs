//! A running Xen guest: agent channel, block devices, pause/resume, wait, stop.

use std::{
    path::PathBuf,
    sync::{atomic::Ordering, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::{
    xen::{
        chain,
        console::ConsoleStream,
        disks::GuestDisks,
        exit::{ExitLogs, ExitWatch},
        state::StatePaths,
        xl::Xl,
    },
    AgentStream, BlockDevice, BootTimings, Vm, VmError, VmExit,
};

/// How long the `xl create -F` monitor may take to exit after the domain is destroyed.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `XenVm::new` is built from.
pub(crate) struct XenVmParts {
    pub id: String,
    pub domid: u32,
    pub state_dir: PathBuf,
    pub paths: StatePaths,
    pub xl: Xl,
    pub xl_pid: u32,
    pub console: ConsoleStream,
    pub console_path: PathBuf,
    pub boot_timeout: Duration,
    pub timings: BootTimings,
    pub exit: ExitWatch,
    pub kill_xl: oneshot::Sender<()>,
    /// The disks attached at create.
    pub disks: GuestDisks,
}

/// What `stop` (or drop) still has to release.
#[derive(Debug)]
struct Owned {
    kill_xl: Option<oneshot::Sender<()>>,
    released: bool,
}

/// One guest under Xen. Dropping it without [`Vm::stop`] destroys the domain and removes its
/// state directory.
#[derive(Debug)]
pub struct XenVm {
    id: String,
    domid: u32,
    state_dir: PathBuf,
    paths: StatePaths,
    xl: Xl,
    xl_pid: u32,
    console_path: PathBuf,
    boot_timeout: Duration,
    timings: BootTimings,
    exit: ExitWatch,
    /// The console as opened at create, until the first `connect_agent` takes it.
    console: tokio::sync::Mutex<Option<ConsoleStream>>,
    disks: GuestDisks,
    owned: Mutex<Owned>,
    stop_lock: tokio::sync::Mutex<()>,
}

impl XenVm {
    pub(crate) fn new(parts: XenVmParts) -> XenVm {
        XenVm {
            id: parts.id,
            domid: parts.domid,
            state_dir: parts.state_dir,
            paths: parts.paths,
            xl: parts.xl,
            xl_pid: parts.xl_pid,
            console_path: parts.console_path,
            boot_timeout: parts.boot_timeout,
            timings: parts.timings,
            exit: parts.exit,
            console: tokio::sync::Mutex::new(Some(parts.console)),
            disks: parts.disks,
            owned: Mutex::new(Owned {
                kill_xl: Some(parts.kill_xl),
                released: false,
            }),
            stop_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The Xen domain id.
    pub fn domid(&self) -> u32 {
        self.domid
    }

    fn logs(&self) -> ExitLogs {
        ExitLogs {
            xl: self.paths.xl_log(),
            console: self.paths.console_log(),
        }
    }

    fn current_exit(&self) -> Option<VmExit> {
        self.exit.exit.borrow().clone()
    }

    async fn wait_for_exit(&self, limit: Duration) -> Option<VmExit> {
        let mut rx = self.exit.exit.clone();
        let waited = tokio::time::timeout(limit, rx.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(exit)) => exit.clone(),
            _ => self.current_exit(),
        }
    }

    fn lock_owned(&self) -> std::sync::MutexGuard<'_, Owned> {
        self.owned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ends the domain: `xl destroy`, then the monitor is killed if it does not exit.
    async fn destroy(&self) -> VmExit {
        self.exit.host_stopping.store(true, Ordering::SeqCst);
        if let Err(e) = self.xl.run(&["destroy", &self.domid.to_string()]).await {
            tracing::warn!(vm = %self.id, domid = self.domid, error = %chain(&e),
                "xl destroy failed; killing the domain's monitor");
        }
        if let Some(exit) = self.wait_for_exit(EXIT_TIMEOUT).await {
            return exit;
        }
        let kill = self.lock_owned().kill_xl.take();
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
        self.wait_for_exit(EXIT_TIMEOUT)
            .await
            .unwrap_or(VmExit::Killed)
    }

    /// Waits for the agent's marker on the console, unless the guest ends first.
    async fn take_channel(&self, mut console: ConsoleStream) -> Result<AgentStream, VmError> {
        let mut rx = self.exit.exit.clone();
        let boot_log = self.paths.console_log();
        let wait = console.wait_for_agent(&self.console_path, &boot_log, self.boot_timeout);
        let result = tokio::select! {
            result = wait => result,
            _ = rx.wait_for(Option::is_some) => {
                let exit = self.current_exit().unwrap_or(VmExit::Killed);
                return Err(VmError::VmmExited {
                    status: exit.to_string(),
                    log: self.logs().tail(),
                });
            }
        };
        match result {
            Ok(()) => {
                tracing::debug!(vm = %self.id, "agent took over the console");
                Ok(Box::new(console))
            }
            Err(crate::xen::console::ConsoleError::Timeout(waited)) => {
                Err(VmError::AgentNotReady {
                    waited,
                    log: self.logs().tail(),
                })
            }
            Err(e) => Err(VmError::AgentChannel(std::io::Error::other(e))),
        }
    }
}

#[async_trait]
impl Vm for XenVm {
    fn id(&self) -> &str {
        &self.id
    }

    fn vmm_pid(&self) -> Option<u32> {
        // `xl create -F` lives exactly as long as the domain.
        Some(self.xl_pid)
    }

    fn host_pids(&self) -> Vec<u32> {
        vec![self.xl_pid]
    }

    async fn connect_agent(&self) -> Result<AgentStream, VmError> {
        let first = self.console.lock().await.take();
        match first {
            Some(console) => self.take_channel(console).await,
            // The agent owns the console since the first connection; reopen the pty.
            None => ConsoleStream::open(&self.console_path)
                .map(|c| Box::new(c) as AgentStream)
                .map_err(|e| VmError::AgentChannel(std::io::Error::other(e))),
        }
    }

    fn timings(&self) -> BootTimings {
        self.timings.clone()
    }

    async fn attach_block(&self, device: BlockDevice) -> Result<String, VmError> {
        let disk = self.disks.prepare(&device)?;
        let attached = match disk.spec.render() {
            Ok(text) => self
                .xl
                .run(&["block-attach", &self.domid.to_string(), &text])
                .await
                .map_err(|e| VmError::Control(chain(&e))),
            Err(e) => Err(VmError::InvalidSpec(e.to_string())),
        };
        if let Err(e) = attached {
            self.disks.release(disk.letter);
            return Err(e);
        }
        tracing::debug!(vm = %self.id, vdev = %disk.spec.vdev, path = %device.path.display(),
            target = %disk.spec.target.display(), "disk attached");
        Ok(disk.guest_path())
    }

    async fn detach_block(&self, guest_path: &str) -> Result<(), VmError> {
        let Some(letter) = self.disks.letter_of(guest_path) else {
            return Err(VmError::InvalidSpec(format!(
                "{guest_path} is not a disk this VM attached"
            )));
        };
        let vdev = format!("xvd{}", letter as char);
        self.xl
            .run(&["block-detach", &self.domid.to_string(), &vdev])
            .await
            .map_err(|e| VmError::Control(chain(&e)))?;
        self.disks.release(letter);
        Ok(())
    }

    async fn pause(&self) -> Result<(), VmError> {
        self.xl
            .run(&["pause", &self.domid.to_string()])
            .await
            .map(drop)
            .map_err(|e| VmError::Control(chain(&e)))
    }

    async fn resume(&self) -> Result<(), VmError> {
        self.xl
            .run(&["unpause", &self.domid.to_string()])
            .await
            .map(drop)
            .map_err(|e| VmError::Control(chain(&e)))
    }

    async fn wait(&self) -> VmExit {
        let mut rx = self.exit.exit.clone();
        let seen = rx.wait_for(Option::is_some).await.map(|exit| exit.clone());
        match seen {
            Ok(exit) => exit.unwrap_or(VmExit::Killed),
            // The watcher task is gone without a verdict: only when the runtime shuts down.
            Err(_) => self
                .current_exit()
                .unwrap_or_else(|| VmExit::Crashed("exit unknown".into())),
        }
    }

    async fn stop(&self, grace: Duration) -> Result<VmExit, VmError> {
        let _serial = self.stop_lock.lock().await;
        let exit = match self.wait_for_exit(grace).await {
            Some(exit) => exit,
            None => self.destroy().await,
        };
        if self.lock_owned().released {
            return Ok(exit);
        }
        // The domain is gone and blkback has let go of its disks.
        self.disks.release_all();
        match std::fs::remove_dir_all(&self.state_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let context = format!("remove {}", self.state_dir.display());
                return Err(VmError::Io { context, source: e });
            }
        }
        self.lock_owned().released = true;
        tracing::info!(vm = %self.id, backend = "xen", domid = self.domid, exit = ?exit, "VM stopped");
        Ok(exit)
    }
}

impl Drop for XenVm {
    fn drop(&mut self) {
        let owned = self.owned.get_mut().unwrap_or_else(|e| e.into_inner());
        if owned.released {
            return;
        }
        tracing::warn!(vm = %self.id, domid = self.domid, "VM dropped without stop; destroying it");
        self.exit.host_stopping.store(true, Ordering::SeqCst);
        // Drop cannot wait: xl destroy runs on its own, and the monitor ends with the domain.
        let spawned = std::process::Command::new(self.xl.binary())
            .args(["destroy", &self.domid.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            tracing::error!(vm = %self.id, domid = self.domid, error = %e,
                "cannot run xl destroy; the domain is left running");
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
