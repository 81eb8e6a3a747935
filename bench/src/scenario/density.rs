//! Density: pods of one runtime kept running at once, added in steps up to a limit; at each
//! checkpoint, once they settled, the PSS of all their processes, the fall of the host's
//! MemAvailable, and the CPU their processes use while idle. A runtime stops early when a
//! few pods failed to start, the host's MemAvailable falls below a floor, or the idle pods use
//! more than a set share of the host's CPUs.

use std::time::Duration;

use crate::{
    footprint::PodFootprint,
    interrupt::{self, Interrupted},
    pod::BenchPod,
    procfs::{self, ProcessTable},
    results::{Density, DensityPoint, DensityRun},
    runner::Bench,
    scenario::memory::mib,
    workload::{Runtime, Workload},
};

/// What a density measure is asked to do.
#[derive(Debug, Clone)]
pub struct DensityPlan {
    /// Pods per runtime at most.
    pub limit: usize,
    /// Pods started at once while climbing to a checkpoint.
    pub concurrency: usize,
    /// Rest before a checkpoint is measured.
    pub settle: Duration,
    /// The window over which idle CPU is measured.
    pub window: Duration,
    /// The climb ends after this many failed starts.
    pub max_failures: usize,
    /// No more pods once the host's MemAvailable is below this, in MiB.
    pub min_available_mib: u64,
    /// No more pods once the idle pods use more than this share of all the host's CPUs, in
    /// percent: beyond it the idle pods alone crowd out the machine's work.
    pub max_idle_cpu_percent: f64,
}

/// The checkpoints up to `limit`: 1, 5, 10, 25, 50, 75, 100, then every 50, and `limit`.
pub fn checkpoints(limit: usize) -> Vec<usize> {
    let mut points: Vec<usize> = [1, 5, 10, 25, 50, 75]
        .into_iter()
        .chain((100..).step_by(50))
        .take_while(|p| *p < limit)
        .collect();
    if limit > 0 {
        points.push(limit);
    }
    points
}

/// Runs the plan for each runtime, runc first.
pub fn run(bench: &Bench, plan: &DensityPlan) -> (Density, Option<Interrupted>) {
    let mut density = Density {
        limit: plan.limit,
        ..Default::default()
    };
    for runtime in Runtime::BOTH {
        let mut pods = Vec::new();
        let mut run = DensityRun::default();
        let outcome = climb(bench, runtime, plan, &mut pods, &mut run);
        run.reached = pods
            .iter()
            .filter(|p| matches!(p, Slot::Running(_)))
            .count();
        let made = pods.into_iter().flat_map(Slot::into_pod).collect();
        let failed = bench.remove_all(made, &format!("removing the {runtime} density pods"));
        if failed > 0 {
            tracing::warn!(failed, "density pods were not removed");
        }
        density.runs.insert(runtime.to_string(), run);
        if let Err(interrupted) = outcome {
            return (density, Some(interrupted));
        }
    }
    (density, None)
}

/// A pod made by the climb: running, or failed with a pod to remove.
enum Slot {
    Running(BenchPod),
    Failed(Option<lightpod_harness::cri::CriPod>),
}

impl Slot {
    fn into_pod(self) -> Option<lightpod_harness::cri::CriPod> {
        match self {
            Slot::Running(pod) => Some(pod.pod),
            Slot::Failed(pod) => pod,
        }
    }
}

