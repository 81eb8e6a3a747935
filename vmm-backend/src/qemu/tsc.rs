//! The host's TSC frequency, which TCG guests are told through `tsc_early_khz=`.
//!
//! Under TCG the guest's `rdtsc` returns the host's TSC, so its rate is the host's. Debian's
//! cloud kernel otherwise calibrates the TSC against the emulated PIT and hangs in about one
//! boot in three. The frequency is measured against `CLOCK_MONOTONIC` (robust against
//! `cpu MHz` showing a scaled core clock), and `/proc/cpuinfo` is only the fallback.

use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

/// Host TSC frequency in kHz, measured once per process.
pub fn host_tsc_khz() -> Option<u64> {
    static KHZ: OnceLock<Option<u64>> = OnceLock::new();
    *KHZ.get_or_init(|| {
        let measured = measure_khz();
        let khz = measured.or_else(|| {
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
            cpuinfo_khz(&cpuinfo)
        });
        tracing::debug!(?measured, ?khz, "host TSC frequency");
        khz
    })
}

/// Measures the TSC over three 5 ms windows and takes the median.
fn measure_khz() -> Option<u64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let mut samples: Vec<u64> = (0..3)
        .filter_map(|_| sample_khz(Duration::from_millis(5)))
        .collect();
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied()
}

#[cfg(target_arch = "x86_64")]
fn sample_khz(window: Duration) -> Option<u64> {
    let start = Instant::now();
    let tsc_start = rdtsc();
    while start.elapsed() < window {
        std::hint::spin_loop();
    }
    let tsc_end = rdtsc();
    let elapsed_ns = u64::try_from(start.elapsed().as_nanos()).ok()?;
    let ticks = tsc_end.checked_sub(tsc_start)?;
    let khz = u128::from(ticks) * 1_000_000 / u128::from(elapsed_ns.max(1));
    // Below 100 MHz or above 10 GHz is a broken TSC, not a frequency.
    u64::try_from(khz)
        .ok()
        .filter(|k| (100_000..10_000_000).contains(k))
}

#[cfg(not(target_arch = "x86_64"))]
fn sample_khz(_window: Duration) -> Option<u64> {
    None
}

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86_64 CPU implements it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// `cpu MHz` of the first CPU in `/proc/cpuinfo`, in kHz.
fn cpuinfo_khz(cpuinfo: &str) -> Option<u64> {
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split_once(':')?
        .1
        .trim()
        .parse()
        .ok()?;
    let khz = (mhz * 1000.0).round();
    (khz >= 1.0).then_some(khz as u64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_fallback_parses_mhz() {
        let text = "processor\t: 0\ncpu MHz\t\t: 2596.094\nflags\t: tsc\n";
        assert_eq!(cpuinfo_khz(text), Some(2_596_094));
        assert_eq!(cpuinfo_khz("processor\t: 0\n"), None, "no cpu MHz line");
    }

    #[test]
    fn measured_frequency_is_plausible() {
        let khz = host_tsc_khz().expect("an x86_64 host has a TSC");
        assert!((100_000..10_000_000).contains(&khz), "{khz} kHz");
    }
}
