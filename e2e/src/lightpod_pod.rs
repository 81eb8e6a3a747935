//! Checks of what a lightpod pod holds on the host: its sandbox state, its VM's processes,
//! and that nothing of them is left once the pod is removed.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use crate::{containerd::mounts_mentioning, leaks::processes_mentioning};

/// Where the shims of the run keep the state of CRI pods (`<state dir>/k8s.io`).
pub fn cri_state_dir() -> PathBuf {
    let base = std::env::var_os(crate::shim::STATE_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "{} is not set: run with e2e/run.sh",
                crate::shim::STATE_DIR_ENV
            )
        });
    base.join("k8s.io")
}

/// The state directory of the lightpod pod `pod_id` (ids are cut to 32 characters).
pub fn sandbox_dir(pod_id: &str) -> PathBuf {
    cri_state_dir()
        .join("sandboxes")
        .join(&pod_id[..pod_id.len().min(32)])
}

/// Host pid of the QEMU process of pod `pod_id`, if it runs.
pub fn vmm_pid(pod_id: &str) -> Option<i32> {
    let name = format!("-name lightpod-{}", &pod_id[..pod_id.len().min(32)]);
    crate::shim::pids_matching(&["qemu-system", &name])
        .first()
        .copied()
}

/// Waits (up to 30 s) until nothing of pod `pod_id` is left on the host: no process, mount
/// or state of its sandbox.
pub fn assert_pod_gone(pod_id: &str) {
    let dir = sandbox_dir(pod_id);
    let needle = dir.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let procs = processes_mentioning(&needle);
        let mounts = mounts_mentioning(&needle);
        let exists = dir.exists();
        if procs.is_empty() && mounts.is_empty() && !exists {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod_id} left: processes {procs:#?}, mounts {mounts:#?}, state dir {} {}",
            dir.display(),
            if exists { "exists" } else { "gone" }
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (up to 30 s) until every sandbox directory of the CRI state belongs to a pod that
/// CRI still lists: a failed RunPodSandbox must leave none behind.
pub fn assert_no_orphan_sandboxes(cri: &mut lightpod_harness::cri::CriClient) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live: Vec<String> = cri
            .list_pod_sandboxes(None)
            .expect("ListPodSandbox")
            .into_iter()
            .map(|p| p.id[..p.id.len().min(32)].to_string())
            .collect();
        let orphans: Vec<String> = std::fs::read_dir(cri_state_dir().join("sandboxes"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !live.contains(name))
            .collect();
        if orphans.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox state without a pod: {orphans:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