fn climb(
    bench: &Bench,
    runtime: Runtime,
    plan: &DensityPlan,
    pods: &mut Vec<Slot>,
    run: &mut DensityRun,
) -> Result<(), Interrupted> {
    let baseline = procfs::host_memory().map(|m| m.available_kib).unwrap_or(0);
    let floor_kib = plan.min_available_mib * 1024;
    let guard = move || {
        let available = procfs::host_memory()?.available_kib;
        (available < floor_kib).then(|| {
            format!(
                "host MemAvailable {} MiB is below the floor of {} MiB",
                available / 1024,
                floor_kib / 1024
            )
        })
    };
    run.stopped = "the limit".into();
    let mut named = 0;
    for checkpoint in checkpoints(plan.limit) {
        let running = pods
            .iter()
            .filter(|p| matches!(p, Slot::Running(_)))
            .count();
        bench.progress.section(
            &format!("density {runtime}: climbing to {checkpoint} pods"),
            checkpoint - running,
        );
        // A failed start does not end the climb until the failure budget is spent: the
        // next round starts pods in its place.
        let mut stopped = None;
        while stopped.is_none() {
            let running = pods
                .iter()
                .filter(|p| matches!(p, Slot::Running(_)))
                .count();
            if running >= checkpoint || interrupt::interrupted() {
                break;
            }
            let names: Vec<String> = (running..checkpoint)
                .map(|_| {
                    named += 1;
                    format!("density-{runtime}-{named}")
                })
                .collect();
            let budget = plan.max_failures.saturating_sub(run.failed).max(1);
            let started = bench.start_many(
                runtime,
                names,
                Workload::Ready,
                plan.concurrency,
                budget,
                &guard,
            );
            stopped = started.stopped.clone();
            run.failed += started.failures.len();
            for failure in &started.failures {
                let reason = failure.to_string();
                if run.errors.len() < 5 && !run.errors.contains(&reason) {
                    run.errors.push(reason);
                }
            }
            pods.extend(started.pods.into_iter().map(Slot::Running));
            pods.extend(
                started
                    .failures
                    .into_iter()
                    .map(|f| Slot::Failed(f.pod.map(|p| *p))),
            );
        }
        let running = pods
            .iter()
            .filter(|p| matches!(p, Slot::Running(_)))
            .count();
        bench.progress.finish(&format!("{running} pods"));
        interrupt::check()?;

        let running: Vec<&BenchPod> = pods
            .iter()
            .filter_map(|p| match p {
                Slot::Running(pod) => Some(pod),
                Slot::Failed(_) => None,
            })
            .collect();
        if !running.is_empty() {
            bench.progress.section(
                &format!("density {runtime}: {} pods idle, measuring", running.len()),
                0,
            );
            let point = measure(bench, &running, baseline, plan)?;
            bench.progress.finish(&format!(
                "{:.1} MiB per pod, pods' CPU {:.1} %",
                point.pss_per_pod_mib, point.pods_cpu_percent
            ));
            let share = point.pods_cpu_percent / cores() as f64;
            run.points.push(point);
            if share > plan.max_idle_cpu_percent && stopped.is_none() {
                run.stopped = format!(
                    "the idle pods' CPU: {share:.0} % of all {} CPUs, over the ceiling of {:.0} %",
                    cores(),
                    plan.max_idle_cpu_percent
                );
                break;
            }
        }
        if let Some(reason) = stopped {
            run.stopped = reason;
            break;
        }
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The cost of the running pods, after they settled.
fn measure(
    bench: &Bench,
    pods: &[&BenchPod],
    baseline_available_kib: u64,
    plan: &DensityPlan,
) -> Result<DensityPoint, Interrupted> {
    interrupt::sleep(plan.settle)?;
    let address = &bench.context.socket;
    let table = ProcessTable::read();
    let footprints: Vec<PodFootprint> = pods
        .iter()
        .filter_map(|p| PodFootprint::of(&table, &p.pod.id, address))
        .collect();
    let available = procfs::host_memory().map(|m| m.available_kib).unwrap_or(0);

    let cpu_before: u64 = footprints.iter().map(PodFootprint::cpu_ticks).sum();
    let host_before = procfs::host_cpu();
    interrupt::sleep(plan.window)?;
    let cpu_after: u64 = footprints.iter().map(PodFootprint::cpu_ticks).sum();
    let host_after = procfs::host_cpu();

    let ticks = procfs::ticks_per_second() as f64 * plan.window.as_secs_f64();
    let pods_cpu_percent = cpu_after.saturating_sub(cpu_before) as f64 / ticks * 100.0;
    let host_cpu_busy_percent = match (host_before, host_after) {
        (Some(a), Some(b)) if b.total > a.total => {
            b.busy.saturating_sub(a.busy) as f64 / (b.total - a.total) as f64 * 100.0
        }
        _ => 0.0,
    };
    let pss_total_mib: f64 = footprints.iter().map(|f| mib(f.total.pss_kib)).sum();
    Ok(DensityPoint {
        pods: pods.len(),
        pss_total_mib,
        pss_per_pod_mib: pss_total_mib / footprints.len().max(1) as f64,
        host_used_mib: mib(baseline_available_kib.saturating_sub(available)),
        pods_cpu_percent,
        host_cpu_busy_percent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_climb_to_the_limit() {
        let cases: [(usize, &[usize]); 6] = [
            (0, &[]),
            (1, &[1]),
            (3, &[1, 3]),
            (30, &[1, 5, 10, 25, 30]),
            (100, &[1, 5, 10, 25, 50, 75, 100]),
            (220, &[1, 5, 10, 25, 50, 75, 100, 150, 200, 220]),
        ];
        for (limit, want) in cases {
            assert_eq!(checkpoints(limit), want, "limit {limit}");
        }
    }
}
