//! Powering the guest off: on request (`Shutdown`) and on a fatal error of PID 1.

use std::time::Duration;

use nix::{
    sys::{
        reboot::{reboot, RebootMode},
        signal::{kill, Signal},
    },
    unistd::{sync, Pid},
};

use crate::container::registry::Containers;

/// How long processes get between SIGTERM and SIGKILL at shutdown.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Whether this process is the guest's init.
pub fn is_pid1() -> bool {
    std::process::id() == 1
}

/// Syncs and powers the guest off. PID 1 must never exit (the kernel would panic), so if the
/// power-off fails this parks forever.
pub fn power_off() -> ! {
    sync();
    let Err(err) = reboot(RebootMode::RB_POWER_OFF);
    tracing::error!(%err, "power-off failed; halting here");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Ends the agent after a fatal error: powers off as PID 1, exits with status 1 otherwise.
pub fn fatal(what: &str, err: &dyn std::error::Error) -> ! {
    tracing::error!(error = %crate::error::chain(err), "fatal: {what}; powering off");
    if is_pid1() {
        power_off();
    }
    std::process::exit(1);
}

/// Stops everything and powers off (as PID 1), or kills the containers' processes and exits
/// (development).
pub async fn shutdown(containers: &Containers) -> ! {
    sync();
    if !is_pid1() {
        for container in containers.all() {
            let _ = container.cgroup().kill_all();
        }
        tracing::info!("shutdown requested; exiting (not PID 1, the host keeps running)");
        std::process::exit(0);
    }

    tracing::info!("shutdown requested; stopping every process");
    // As PID 1, pid -1 means every process but us.
    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + TERM_GRACE;
    while user_processes_left() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    unmount_everything();
    tracing::info!("powering off");
    power_off();
}

/// Whether any process but us and the kernel's threads is left. Kernel threads are kthreadd
/// (pid 2) and its children; `kill(-1, 0)` cannot tell, since it counts them too.
fn user_processes_left() -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            return false;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        pid > 2 && parent_of(&stat).is_some_and(|ppid| ppid != 2)
    })
}

/// The parent pid in a `/proc/<pid>/stat` line (the field after the parenthesised name).
fn parent_of(stat: &str) -> Option<u32> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}

/// Lazily unmounts every mount but `/`, deepest first, so caches reach the disks.
fn unmount_everything() {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    points.reverse();
    for point in points.into_iter().filter(|p| *p != "/") {
        let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
    }
    sync();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_pid_survives_odd_process_names() {
        assert_eq!(parent_of("42 (sh) S 1 42 42 0 -1"), Some(1));
        assert_eq!(
            parent_of("7 (a) b) (c) R 2 0 0"),
            Some(2),
            "names may hold parentheses"
        );
        assert_eq!(parent_of("garbage"), None);
    }
}
