//! Start latency, one pod at a time: RunPodSandbox → CreateContainer → StartContainer → the
//! container's first output line, then the pod's removal, for each runtime in turn. The two
//! runtimes alternate (runc first in even rounds, lightpod first in odd ones), so a change of
//! the machine's load during the run weighs on both alike. One unmeasured warm-up pod per
//! runtime comes first: it pays for the first guest image build and cold caches.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    interrupt::{self, Interrupted},
    pod::StartTiming,
    results::{Compared, Latency, Step},
    runner::Bench,
    workload::{Runtime, Workload},
};

/// One measured start.
#[derive(Debug, Clone)]
pub struct LatencySample {
    /// The runtime.
    pub runtime: Runtime,
    /// The pod sandbox id.
    pub sandbox_id: String,
    /// Its container's id.
    pub container_id: String,
    /// The steps of its start.
    pub timing: StartTiming,
    /// How long StopPodSandbox + RemovePodSandbox took.
    pub removed_in: Option<Duration>,
}

/// Starts and removes `pods` pods per runtime, one at a time; the figures and the samples
/// (for [`crate::phases`]), and whether a signal cut it short.
pub fn run(bench: &mut Bench, pods: usize) -> (Latency, Vec<LatencySample>, Option<Interrupted>) {
    let mut samples = Vec::new();
    let mut failures: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let outcome = measure(bench, pods, &mut samples, &mut failures);
    (summarise(&samples, failures), samples, outcome.err())
}

fn measure(
    bench: &mut Bench,
    pods: usize,
    samples: &mut Vec<LatencySample>,
    failures: &mut BTreeMap<String, Vec<String>>,
) -> Result<(), Interrupted> {
    bench.progress.section("warm-up: one pod per runtime", 2);
    for runtime in Runtime::BOTH {
        let name = format!("warmup-{runtime}");
        match one(bench, runtime, &name) {
            Ok(sample) => bench.progress.advance(&format!(
                "{runtime} {:.2} s",
                sample.timing.first_line.as_secs_f64()
            )),
            Err(reason) => {
                bench.progress.advance(&format!("{runtime} failed"));
                failures
                    .entry(runtime.to_string())
                    .or_default()
                    .push(format!("warm-up: {reason}"));
            }
        }
        interrupt::check()?;
    }
    bench.progress.finish("done");

    bench
        .progress
        .section("start latency, one pod at a time", pods * 2);
    for round in 0..pods {
        let order = if round % 2 == 0 {
            Runtime::BOTH
        } else {
            [Runtime::Lightpod, Runtime::Runc]
        };
        for runtime in order {
            let name = format!("latency-{runtime}-{round}");
            match one(bench, runtime, &name) {
                Ok(sample) => {
                    bench.progress.advance(&format!(
                        "{runtime} {:.2} s",
                        sample.timing.first_line.as_secs_f64()
                    ));
                    samples.push(sample);
                }
                Err(reason) => {
                    bench
                        .progress
                        .advance(&format!("{runtime} failed: {reason}"));
                    failures
                        .entry(runtime.to_string())
                        .or_default()
                        .push(reason);
                }
            }
            interrupt::check()?;
        }
    }
    bench.progress.finish("done");
    Ok(())
}

/// Starts one pod, then removes it.
fn one(bench: &mut Bench, runtime: Runtime, name: &str) -> Result<LatencySample, String> {
    let started = match bench.start_pod(runtime, name, Workload::Ready) {
        Ok(started) => started,
        Err(failure) => {
            let reason = failure.to_string();
            if let Some(pod) = failure.pod {
                let _ = crate::pod::remove(&mut bench.cri, *pod);
            }
            return Err(reason);
        }
    };
    let sandbox_id = started.pod.id.clone();
    let removed_in = match crate::pod::remove(&mut bench.cri, started.pod) {
        Ok(took) => Some(took),
        Err(status) => {
            tracing::warn!(sandbox = %sandbox_id, %status, "removing a pod failed");
            None
        }
    };
    Ok(LatencySample {
        runtime,
        sandbox_id,
        container_id: started.container_id,
        timing: started.timing,
        removed_in,
    })
}

/// The figures of the samples.
fn summarise(samples: &[LatencySample], failures: BTreeMap<String, Vec<String>>) -> Latency {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let of = |runtime: Runtime, f: &dyn Fn(&LatencySample) -> Option<f64>| -> Vec<f64> {
        samples
            .iter()
            .filter(|s| s.runtime == runtime)
            .filter_map(f)
            .collect()
    };
    let step = |name: &str, description: &str, f: &dyn Fn(&LatencySample) -> Option<f64>| Step {
        name: name.into(),
        description: description.into(),
        figures: Compared::of(&of(Runtime::Runc, f), &of(Runtime::Lightpod, f)),
    };
    let steps = vec![
        step("RunPodSandbox", "the call, until it returned", &|s| {
            Some(ms(s.timing.sandbox))
        }),
        step("CreateContainer", "the call, until it returned", &|s| {
            Some(ms(s.timing.created - s.timing.sandbox))
        }),
        step("StartContainer", "the call, until it returned", &|s| {
            Some(ms(s.timing.started - s.timing.created))
        }),
        step(
            "start to first line",
            "RunPodSandbox called → the container's first output line in its CRI log",
            &|s| Some(ms(s.timing.first_line)),
        ),
        step(
            "stop and remove",
            "StopPodSandbox + RemovePodSandbox (not part of the start)",
            &|s| s.removed_in.map(ms),
        ),
    ];
    let mut pods = BTreeMap::new();
    let mut samples_ms = BTreeMap::new();
    for runtime in Runtime::BOTH {
        let first_lines = of(runtime, &|s| Some(ms(s.timing.first_line)));
        pods.insert(runtime.to_string(), first_lines.len());
        samples_ms.insert(runtime.to_string(), first_lines);
    }
    Latency {
        pods,
        steps,
        samples_ms,
        failures,
    }
}
