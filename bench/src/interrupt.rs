//! Ctrl-C, SIGTERM and SIGHUP: the first one asks the benchmark to stop after the CRI calls
//! in flight and to clean up (remove every pod it made, stop its containerd); a second one,
//! while the benchmark still measures, stops the private containerd from the signal thread
//! at once (which removes the pods through CRI too), sweeps lightpod's state directory and
//! exits. Once the benchmark's own clean-up began, further signals only ask for patience:
//! two clean-ups at once would trip over each other.
//!
//! The signals are blocked in every thread and taken by one thread with sigwait(2), so no
//! code runs in a signal handler. Children get an empty signal mask from `std::process`.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    thread,
    time::{Duration, Instant},
};

use nix::sys::signal::{SigSet, Signal};

/// Set by the first signal.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set when a clean-up began (the benchmark's own, or the forced one).
static CLEANING: AtomicBool = AtomicBool::new(false);
/// What the forced path cleans up, once containerd runs.
static CLEANUP: Mutex<Option<CleanupPaths>> = Mutex::new(None);

/// What a forced clean-up removes.
#[derive(Debug, Clone)]
pub struct CleanupPaths {
    /// The private containerd's directory.
    pub containerd_dir: PathBuf,
    /// lightpod's state directory, when the configuration names one.
    pub state_dir: Option<PathBuf>,
    /// The run's lock file.
    pub lock: PathBuf,
}

/// The benchmark was interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted")]
pub struct Interrupted;

/// Blocks SIGINT, SIGTERM and SIGHUP in this thread (and the threads it spawns later) and
/// starts the thread that takes them. Call it first in `main`, before any other thread.
///
/// # Errors
///
/// The signal mask could not be changed or the thread could not be spawned.
pub fn install() -> std::io::Result<()> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block().map_err(std::io::Error::from)?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(signal) = set.wait() else {
                continue;
            };
            if CLEANING.load(Ordering::SeqCst) {
                tracing::warn!(%signal, "cleaning up already: removing the pods, stopping containerd");
                continue;
            }
            if !INTERRUPTED.swap(true, Ordering::SeqCst) {
                tracing::warn!(
                    %signal,
                    "interrupted: finishing the calls in flight, then removing every pod and \
                     stopping containerd (again to force)"
                );
                continue;
            }
            force_stop(signal);
        })?;
    Ok(())
}

/// Records what a forced stop cleans up, once containerd runs.
pub fn containerd_started(paths: CleanupPaths) {
    *CLEANUP.lock().unwrap_or_else(|p| p.into_inner()) = Some(paths);
}

/// The benchmark's own clean-up begins: signals no longer force one.
pub fn cleaning_up() {
    CLEANING.store(true, Ordering::SeqCst);
}

/// Whether a signal asked the benchmark to stop.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// `Err(Interrupted)` once a signal came.
pub fn check() -> Result<(), Interrupted> {
    if interrupted() {
        Err(Interrupted)
    } else {
        Ok(())
    }
}

/// Sleeps for `duration`, waking early (with `Err`) when a signal comes.
pub fn sleep(duration: Duration) -> Result<(), Interrupted> {
    let deadline = Instant::now() + duration;
    loop {
        check()?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// The second signal: stop containerd (its pods go through CRI first), sweep the shims'
/// state directory, and exit.
fn force_stop(signal: Signal) -> ! {
    CLEANING.store(true, Ordering::SeqCst);
    let cleanup = CLEANUP.lock().unwrap_or_else(|p| p.into_inner()).clone();
    tracing::warn!(%signal, "interrupted again: stopping containerd now");
    if let Some(paths) = cleanup {
        if let Err(error) = lightpod_harness::containerd::stop(&paths.containerd_dir) {
            let dir = paths.containerd_dir.display();
            tracing::error!(dir = %dir, error = %error, "stopping containerd");
        }
        let swept = paths.state_dir.map(|d| crate::leftovers::sweep(&d));
        for item in swept.unwrap_or_default() {
            tracing::warn!(%item, "the pods left something behind");
        }
        let _ = std::fs::remove_file(&paths.lock);
        if let Some(parent) = paths.lock.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
    std::process::exit(130)
}
