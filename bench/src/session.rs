//! One run from start to end: images, a private containerd, the measures asked for, the
//! clean-up and the result files.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant, SystemTime},
};

use lightpod_harness::{
    containerd::{self, ContainerdOptions, PrivateContainerd},
    image::Images,
};

use crate::{
    error::BenchError,
    interrupt::{self, Interrupted},
    leftovers, machine,
    options::{Options, Scenario},
    phases,
    pod::PodContext,
    procfs,
    progress::Progress,
    report::{self, ResultFiles},
    results::{Results, Settings},
    runner::Bench,
    scenario::{self, density::DensityPlan},
};

/// The version of the JSON layout.
const SCHEMA: u32 = 1;

/// How a run ended.
#[derive(Debug)]
pub struct Outcome {
    /// Everything measured.
    pub results: Results,
    /// Where the results were written; `None` when a signal cut the run short (nothing is
    /// written then, so earlier results stay).
    pub files: Option<ResultFiles>,
    /// Whether the chart was drawn.
    pub chart: bool,
}

/// Runs the benchmark `options` describe.
///
/// # Errors
///
/// The images could not be built, containerd could not be started or stopped, or the
/// results could not be written. Pod failures are results, not errors.
pub fn run(options: &Options) -> Result<Outcome, BenchError> {
    let began = Instant::now();
    let host_cpu_before = procfs::host_cpu();
    let mut results = Results {
        schema: SCHEMA,
        started_at: rfc3339(SystemTime::now()),
        command: options.invoked_as.clone().unwrap_or_else(command_line),
        machine: machine::describe(),
        settings: settings(options),
        ..Default::default()
    };
    if options.lightpod_config.is_none() {
        tracing::warn!(
            "LIGHTPOD_CONFIG is not set: the lightpod shims use /etc/lightpod/config.toml"
        );
    }

    let lock = RunLock::take(&options.containerd_dir)?;
    let progress = Progress::new();
    progress.section("building the test images", 0);
    let images = Images::build(&options.image_cache).map_err(BenchError::BuildImages)?;
    progress.finish("done");
    let state_dir = options
        .lightpod_config
        .as_deref()
        .and_then(leftovers::state_dir_of);
    let containerd = start_containerd(options, &images, &progress)?;
    interrupt::containerd_started(interrupt::CleanupPaths {
        containerd_dir: containerd.dir().to_path_buf(),
        state_dir: state_dir.clone(),
        lock: lock.path.clone(),
    });

    let measured = measure(options, &containerd, progress, &mut results);
    results.machine.load_after = machine::load_average();
    results.machine.host_cpu_busy_percent = busy_since(host_cpu_before);

    interrupt::cleaning_up();
    let stopping = Instant::now();
    tracing::info!("stopping the private containerd");
    let stopped = containerd.stop().map_err(BenchError::StopContainerd);
    tracing::info!(
        elapsed_ms = stopping.elapsed().as_millis() as u64,
        "containerd stopped"
    );
    // Also after a failed stop: what the pods left in lightpod's state goes all the same.
    if let Some(state_dir) = &state_dir {
        results.leftovers = leftovers::sweep(state_dir);
        for item in &results.leftovers {
            tracing::warn!(%item, "the pods left something behind");
        }
    }
    stopped?;
    results.duration_secs = began.elapsed().as_secs_f64();
    if measured.is_err() {
        results.interrupted = true;
        return Ok(Outcome {
            results,
            files: None,
            chart: false,
        });
    }

    let files = ResultFiles::in_dir(&options.results_dir);
    report::write(&results, &files)?;
    let chart = report::draw_chart(
        &options.python,
        &options.chart_script,
        &files.json,
        &files.png,
    );
    Ok(Outcome {
        results,
        files: Some(files),
        chart,
    })
}

/// The measures asked for, in order; stops at the first interruption.
fn measure(
    options: &Options,
    containerd: &PrivateContainerd,
    progress: Progress,
    results: &mut Results,
) -> Result<(), Interrupted> {
    let cri = containerd.cri().map_err(|error| {
        tracing::error!(%error, "cannot reach the private containerd's CRI");
        Interrupted
    })?;
    let mut bench = Bench {
        context: PodContext {
            socket: containerd.address().to_path_buf(),
            vcpus: options.vcpus,
            memory_mib: options.vm_memory_mib,
            ready_timeout: Duration::from_secs(options.ready_timeout_secs),
            poll: Duration::from_millis(options.poll_ms.max(1)),
        },
        containerd_log: containerd.log_file(),
        progress,
        cri,
        removers: options.removers,
    };
    let outcome = each_scenario(options, &mut bench, results);
    results.machine.accelerator = bench
        .shim_log()
        .ready
        .values()
        .find_map(|r| r.accelerator.clone());
    outcome
}

