//! Host memory per running pod: the PSS of every process the pod owns (its shim and the
//! shim's descendants), measured idle and again after the container touched 64 MiB of
//! anonymous memory, for a few pods per runtime.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use crate::{
    footprint::PodFootprint,
    interrupt::{self, Interrupted},
    pod::{self, BenchPod},
    procfs::{Memory, ProcessTable},
    results::{Compared, MemoryResult, ProcessMemory},
    runner::Bench,
    workload::{touch_command, Runtime, Workload, TOUCHED_LINE},
};

/// How long a container may take to touch its memory.
const TOUCH_TIMEOUT: Duration = Duration::from_secs(120);

/// The memory of one runtime's pods, idle and touched.
#[derive(Default)]
struct Measured {
    idle: Vec<PodFootprint>,
    touched: Vec<PodFootprint>,
}

/// Measures `pods` pods per runtime, left alone `settle` before each measure.
pub fn run(
    bench: &mut Bench,
    pods: usize,
    settle: Duration,
) -> (MemoryResult, Option<Interrupted>) {
    let mut measured: BTreeMap<Runtime, Measured> = BTreeMap::new();
    let mut interrupted = None;
    for runtime in Runtime::BOTH {
        let result = measure(bench, runtime, pods, settle);
        let stop = result.as_ref().err().copied();
        measured.insert(runtime, result.unwrap_or_default());
        if let Some(stop) = stop {
            interrupted = Some(stop);
            break;
        }
    }
    (summarise(&measured), interrupted)
}

fn measure(
    bench: &mut Bench,
    runtime: Runtime,
    pods: usize,
    settle: Duration,
) -> Result<Measured, Interrupted> {
    bench
        .progress
        .section(&format!("memory: starting {pods} {runtime} pods"), pods);
    let names = (0..pods).map(|i| format!("memory-{runtime}-{i}")).collect();
    let started = bench.start_many(runtime, names, Workload::Touch, 1, usize::MAX, &|| None);
    bench
        .progress
        .finish(&format!("{} started", started.pods.len()));
    for failure in &started.failures {
        tracing::warn!(%runtime, %failure, "a memory pod failed to start");
    }
    let outcome = measure_started(bench, &started.pods, settle);
    let failed = bench.remove_all(started.into_pods(), &format!("removing the {runtime} pods"));
    if failed > 0 {
        tracing::warn!(failed, "memory pods were not removed");
    }
    outcome
}

fn measure_started(
    bench: &mut Bench,
    pods: &[BenchPod],
    settle: Duration,
) -> Result<Measured, Interrupted> {
    let address = bench.context.socket.clone();
    bench
        .progress
        .section("memory: settling, then measuring idle", 0);
    interrupt::sleep(settle)?;
    let idle = footprints(pods, &address);

    bench
        .progress
        .section("memory: touching 64 MiB in each container", pods.len());
    let mut touched_pods = Vec::new();
    for pod in pods {
        match touch(bench, pod)? {
            Ok(()) => {
                bench.progress.advance("touched");
                touched_pods.push(pod);
            }
            Err(reason) => {
                bench.progress.advance(&format!("failed: {reason}"));
                tracing::warn!(sandbox = %pod.pod.id, %reason, "a container did not touch its memory");
            }
        }
    }
    bench.progress.finish("done");
    bench
        .progress
        .section("memory: settling, then measuring touched", 0);
    interrupt::sleep(settle)?;
    let touched = footprints_of(touched_pods.into_iter(), &address);
    bench.progress.finish("measured");
    Ok(Measured { idle, touched })
}

/// Tells the container to touch its memory and waits until it says it did.
fn touch(bench: &mut Bench, pod: &BenchPod) -> Result<Result<(), String>, Interrupted> {
    let command = touch_command();
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    match bench.cri.exec_sync(&pod.container_id, &command, 60) {
        Ok(response) if response.exit_code == 0 => {}
        Ok(response) => return Ok(Err(format!("exec exited {}", response.exit_code))),
        Err(status) => return Ok(Err(format!("ExecSync: {}", status.message()))),
    }
    let deadline = Instant::now() + TOUCH_TIMEOUT;
    let poll = bench.context.poll;
    Ok(
        match pod::wait_for_line(&pod.log_file, TOUCHED_LINE, deadline, poll)? {
            Some(_) => Ok(()),
            None => Err(format!("no {TOUCHED_LINE:?} within {TOUCH_TIMEOUT:?}")),
        },
    )
}

fn footprints(pods: &[BenchPod], address: &Path) -> Vec<PodFootprint> {
    footprints_of(pods.iter(), address)
}

fn footprints_of<'a>(
    pods: impl Iterator<Item = &'a BenchPod>,
    address: &Path,
) -> Vec<PodFootprint> {
    let table = ProcessTable::read();
    pods.filter_map(|pod| {
        let footprint = PodFootprint::of(&table, &pod.pod.id, address);
        if footprint.is_none() {
            tracing::warn!(sandbox = %pod.pod.id, "no shim found for the pod");
        }
        footprint
    })
    .collect()
}

fn summarise(measured: &BTreeMap<Runtime, Measured>) -> MemoryResult {
    let per_pod = |runtime: Runtime, touched: bool| -> Vec<f64> {
        measured
            .get(&runtime)
            .map(|m| if touched { &m.touched } else { &m.idle })
            .map(|list| list.iter().map(|f| mib(f.total.pss_kib)).collect())
            .unwrap_or_default()
    };
    let mut result = MemoryResult {
        idle_mib: Compared::of(
            &per_pod(Runtime::Runc, false),
            &per_pod(Runtime::Lightpod, false),
        ),
        touched_mib: Compared::of(
            &per_pod(Runtime::Runc, true),
            &per_pod(Runtime::Lightpod, true),
        ),
        ..Default::default()
    };
    for (runtime, m) in measured {
        let name = runtime.to_string();
        result.pods.insert(name.clone(), m.idle.len());
        result
            .by_process
            .insert(name.clone(), breakdown(m, |f| f.by_process.clone()));
        result
            .by_kind
            .insert(name, breakdown(m, |f| kinds(&f.total)));
    }
    result
}

/// The mean PSS per pod of each part of the footprints, idle and touched.
fn breakdown(
    m: &Measured,
    parts: impl Fn(&PodFootprint) -> BTreeMap<String, Memory>,
) -> BTreeMap<String, ProcessMemory> {
    let mean = |list: &[PodFootprint]| -> BTreeMap<String, f64> {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for f in list {
            for (name, memory) in parts(f) {
                *sums.entry(name).or_default() += mib(memory.pss_kib);
            }
        }
        let n = list.len().max(1) as f64;
        sums.into_iter().map(|(k, v)| (k, v / n)).collect()
    };
    let idle = mean(&m.idle);
    let touched = mean(&m.touched);
    let mut out: BTreeMap<String, ProcessMemory> = BTreeMap::new();
    for (name, v) in idle {
        out.entry(name).or_default().idle_mib = v;
    }
    for (name, v) in touched {
        out.entry(name).or_default().touched_mib = v;
    }
    out
}

/// The PSS split by kind of memory, each as a [`Memory`] holding it as its `pss_kib`.
fn kinds(total: &Memory) -> BTreeMap<String, Memory> {
    let as_pss = |kib| Memory {
        pss_kib: kib,
        ..Default::default()
    };
    BTreeMap::from([
        ("anonymous".to_string(), as_pss(total.pss_anon_kib)),
        ("file".to_string(), as_pss(total.pss_file_kib)),
        (
            "shared memory (guest RAM)".to_string(),
            as_pss(total.pss_shmem_kib),
        ),
    ])
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
