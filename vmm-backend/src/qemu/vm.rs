//! A running QEMU guest: agent channel, pause/resume, wait, stop.

use std::{
    path::PathBuf,
    sync::{atomic::Ordering, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use qapi::qmp;
use tokio::{net::UnixStream, sync::oneshot};

use crate::{
    qemu::{process::ExitWatch, qmp::QmpConnection, virtiofsd::Virtiofsd},
    AgentStream, BootTimings, Vm, VmError, VmExit,
};

/// How long a QMP command may take.
const QMP_TIMEOUT: Duration = Duration::from_secs(5);
/// How long QEMU may take to exit after `quit` or SIGKILL.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `connect_agent` retries while the agent socket appears.
const AGENT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What `stop` (or drop) still has to release.
#[derive(Debug)]
struct Owned {
    helpers: Vec<Virtiofsd>,
    kill_qemu: Option<oneshot::Sender<()>>,
    released: bool,
}

/// One guest under QEMU. Dropping it without [`Vm::stop`] kills its processes and removes its
/// state directory.
#[derive(Debug)]
pub struct QemuVm {
    pub(crate) id: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) agent_socket: PathBuf,
    pub(crate) qemu_pid: u32,
    pub(crate) timings: BootTimings,
    pub(crate) qmp: QmpConnection,
    pub(crate) exit: ExitWatch,
    owned: Mutex<Owned>,
    stop_lock: tokio::sync::Mutex<()>,
}

impl QemuVm {
    /// Assembles the handle of a booted VM.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        state_dir: PathBuf,
        agent_socket: PathBuf,
        qemu_pid: u32,
        timings: BootTimings,
        qmp: QmpConnection,
        exit: ExitWatch,
        helpers: Vec<Virtiofsd>,
        kill_qemu: oneshot::Sender<()>,
    ) -> Self {
        QemuVm {
            id,
            state_dir,
            agent_socket,
            qemu_pid,
            timings,
            qmp,
            exit,
            owned: Mutex::new(Owned {
                helpers,
                kill_qemu: Some(kill_qemu),
                released: false,
            }),
            stop_lock: tokio::sync::Mutex::new(()),
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

    /// Ends QEMU: `quit` over QMP first, SIGKILL if that does not end it.
    async fn end_qemu(&self) -> VmExit {
        self.exit.host_stopping.store(true, Ordering::SeqCst);
        if let Err(e) = self.qmp.execute(qmp::quit {}, QMP_TIMEOUT).await {
            tracing::debug!(vm = %self.id, error = %e, "QMP quit failed; killing QEMU");
        }
        if let Some(exit) = self.wait_for_exit(EXIT_TIMEOUT).await {
            return exit;
        }
        let kill = self.lock_owned().kill_qemu.take();
        if let Some(kill) = kill {
            let _ = kill.send(());
        }
        self.wait_for_exit(EXIT_TIMEOUT)
            .await
            .unwrap_or(VmExit::Killed)
    }
}

#[async_trait]
impl Vm for QemuVm {
    fn id(&self) -> &str {
        &self.id
    }

    fn vmm_pid(&self) -> Option<u32> {
        Some(self.qemu_pid)
    }

    fn host_pids(&self) -> Vec<u32> {
        let owned = self.lock_owned();
        std::iter::once(self.qemu_pid)
            .chain(owned.helpers.iter().map(|h| h.pid))
            .collect()
    }

    async fn connect_agent(&self) -> Result<AgentStream, VmError> {
        let deadline = tokio::time::Instant::now() + AGENT_CONNECT_TIMEOUT;
        loop {
            match UnixStream::connect(&self.agent_socket).await {
                Ok(stream) => return Ok(Box::new(stream)),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(VmError::AgentChannel(e))
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn timings(&self) -> BootTimings {
        self.timings.clone()
    }

    async fn pause(&self) -> Result<(), VmError> {
        self.qmp
            .execute(qmp::stop {}, QMP_TIMEOUT)
            .await
            .map(drop)
            .map_err(|e| VmError::Control(e.to_string()))
    }

    async fn resume(&self) -> Result<(), VmError> {
        self.qmp
            .execute(qmp::cont {}, QMP_TIMEOUT)
            .await
            .map(drop)
            .map_err(|e| VmError::Control(e.to_string()))
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
            None => self.end_qemu().await,
        };

        let helpers = {
            let mut owned = self.lock_owned();
            if owned.released {
                return Ok(exit);
            }
            std::mem::take(&mut owned.helpers)
        };
        for mut helper in helpers {
            crate::qemu::virtiofsd::kill(&mut helper).await;
        }
        match std::fs::remove_dir_all(&self.state_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let context = format!("remove {}", self.state_dir.display());
                return Err(VmError::Io { context, source: e });
            }
        }
        self.lock_owned().released = true;
        tracing::info!(vm = %self.id, backend = "qemu", exit = ?exit, "VM stopped");
        Ok(exit)
    }
}

impl Drop for QemuVm {
    fn drop(&mut self) {
        let owned = self.owned.get_mut().unwrap_or_else(|e| e.into_inner());
        if owned.released {
            return;
        }
        tracing::warn!(vm = %self.id, "VM dropped without stop; killing it");
        self.exit.host_stopping.store(true, Ordering::SeqCst);
        if let Some(kill) = owned.kill_qemu.take() {
            let _ = kill.send(());
        }
        // Dropping the helpers' children kills them (kill_on_drop); tokio reaps them.
        owned.helpers.clear();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}
