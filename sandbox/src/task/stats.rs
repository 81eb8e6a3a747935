//! A task's resource figures, read from its container's cgroup inside the guest.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lightpod_proto::agent as pb;

/// CPU, memory and pids figures of one container, as the guest's cgroup reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskStats {
    /// When the figures were read (guest clock).
    pub timestamp: SystemTime,
    /// CPU time used, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// Of which in user mode.
    pub cpu_user_ns: u64,
    /// Of which in kernel mode.
    pub cpu_system_ns: u64,
    /// Memory charged to the container, in bytes.
    pub memory_usage_bytes: u64,
    /// Its memory limit in bytes (the guest's memory when unlimited).
    pub memory_limit_bytes: u64,
    /// Usage minus inactive file pages: what kubelet calls the working set.
    pub memory_working_set_bytes: u64,
    /// Anonymous memory.
    pub memory_rss_bytes: u64,
    /// Page cache.
    pub memory_cache_bytes: u64,
    /// Processes in the container.
    pub pids_current: u64,
    /// Its pids limit (0: unlimited).
    pub pids_limit: u64,
    /// OOM kills so far.
    pub oom_kills: u64,
}

impl From<&pb::ContainerStats> for TaskStats {
    fn from(stats: &pb::ContainerStats) -> TaskStats {
        TaskStats {
            timestamp: UNIX_EPOCH + Duration::from_nanos(stats.timestamp_ns),
            cpu_usage_ns: stats.cpu_usage_ns,
            cpu_user_ns: stats.cpu_user_ns,
            cpu_system_ns: stats.cpu_system_ns,
            memory_usage_bytes: stats.memory_usage_bytes,
            memory_limit_bytes: stats.memory_limit_bytes,
            memory_working_set_bytes: stats.memory_working_set_bytes,
            memory_rss_bytes: stats.memory_rss_bytes,
            memory_cache_bytes: stats.memory_cache_bytes,
            pids_current: stats.pids_current,
            pids_limit: stats.pids_limit,
            oom_kills: stats.oom_kills,
        }
    }
}
