//! The agent's log: `tracing` events on stderr, which is `/dev/console` in a guest.

use std::fmt;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::{format::Writer, time::FormatTime};

use crate::clock;

/// Stamps each line with the guest's uptime in seconds, as the kernel does, so agent lines
/// interleave readably with kernel messages on the console.
struct GuestUptime;

impl FormatTime for GuestUptime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        let ns = clock::boottime_ns();
        write!(
            w,
            "[{:5}.{:06}]",
            ns / 1_000_000_000,
            (ns % 1_000_000_000) / 1000
        )
    }
}

/// Installs the global subscriber. Called once, early in `main`.
pub fn init(level: LevelFilter) {
    let result = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_timer(GuestUptime)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    if let Err(err) = result {
        // A subscriber already exists (tests); keep it.
        tracing::debug!(%err, "log subscriber already installed");
    }
}
