//! The state every scenario shares: the CRI connection, what pods start with, the progress
//! display, and the parallel removal of pods.

use std::{path::PathBuf, sync::Mutex, thread};

use lightpod_harness::cri::{CriClient, CriPod};

use crate::{
    pod::{self, BenchPod, PodContext, StartFailure},
    progress::Progress,
    shimlog::ShimLog,
    workload::{Runtime, Workload},
};

/// What [`Bench::start_many`] started.
#[derive(Default)]
pub struct Started {
    /// The pods that printed their first line.
    pub pods: Vec<BenchPod>,
    /// The starts that failed, with their pods to remove.
    pub failures: Vec<StartFailure>,
    /// Why the starts ended before all names were used.
    pub stopped: Option<String>,
}

impl Started {
    /// Every pod made, started or failed, to remove.
    pub fn into_pods(self) -> Vec<CriPod> {
        let failed = self.failures.into_iter().filter_map(|f| f.pod.map(|p| *p));
        self.pods.into_iter().map(|p| p.pod).chain(failed).collect()
    }
}

/// A running benchmark: its private containerd's CRI and what the scenarios share.
pub struct Bench {
    /// What pods start with.
    pub context: PodContext,
    /// containerd's log, where the shims' lines land.
    pub containerd_log: PathBuf,
    /// The progress display.
    pub progress: Progress,
    /// A CRI connection for the main thread.
    pub cri: CriClient,
    /// How many pods are removed at once.
    pub removers: usize,
}

impl Bench {
    /// Starts one pod from the main thread (see [`pod::start`]).
    ///
    /// # Errors
    ///
    /// As [`pod::start`].
    pub fn start_pod(
        &mut self,
        runtime: Runtime,
        name: &str,
        workload: Workload,
    ) -> Result<BenchPod, StartFailure> {
        pod::start(&mut self.cri, &self.context, runtime, name, workload)
    }

    /// Starts pods `names` under `runtime`, `concurrency` at a time, showing each as it comes.
    /// Before each start `guard` may name a reason to start no more; `max_failures` failed
    /// starts also end the starts. The pods that started, the failures (with their pods, to
    /// remove), and why it stopped early.
    pub fn start_many(
        &self,
        runtime: Runtime,
        names: Vec<String>,
        workload: Workload,
        concurrency: usize,
        max_failures: usize,
        guard: &(dyn Fn() -> Option<String> + Sync),
    ) -> Started {
        let workers = concurrency.clamp(1, names.len().max(1));
        let queue = Mutex::new(names.into_iter().rev().collect::<Vec<_>>());
        let started = Mutex::new(Started::default());
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    self.start_from(runtime, workload, &queue, &started, max_failures, guard)
                });
            }
        });
        started.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn start_from(
        &self,
        runtime: Runtime,
        workload: Workload,
        queue: &Mutex<Vec<String>>,
        started: &Mutex<Started>,
        max_failures: usize,
        guard: &(dyn Fn() -> Option<String> + Sync),
    ) {
        let lock = || started.lock().unwrap_or_else(|p| p.into_inner());
        let mut cri = match CriClient::connect(&self.context.socket) {
            Ok(cri) => cri,
            Err(error) => {
                lock()
                    .stopped
                    .get_or_insert(format!("connect to CRI: {error}"));
                return;
            }
        };
        loop {
            if lock().stopped.is_some() || crate::interrupt::interrupted() {
                return;
            }
            if let Some(reason) = guard() {
                lock().stopped.get_or_insert(reason);
                return;
            }
            let Some(name) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                return;
            };
            match pod::start(&mut cri, &self.context, runtime, &name, workload) {
                Ok(pod) => {
                    let took = pod.timing.first_line.as_secs_f64();
                    lock().pods.push(pod);
                    self.progress.advance(&format!("{runtime} {took:.1} s"));
                }
                Err(failure) => {
                    self.progress
                        .advance(&format!("{runtime} failed: {failure}"));
                    let mut started = lock();
                    if started.failures.len() + 1 >= max_failures {
                        let reason = format!("too many failed starts, the last: {failure}");
                        started.stopped.get_or_insert(reason);
                    }
                    started.failures.push(failure);
                }
            }
        }
    }

    /// Stops and removes `pods`, several at once, showing progress as `what`; how many
    /// could not be removed (they are left to the final stop of containerd).
    pub fn remove_all(&self, pods: Vec<CriPod>, what: &str) -> usize {
        if pods.is_empty() {
            return 0;
        }
        self.progress.section(what, pods.len());
        let workers = self.removers.clamp(1, pods.len());
        let queue = Mutex::new(pods);
        let failed = Mutex::new(0usize);
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.remove_from(&queue, &failed));
            }
        });
        // Pods no worker could take (CRI unreachable) are removed as they drop.
        let left = queue.into_inner().unwrap_or_else(|p| p.into_inner());
        let failed = *failed.lock().unwrap_or_else(|p| p.into_inner()) + left.len();
        drop(left);
        self.progress.finish(&if failed == 0 {
            "done".to_string()
        } else {
            format!("{failed} not removed")
        });
        failed
    }

    /// The shim log lines containerd's log holds now.
    pub fn shim_log(&self) -> ShimLog {
        match std::fs::read_to_string(&self.containerd_log) {
            Ok(text) => ShimLog::parse(&text),
            Err(error) => {
                tracing::warn!(log = %self.containerd_log.display(), %error, "cannot read containerd's log");
                ShimLog::default()
            }
        }
    }

    fn remove_from(&self, queue: &Mutex<Vec<CriPod>>, failed: &Mutex<usize>) {
        let mut cri = match CriClient::connect(&self.context.socket) {
            Ok(cri) => cri,
            Err(error) => {
                tracing::warn!(%error, "a remover cannot reach CRI");
                return;
            }
        };
        loop {
            let Some(next) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                return;
            };
            let id = next.id.clone();
            match pod::remove(&mut cri, next) {
                Ok(took) => self
                    .progress
                    .advance(&format!("{:.1} s", took.as_secs_f64())),
                Err(status) => {
                    tracing::warn!(sandbox = %id, %status, "removing a pod failed");
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                    self.progress.advance("failed");
                }
            }
        }
    }
}