fn each_scenario(
    options: &Options,
    bench: &mut Bench,
    results: &mut Results,
) -> Result<(), Interrupted> {
    for scenario in &options.scenarios {
        interrupt::check()?;
        let stop = match scenario {
            Scenario::Latency => {
                let (latency, samples, stop) = scenario::latency::run(bench, options.pods());
                results.latency = Some(latency);
                results.phases = phases::of(&samples, &bench.shim_log());
                stop
            }
            Scenario::Parallel => {
                let mut stop = None;
                for n in options.parallel() {
                    let (run, interrupted) = scenario::parallel::run(bench, n);
                    results.parallel.push(run);
                    if interrupted.is_some() {
                        stop = interrupted;
                        break;
                    }
                }
                stop
            }
            Scenario::Memory => {
                let (memory, stop) =
                    scenario::memory::run(bench, options.memory_pods(), options.settle());
                results.memory = Some(memory);
                stop
            }
            Scenario::Density => {
                let plan = DensityPlan {
                    limit: options.density(),
                    concurrency: options.density_concurrency,
                    max_failures: options.density_max_failures,
                    settle: options.settle(),
                    window: options.idle_window(),
                    min_available_mib: options.min_available_mib,
                    max_idle_cpu_percent: options.max_idle_cpu_percent,
                };
                let (density, stop) = scenario::density::run(bench, &plan);
                results.density = Some(density);
                stop
            }
        };
        if let Some(stop) = stop {
            return Err(stop);
        }
    }
    Ok(())
}

/// The lock that keeps two runs from sharing a containerd directory: `<dir>.lock`, held
/// (flock) for the run and removed at its end. Whoever holds it may stop what an earlier
/// run left in the directory, since that run is gone.
struct RunLock {
    path: PathBuf,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl RunLock {
    fn take(containerd_dir: &Path) -> Result<RunLock, BenchError> {
        let mut name = containerd_dir.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let error = |source| BenchError::Lock {
            path: path.clone(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(error)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(error)?;
        let lock = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| error(std::io::Error::from(errno)))?;
        Ok(RunLock { path, _lock: lock })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(parent) = self.path.parent() {
            // Only when empty: the directory may hold other things.
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Stops what an earlier run left in the directory, then starts the private containerd.
fn start_containerd(
    options: &Options,
    images: &Images,
    progress: &Progress,
) -> Result<PrivateContainerd, BenchError> {
    let dir = &options.containerd_dir;
    if dir.exists() {
        tracing::warn!(dir = %dir.display(), "an earlier run left a containerd; stopping it");
        containerd::stop(dir).map_err(|source| BenchError::StopEarlier {
            dir: dir.clone(),
            source,
        })?;
    }
    progress.section("starting the private containerd", 0);
    let mut start = ContainerdOptions::new(dir);
    start.shim_dir = Some(options.shim_dir.clone().unwrap_or_else(own_dir));
    start.bridge = options.bridge.clone();
    start.subnet = options.subnet;
    start.images = images.all().into_iter().cloned().collect();
    let containerd = PrivateContainerd::start(&start).map_err(BenchError::StartContainerd)?;
    progress.finish(&format!("up, log {}", containerd.log_file().display()));
    Ok(containerd)
}

fn settings(options: &Options) -> Settings {
    Settings {
        pods: options.pods(),
        parallel: options.parallel(),
        density: options.density(),
        memory_pods: options.memory_pods(),
        vcpus: options.vcpus,
        vm_memory_mib: options.vm_memory_mib,
        settle_secs: options.settle().as_secs_f64(),
        idle_window_secs: options.idle_window().as_secs_f64(),
        poll_ms: options.poll_ms,
        min_available_mib: options.min_available_mib,
        max_idle_cpu_percent: options.max_idle_cpu_percent,
    }
}

/// The busy share of all CPUs since `before`, in percent.
fn busy_since(before: Option<procfs::HostCpu>) -> Option<f64> {
    let (before, after) = (before?, procfs::host_cpu()?);
    let total = after.total.checked_sub(before.total).filter(|t| *t > 0)?;
    Some(after.busy.saturating_sub(before.busy) as f64 / total as f64 * 100.0)
}

/// The directory of this binary, where the build put the shim too.
fn own_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."))
}

fn command_line() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

/// `time` as RFC 3339 UTC, to the second.
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The date of a count of days since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::shimlog::parse_rfc3339;

    #[test]
    fn times_round_trip_through_rfc3339() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-02-29T23:59:59Z",
            "2031-12-31T00:00:01Z",
        ] {
            assert_eq!(rfc3339(parse_rfc3339(text).unwrap()), text);
        }
    }
}
