//! `StartProcess`: the container's init (which builds the container) or an exec process
//! (which joins it).

use std::{
    collections::HashMap,
    sync::{atomic::Ordering, Arc},
};

use tokio::sync::{oneshot, watch};

use crate::{
    container::{Container, Slot},
    convert::SpecError,
    error::{self, AgentError, AgentResult},
    init::wire::{InitRequest, InitTarget},
    process::{
        exit::{ExitInfo, ExitStatus},
        reaper::{Reaped, Reaper},
        spawn::{self, Spawned},
        Process,
    },
    spec::ProcessSpec,
};

/// Exited exec processes kept per container for late `WaitProcess`/`ReadOutput` calls. The
/// API has no call to delete an exec, and a pod probed by exec every few seconds would
/// otherwise accumulate them forever; the oldest exits are forgotten first.
const KEPT_EXITED_EXECS: usize = 16;

fn forget_old_execs(processes: &mut HashMap<String, Slot>) {
    let mut exited: Vec<(u64, String)> = processes
        .iter()
        .filter(|(id, _)| !id.is_empty())
        .filter_map(|(id, slot)| match slot {
            Slot::Started(p) => p.exit_info().map(|e| (e.exited_at_ns, id.clone())),
            Slot::Starting => None,
        })
        .collect();
    if exited.len() <= KEPT_EXITED_EXECS {
        return;
    }
    exited.sort_unstable();
    for (_, id) in &exited[..exited.len() - KEPT_EXITED_EXECS] {
        processes.remove(id);
    }
}

impl Container {
    /// Starts the init process (`exec_id` "") or an exec process; returns its pid. An init
    /// given `pod_init_pid` joins the UTS and IPC namespaces of that process.
    ///
    /// # Errors
    ///
    /// Wrong state (init started twice, exec into a stopped container), exec id in use,
    /// missing process for an exec, or the start itself failed.
    pub async fn start(
        self: &Arc<Self>,
        reaper: &Reaper,
        exec_id: &str,
        process: Option<ProcessSpec>,
        pod_init_pid: Option<i32>,
    ) -> AgentResult<u32> {
        let (target, process) = if exec_id.is_empty() {
            self.reserve_init()?;
            (
                InitTarget::Create {
                    setup: self.spec.setup.clone(),
                    pod_init_pid,
                },
                self.spec.process.clone(),
            )
        } else {
            let process = process.ok_or(SpecError::Missing("process of an exec"))?;
            let init = self.running_init().ok_or_else(|| {
                AgentError::WrongState(format!("container {:?} is not running", self.id))
            })?;
            self.reserve_exec(exec_id)?;
            (
                InitTarget::Join {
                    init_pid: init.pid.as_raw(),
                },
                process,
            )
        };

        let request = InitRequest {
            container_id: self.id.clone(),
            cgroup_dir: self.cgroup.dir().to_path_buf(),
            target,
            process,
        };
        let oom_before = self.cgroup.oom_kills().unwrap_or(0);
        let Spawned { pid, exit, io } = match spawn::spawn(reaper, request).await {
            Ok(spawned) => spawned,
            Err(err) => {
                self.processes().remove(exec_id);
                return Err(err);
            }
        };

        let (exit_tx, exit_rx) = watch::channel(None);
        self.watch_exit(exec_id, exit, exit_tx, oom_before);
        let process = match Process::track(pid, io, exit_rx) {
            Ok(process) => Arc::new(process),
            Err(err) => {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                self.processes().remove(exec_id);
                return Err(err);
            }
        };
        self.processes()
            .insert(exec_id.to_string(), Slot::Started(process));
        tracing::info!(container = %self.id, exec = exec_id, pid = pid.as_raw(), "process started");
        Ok(pid.as_raw() as u32)
    }

    /// Whether an OOM kill of the cgroup, counted after `since` and not yet claimed by another
    /// process, explains a SIGKILL; claims it if so. memory.events counts kills without naming
    /// victims, so this is exact for one victim at a time and a best guess otherwise.
    fn claim_oom_kill(&self, since: u64) -> bool {
        let kills = self.cgroup.oom_kills().unwrap_or(0);
        let mut claimed = self.oom_attributed.load(Ordering::Acquire);
        loop {
            let next = claimed.max(since) + 1;
            if next > kills {
                return false;
            }
            match self.oom_attributed.compare_exchange(
                claimed,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(current) => claimed = current,
            }
        }
    }

    fn reserve_init(&self) -> AgentResult<()> {
        let mut processes = self.processes();
        if processes.contains_key("") {
            let message = format!("container {:?} was already started", self.id);
            return Err(AgentError::WrongState(message));
        }
        processes.insert(String::new(), Slot::Starting);
        Ok(())
    }

    fn reserve_exec(&self, exec_id: &str) -> AgentResult<()> {
        let mut processes = self.processes();
        let in_use = match processes.get(exec_id) {
            Some(Slot::Starting) => true,
            Some(Slot::Started(p)) => p.is_running(),
            None => false,
        };
        if in_use {
            return Err(AgentError::ExecIdInUse {
                container_id: self.id.clone(),
                exec_id: exec_id.to_string(),
            });
        }
        processes.insert(exec_id.to_string(), Slot::Starting);
        forget_old_execs(&mut processes);
        Ok(())
    }

    /// Turns the reaper's report into the process's exit, adds the OOM verdict, and for the
    /// init process kills what is left in the container, as the end of a PID namespace would.
    fn watch_exit(
        self: &Arc<Self>,
        exec_id: &str,
        reaped: oneshot::Receiver<Reaped>,
        exit_tx: watch::Sender<Option<ExitInfo>>,
        oom_before: u64,
    ) {
        let container = Arc::clone(self);
        let exec_id = exec_id.to_string();
        tokio::spawn(async move {
            let Ok(reaped) = reaped.await else { return };
            let oom_killed = reaped.status == ExitStatus::Signaled(libc::SIGKILL)
                && container.claim_oom_kill(oom_before);
            let info = ExitInfo {
                status: reaped.status,
                exited_at_ns: reaped.at_ns,
                oom_killed,
            };
            tracing::info!(
                container = %container.id,
                exec = %exec_id,
                code = info.status.exit_code(),
                signal = info.status.signal(),
                oom_killed,
                "process exited"
            );
            exit_tx.send_replace(Some(info));
            if exec_id.is_empty() {
                if let Err(err) = container.cgroup.kill_all() {
                    tracing::warn!(
                        container = %container.id,
                        error = %error::chain(&err),
                        "killing the container's remaining processes failed"
                    );
                }
            }
        });
    }
}
