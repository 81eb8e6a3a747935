//! Guest clocks in nanoseconds, as the agent API reports them.

use std::time::{SystemTime, UNIX_EPOCH};

/// `CLOCK_BOOTTIME` in nanoseconds: time since the guest kernel started, suspend included.
pub fn boottime_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux the
    // agent runs on, so the call cannot fail on a bad clock id.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `CLOCK_REALTIME` in nanoseconds since the Unix epoch (0 if the clock is before it).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_is_monotonic_and_nonzero() {
        let a = boottime_ns();
        let b = boottime_ns();
        assert!(a > 0, "CLOCK_BOOTTIME reads 0");
        assert!(b >= a, "CLOCK_BOOTTIME went backwards: {a} then {b}");
    }
}
