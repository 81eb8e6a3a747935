//! Ctrl-C, SIGTERM and SIGHUP: the first one asks the benchmark to stop after the CRI calls
//! in flight and to clean up (remove every pod it made, stop its containerd); a second one
//! stops the private containerd from the signal thread at once (which removes the pods
//! through CRI too) and exits.
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
/// The private containerd the forced path stops, once it runs.
static CONTAINERD_DIR: Mutex<Option<PathBuf>> = Mutex::new(None);

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

/// Records the directory of the private containerd, for the forced stop.
pub fn containerd_started(dir: PathBuf) {
    *CONTAINERD_DIR.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir);
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

/// The second signal: stop containerd (its pods go through CRI first) and exit.
fn force_stop(signal: Signal) -> ! {
    let dir = CONTAINERD_DIR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    tracing::warn!(%signal, "interrupted again: stopping containerd now");
    if let Some(dir) = dir {
        if let Err(error) = lightpod_harness::containerd::stop(&dir) {
            tracing::error!(dir = %dir.display(), error = %error, "stopping containerd");
        }
    }
    std::process::exit(130)
}
