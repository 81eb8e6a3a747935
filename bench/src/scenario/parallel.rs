//! N pods started at once: N threads, each with its own CRI connection, released together;
//! the time from the release until the last pod printed its first line, and how many
//! failed. One runtime at a time, runc first; the batch is removed before the next.

use std::{
    sync::{Barrier, Mutex},
    thread,
    time::{Duration, SystemTime},
};

use lightpod_harness::cri::{CriClient, CriPod};

use crate::{
    interrupt::{self, Interrupted},
    pod::{self, BenchPod, StartFailure},
    results::{ParallelOutcome, ParallelRun},
    runner::Bench,
    stats::Summary,
    workload::{Runtime, Workload},
};

/// How often each of the N threads polls its pod's CRI log: slower than one pod at a time,
/// so N pollers do not take CPU from the guests; the first line's time is the one logged
/// with it, so the interval does not count.
const PARALLEL_POLL: Duration = Duration::from_millis(50);
/// Distinct failure reasons kept per batch.
const MAX_ERRORS: usize = 5;
/// Rest between batches, so the removal of one does not weigh on the next.
const REST: Duration = Duration::from_secs(3);

/// Starts `n` pods at once under each runtime.
pub fn run(bench: &Bench, n: usize) -> (ParallelRun, Option<Interrupted>) {
    let mut run = ParallelRun {
        n,
        ..Default::default()
    };
    for runtime in Runtime::BOTH {
        let (outcome, pods) = batch(bench, runtime, n);
        let failed = bench.remove_all(pods, &format!("removing the {n} {runtime} pods"));
        if failed > 0 {
            tracing::warn!(failed, "pods of a parallel start were not removed");
        }
        match runtime {
            Runtime::Runc => run.runc = Some(outcome),
            Runtime::Lightpod => run.lightpod = Some(outcome),
        }
        if let Err(interrupted) = interrupt::sleep(REST) {
            run.compare();
            return (run, Some(interrupted));
        }
    }
    run.compare();
    (run, None)
}

/// One batch: the outcome, and the pods to remove.
fn batch(bench: &Bench, runtime: Runtime, n: usize) -> (ParallelOutcome, Vec<CriPod>) {
    let mut context = bench.context.clone();
    context.poll = PARALLEL_POLL;
    let context = &context;
    let barrier = Barrier::new(n + 1);
    let results: Mutex<Vec<Result<BenchPod, StartFailure>>> = Mutex::new(Vec::new());
    bench
        .progress
        .section(&format!("{n} {runtime} pods started at once"), n);
    let released = thread::scope(|scope| {
        for i in 0..n {
            let (barrier, results) = (&barrier, &results);
            scope.spawn(move || {
                let cri = CriClient::connect(&context.socket);
                barrier.wait();
                let result = match cri {
                    Ok(mut cri) => {
                        let name = format!("parallel{n}-{runtime}-{i}");
                        pod::start(&mut cri, context, runtime, &name, Workload::Ready)
                    }
                    Err(error) => Err(StartFailure {
                        step: "connect",
                        reason: error.to_string(),
                        pod: None,
                    }),
                };
                let detail = match &result {
                    Ok(pod) => format!("{:.1} s", pod.timing.first_line.as_secs_f64()),
                    Err(failure) => format!("failed: {failure}"),
                };
                bench.progress.advance(&detail);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(result);
            });
        }
        barrier.wait();
        SystemTime::now()
    });

    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut outcome = ParallelOutcome::default();
    let mut pods = Vec::new();
    let mut per_pod = Vec::new();
    for result in results {
        match result {
            Ok(pod) => {
                let ready = pod.timing.began + pod.timing.first_line;
                let since = ready.duration_since(released).unwrap_or_default();
                let all = outcome.all_ready_ms.unwrap_or(0.0);
                outcome.all_ready_ms = Some(all.max(since.as_secs_f64() * 1000.0));
                per_pod.push(pod.timing.first_line.as_secs_f64() * 1000.0);
                outcome.ready += 1;
                pods.push(pod.pod);
            }
            Err(failure) => {
                outcome.failed += 1;
                let reason = failure.to_string();
                if outcome.errors.len() < MAX_ERRORS && !outcome.errors.contains(&reason) {
                    outcome.errors.push(reason);
                }
                pods.extend(failure.pod.map(|p| *p));
            }
        }
    }
    outcome.per_pod_ms = Summary::of(&per_pod);
    bench.progress.finish(&format!(
        "all ready in {}, {} failed",
        outcome
            .all_ready_ms
            .map_or("-".into(), |ms| format!("{:.1} s", ms / 1000.0)),
        outcome.failed
    ));
    (outcome, pods)
}
