//! `GetGuestInfo`, `MountStorage`, `Shutdown`.

use std::{sync::Arc, time::Duration};

use lightpod_proto::agent as pb;

use crate::{
    boot::power, clock, container::registry::Containers, convert, error::AgentResult,
    service::BootTimes, storage,
};

/// How long `Shutdown` waits before acting, so its answer leaves the guest first.
const ANSWER_DELAY: Duration = Duration::from_millis(100);

/// Identity, timings and size of the guest.
pub fn guest_info(boot: &BootTimes) -> pb::GuestInfo {
    let mut info = pb::GuestInfo::new();
    info.api_version = lightpod_proto::API_VERSION;
    info.agent_version = env!("CARGO_PKG_VERSION").to_string();
    info.kernel_release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    info.boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    info.agent_start_ns = boot.agent_start_ns;
    info.agent_ready_ns = boot.agent_ready_ns.get().copied().unwrap_or_default();
    info.uptime_ns = clock::boottime_ns();
    info.vcpus = nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .map_or(0, |n| n as u32);
    info.memory_bytes = nix::sys::sysinfo::sysinfo().map_or(0, |s| s.ram_total());
    info
}

/// Mounts a storage at a guest path.
pub async fn mount_storage(req: &pb::MountStorageRequest) -> AgentResult<pb::Empty> {
    let spec = convert::storage(req)?;
    storage::mount(&spec).await?;
    Ok(pb::Empty::new())
}

/// Powers off shortly after the answer has gone.
pub fn schedule_shutdown(containers: Arc<Containers>) {
    tokio::spawn(async move {
        tokio::time::sleep(ANSWER_DELAY).await;
        power::shutdown(&containers).await;
    });
}
