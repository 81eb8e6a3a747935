//! Conversions between the shim v2 protobuf messages and lightpod's own types, at the edge.

use containerd_shim::protos::ttrpc;
use std::time::{SystemTime, UNIX_EPOCH};

use containerd_shim::protos::{
    api::Status,
    cgroups_v2::metrics::{CPUStat, MemoryEvents, MemoryStat, Metrics, PidsStat},
    protobuf::{well_known_types::timestamp::Timestamp, MessageField},
};
use lightpod_sandbox::{
    task::{ProcessState, RootfsMount, TaskStats},
    ProcessSpec, ResourceSpec,
};

use crate::error::invalid;

/// A protobuf timestamp of a wall-clock time.
pub fn timestamp(time: SystemTime) -> MessageField<Timestamp> {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut ts = Timestamp::new();
    ts.seconds = since.as_secs() as i64;
    ts.nanos = since.subsec_nanos() as i32;
    MessageField::some(ts)
}

/// containerd's status of a process state.
pub fn status(state: ProcessState) -> Status {
    match state {
        ProcessState::Created => Status::CREATED,
        ProcessState::Running => Status::RUNNING,
        ProcessState::Paused => Status::PAUSED,
        ProcessState::Stopped => Status::STOPPED,
    }
}

/// The rootfs mounts of a `CreateTaskRequest`.
pub fn rootfs(mounts: &[containerd_shim::protos::types::mount::Mount]) -> Vec<RootfsMount> {
    mounts
        .iter()
        .map(|m| RootfsMount {
            fs_type: m.type_.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        })
        .collect()
}

/// The OCI process (JSON in an `Any`) of an `ExecProcessRequest`.
pub fn exec_process(value: &[u8]) -> Result<ProcessSpec, ttrpc::Error> {
    let process: oci_spec::runtime::Process = serde_json::from_slice(value)
        .map_err(|e| invalid(format!("exec process spec is not an OCI process: {e}")))?;
    ProcessSpec::from_oci(&process).map_err(|e| invalid(format!("exec process spec: {e}")))
}

/// The OCI `linux.resources` (JSON in an `Any`) of an `UpdateTaskRequest`.
pub fn resources(value: &[u8]) -> Result<ResourceSpec, ttrpc::Error> {
    let resources: oci_spec::runtime::LinuxResources = serde_json::from_slice(value)
        .map_err(|e| invalid(format!("update resources are not OCI linux.resources: {e}")))?;
    Ok(ResourceSpec::from_oci(&resources))
}

/// A task's figures as cgroup v2 metrics, which `ctr task metrics` and the CRI plugin read.
/// The guest's cgroups are v2 whatever the host runs.
pub fn metrics(stats: &TaskStats) -> Metrics {
    let mut cpu = CPUStat::new();
    cpu.usage_usec = stats.cpu_usage_ns / 1000;
    cpu.user_usec = stats.cpu_user_ns / 1000;
    cpu.system_usec = stats.cpu_system_ns / 1000;

    let mut memory = MemoryStat::new();
    memory.usage = stats.memory_usage_bytes;
    memory.usage_limit = stats.memory_limit_bytes;
    memory.anon = stats.memory_rss_bytes;
    memory.file = stats.memory_cache_bytes;
    // containerd derives the working set as usage - inactive_file.
    memory.inactive_file = stats
        .memory_usage_bytes
        .saturating_sub(stats.memory_working_set_bytes);

    let mut pids = PidsStat::new();
    pids.current = stats.pids_current;
    pids.limit = stats.pids_limit;

    let mut events = MemoryEvents::new();
    events.oom_kill = stats.oom_kills;

    let mut metrics = Metrics::new();
    metrics.cpu = MessageField::some(cpu);
    metrics.memory = MessageField::some(memory);
    metrics.pids = MessageField::some(pids);
    metrics.memory_events = MessageField::some(events);
    metrics
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_keep_the_working_set() {
        let stats = TaskStats {
            timestamp: UNIX_EPOCH,
            cpu_usage_ns: 5_000_000,
            cpu_user_ns: 3_000_000,
            cpu_system_ns: 2_000_000,
            memory_usage_bytes: 100,
            memory_limit_bytes: 1000,
            memory_working_set_bytes: 70,
            memory_rss_bytes: 60,
            memory_cache_bytes: 40,
            pids_current: 3,
            pids_limit: 0,
            oom_kills: 1,
        };
        let m = metrics(&stats);
        assert_eq!(m.cpu.usage_usec, 5000);
        assert_eq!(m.memory.usage - m.memory.inactive_file, 70, "working set");
        assert_eq!(m.pids.current, 3);
        assert_eq!(m.memory_events.oom_kill, 1);
    }

    #[test]
    fn exec_specs_and_resources_are_validated() {
        let ok = br#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0}}"#;
        assert_eq!(exec_process(ok).expect("valid").args, vec!["sh"]);
        let relative = br#"{"args":["sh"],"cwd":"tmp","user":{"uid":0,"gid":0}}"#;
        let err = exec_process(relative).expect_err("relative cwd");
        assert!(err.to_string().contains("process.cwd"), "{err}");
        assert!(exec_process(b"not json").is_err());
        let limits = br#"{"memory":{"limit":1048576},"cpu":{"quota":50000,"period":100000}}"#;
        let spec = resources(limits).expect("valid resources");
        assert_eq!(spec.memory_limit_bytes, 1_048_576);
        assert_eq!(spec.cpu_quota_us, 50_000);
    }
}
