//! One benchmark pod through CRI, as kubelet starts it: RunPodSandbox → CreateContainer →
//! StartContainer → the container's first output line in its CRI log; and its removal.
//!
//! The first line is found by polling the CRI log file; its time is the line's own
//! timestamp, which containerd writes (in nanoseconds) when the line reaches it, so the
//! polling interval adds nothing to the figure.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use lightpod_harness::cri::{
    log::{self, LogStream},
    CriClient, CriPod, PodSandboxConfigBuilder,
};

use crate::{
    interrupt::{self, Interrupted},
    shimlog::parse_rfc3339,
    workload::{Runtime, Workload, READY_LINE},
};

/// The Kubernetes namespace benchmark pods claim.
const POD_NAMESPACE: &str = "lightpod-bench";

/// What every benchmark pod is started with.
#[derive(Debug, Clone)]
pub struct PodContext {
    /// The CRI socket (a dropped pod connects there again to remove itself).
    pub socket: PathBuf,
    /// vCPUs of a lightpod VM (annotation `lightpod.io/vcpus`).
    pub vcpus: u32,
    /// Memory of a lightpod VM in MiB (annotation `lightpod.io/memory-mib`).
    pub memory_mib: u32,
    /// How long a pod may take from RunPodSandbox to its first output line.
    pub ready_timeout: Duration,
    /// How often the CRI log is polled for a line.
    pub poll: Duration,
}

/// When each step of a start ended, from the RunPodSandbox call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StartTiming {
    /// Wall-clock time of the RunPodSandbox call (log times are compared with it).
    pub began: SystemTime,
    /// RunPodSandbox returned.
    pub sandbox: Duration,
    /// CreateContainer returned.
    pub created: Duration,
    /// StartContainer returned.
    pub started: Duration,
    /// The container's first output line reached its CRI log.
    pub first_line: Duration,
}

/// A running benchmark pod with its one container.
pub struct BenchPod {
    /// The runtime it runs under.
    pub runtime: Runtime,
    /// The pod (removed when dropped).
    pub pod: CriPod,
    /// Its container's id.
    pub container_id: String,
    /// Its container's CRI log.
    pub log_file: PathBuf,
    /// How its start went.
    pub timing: StartTiming,
}

/// A start that did not reach the first output line.
pub struct StartFailure {
    /// The step that failed (`RunPodSandbox`, …, `first line`).
    pub step: &'static str,
    /// Why.
    pub reason: String,
    /// The pod when RunPodSandbox had made one: the caller removes it (boxed: a pod carries
    /// its whole sandbox config).
    pub pod: Option<Box<CriPod>>,
}

impl std::fmt::Display for StartFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.step, self.reason)
    }
}

/// Starts pod `name` under `runtime` running `workload`, and waits for its first line.
///
/// # Errors
///
/// The step that failed, with the pod if one was made.
pub fn start(
    cri: &mut CriClient,
    context: &PodContext,
    runtime: Runtime,
    name: &str,
    workload: Workload,
) -> Result<BenchPod, StartFailure> {
    let fail = |step, reason: String, pod: Option<CriPod>| StartFailure {
        step,
        reason,
        pod: pod.map(Box::new),
    };
    interrupt::check().map_err(|e| fail("start", e.to_string(), None))?;
    let builder = PodSandboxConfigBuilder::new(name)
        .namespace(POD_NAMESPACE)
        .annotation("lightpod.io/vcpus", &context.vcpus.to_string())
        .annotation("lightpod.io/memory-mib", &context.memory_mib.to_string());
    let container = workload.container("app");

    let began = SystemTime::now();
    let t0 = Instant::now();
    let pod = CriPod::run(cri, &context.socket, builder, runtime.handler())
        .map_err(|s| fail("RunPodSandbox", s.message().to_string(), None))?;
    let sandbox = t0.elapsed();

    let container_id = match pod.create_container(cri, &container) {
        Ok(id) => id,
        Err(s) => return Err(fail("CreateContainer", s.message().to_string(), Some(pod))),
    };
    let created = t0.elapsed();
    if let Err(s) = cri.start_container(&container_id) {
        return Err(fail("StartContainer", s.message().to_string(), Some(pod)));
    }
    let started = t0.elapsed();

    let log_file = pod.log_file(&container);
    let deadline = t0 + context.ready_timeout;
    let first = match wait_for_line(&log_file, READY_LINE, deadline, context.poll) {
        Ok(Some(time)) => time,
        Ok(None) => {
            let reason = format!("no {READY_LINE:?} within {:?}", context.ready_timeout);
            return Err(fail("first line", reason, Some(pod)));
        }
        Err(e) => return Err(fail("first line", e.to_string(), Some(pod))),
    };
    let first_line = first.duration_since(began).unwrap_or_default();
    Ok(BenchPod {
        runtime,
        pod,
        container_id,
        log_file,
        timing: StartTiming {
            began,
            sandbox,
            created,
            started,
            first_line,
        },
    })
}

/// Polls the CRI log at `path` until a complete stdout line equal to `line` is in it; the
/// time containerd logged it, or `None` past `deadline`.
///
/// # Errors
///
/// A signal interrupted the wait.
pub fn wait_for_line(
    path: &Path,
    line: &str,
    deadline: Instant,
    poll: Duration,
) -> Result<Option<SystemTime>, Interrupted> {
    let mut seen_len = None;
    loop {
        interrupt::check()?;
        // Only a file that grew is read again: polling stays a stat(2) per interval.
        let len = std::fs::metadata(path).map(|m| m.len()).ok();
        if len.is_some() && len != seen_len {
            seen_len = len;
            if let Some(time) = find_line(path, line) {
                return Ok(Some(time));
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(poll);
    }
}

/// The logged time of the first complete stdout line equal to `line` in the CRI log.
fn find_line(path: &Path, line: &str) -> Option<SystemTime> {
    let lines = log::read(path).ok()?;
    lines
        .iter()
        .find(|l| l.stream == LogStream::Stdout && !l.unfinished && l.content == line)
        .and_then(|l| parse_rfc3339(&l.time))
}

/// Stops and removes a pod; how long it took.
///
/// # Errors
///
/// The CRI call that failed.
pub fn remove(cri: &mut CriClient, pod: CriPod) -> Result<Duration, tonic::Status> {
    let t0 = Instant::now();
    pod.remove(cri)?;
    Ok(t0.elapsed())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_time_of_the_line_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(
            &path,
            "2024-05-01T10:00:00.100000000Z stderr F ready\n\
             2024-05-01T10:00:00.200000000Z stdout P rea\n\
             2024-05-01T10:00:00.300000000Z stdout F dy\n\
             2024-05-01T10:00:00.400000000Z stdout F ready\n",
        )
        .unwrap();
        let time = wait_for_line(&path, "ready", Instant::now(), Duration::from_millis(1))
            .unwrap()
            .unwrap();
        assert_eq!(
            time,
            parse_rfc3339("2024-05-01T10:00:00.200000000Z").unwrap(),
            "a line split in pieces counts from its first piece; stderr does not count"
        );
        let missing = wait_for_line(&path, "touched", Instant::now(), Duration::from_millis(1));
        assert_eq!(missing.unwrap(), None);
    }
}
