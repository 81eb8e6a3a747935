//! The results of one run, as written to the JSON file: every figure for both runtimes and
//! as the ratio lightpod / runc. Times are in milliseconds, memory in MiB.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::stats::{ratio, Ratio, Summary};

/// Everything one run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    /// The version of this layout.
    pub schema: u32,
    /// When the run began (RFC 3339, UTC).
    pub started_at: String,
    /// How long the run took, clean-up included, in seconds.
    pub duration_secs: f64,
    /// The command that ran it.
    pub command: String,
    /// Whether a signal cut the run short (the figures cover what was done).
    pub interrupted: bool,
    /// What the pods left in lightpod's state directory after containerd stopped (removed
    /// then); empty after a clean run.
    pub leftovers: Vec<String>,
    /// The machine.
    pub machine: Machine,
    /// What the run was asked to do.
    pub settings: Settings,
    /// Sequential start latency.
    pub latency: Option<Latency>,
    /// lightpod's start in phases (from the shim's log lines).
    pub phases: Option<Phases>,
    /// Parallel starts.
    pub parallel: Vec<ParallelRun>,
    /// Host memory per running pod.
    pub memory: Option<MemoryResult>,
    /// Pods kept running at once.
    pub density: Option<Density>,
}

/// The machine the run measured.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// Online CPUs.
    pub cores: usize,
    /// The CPU model.
    pub cpu_model: String,
    /// Physical memory in MiB.
    pub memory_mib: u64,
    /// The host kernel release.
    pub host_kernel: String,
    /// The accelerator lightpod's guests ran under (`tcg`, `kvm`), from the shim's log.
    pub accelerator: Option<String>,
    /// `containerd --version`.
    pub containerd: String,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu: String,
    /// The load average (1, 5, 15 min) when the run began.
    pub load_before: [f64; 3],
    /// The load average when the measuring ended.
    pub load_after: [f64; 3],
    /// Busy share of all host CPUs over the run, in percent (other users included).
    pub host_cpu_busy_percent: Option<f64>,
}

/// What the run was asked to do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// Pods per runtime started one at a time.
    pub pods: usize,
    /// Pods started at once, per batch.
    pub parallel: Vec<usize>,
    /// The density limit.
    pub density: usize,
    /// Pods per runtime in the memory measure.
    pub memory_pods: usize,
    /// vCPUs of each lightpod VM.
    pub vcpus: u32,
    /// Memory of each lightpod VM in MiB.
    pub vm_memory_mib: u32,
    /// Seconds pods are left alone before they are measured idle.
    pub settle_secs: f64,
    /// Seconds over which idle CPU use is measured.
    pub idle_window_secs: f64,
    /// How often a CRI log is polled for the first line, one pod at a time, in ms.
    pub poll_ms: u64,
    /// Density's floor of host MemAvailable, in MiB.
    pub min_available_mib: u64,
    /// Density's ceiling of idle pods' CPU, in percent of all host CPUs.
    pub max_idle_cpu_percent: f64,
}

/// A figure for both runtimes and their ratio.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Compared {
    /// runc's.
    pub runc: Option<Summary>,
    /// lightpod's.
    pub lightpod: Option<Summary>,
    /// lightpod / runc, figure by figure.
    pub ratio: Option<Ratio>,
}

impl Compared {
    /// Summaries of both samples and their ratio.
    pub fn of(runc: &[f64], lightpod: &[f64]) -> Compared {
        let runc = Summary::of(runc);
        let lightpod = Summary::of(lightpod);
        let ratio = match (&runc, &lightpod) {
            (Some(r), Some(l)) => l.ratio_to(r),
            _ => None,
        };
        Compared {
            runc,
            lightpod,
            ratio,
        }
    }
}

/// One step of a start, compared.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Step {
    /// Its name.
    pub name: String,
    /// What it covers.
    pub description: String,
    /// Its durations in ms.
    #[serde(flatten)]
    pub figures: Compared,
}

/// Pods started one at a time.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Latency {
    /// Successful starts per runtime.
    pub pods: BTreeMap<String, usize>,
    /// The steps, and the whole start (`first line`).
    pub steps: Vec<Step>,
    /// RunPodSandbox to first line of each pod, in ms, per runtime (for the chart).
    pub samples_ms: BTreeMap<String, Vec<f64>>,
    /// Why starts failed, per runtime.
    pub failures: BTreeMap<String, Vec<String>>,
}

/// lightpod's start in phases.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phases {
    /// Pods whose shim log lines were found.
    pub pods: usize,
    /// The phases in order.
    pub phases: Vec<Phase>,
}

/// One phase of lightpod's start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Phase {
    /// Its name.
    pub name: String,
    /// What marks its end.
    pub description: String,
    /// When it ended, in ms from the RunPodSandbox call.
    pub at_ms: Option<Summary>,
    /// How long it took since the previous phase ended, in ms.
    pub took_ms: Option<Summary>,
}

/// N pods started at once, under both runtimes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParallelRun {
    /// How many pods.
    pub n: usize,
    /// runc's outcome.
    pub runc: Option<ParallelOutcome>,
    /// lightpod's outcome.
    pub lightpod: Option<ParallelOutcome>,
    /// lightpod / runc of the time until all were ready.
    pub ratio_all_ready: Option<f64>,
}

impl ParallelRun {
    /// Fills in the ratio once both outcomes are there.
    pub fn compare(&mut self) {
        let all_ready = |o: &Option<ParallelOutcome>| o.as_ref().and_then(|o| o.all_ready_ms);
        self.ratio_all_ready = match (all_ready(&self.runc), all_ready(&self.lightpod)) {
            (Some(r), Some(l)) => ratio(l, r),
            _ => None,
        };
    }
}

/// How one batch of pods started at once went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParallelOutcome {
    /// From the common start until the last successful pod printed its first line, in ms.
    pub all_ready_ms: Option<f64>,
    /// Pods that started.
    pub ready: usize,
    /// Pods that failed to start.
    pub failed: usize,
    /// Each successful pod's RunPodSandbox to first line, in ms.
    pub per_pod_ms: Option<Summary>,
    /// The distinct reasons of the failures.
    pub errors: Vec<String>,
}

/// Host memory per running pod.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MemoryResult {
    /// Pods measured per runtime.
    pub pods: BTreeMap<String, usize>,
    /// PSS per pod, idle, in MiB.
    pub idle_mib: Compared,
    /// PSS per pod after the container touched 64 MiB, in MiB.
    pub touched_mib: Compared,
    /// The mean PSS per pod by process, idle and touched, in MiB, per runtime.
    pub by_process: BTreeMap<String, BTreeMap<String, ProcessMemory>>,
    /// The mean PSS per pod by kind of memory, per runtime.
    pub by_kind: BTreeMap<String, BTreeMap<String, ProcessMemory>>,
}

/// One process's (or one kind's) mean PSS per pod.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessMemory {
    /// Idle, in MiB.
    pub idle_mib: f64,
    /// After the touch, in MiB.
    pub touched_mib: f64,
}

/// Pods kept running at once.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Density {
    /// The limit asked for.
    pub limit: usize,
    /// The outcome per runtime.
    pub runs: BTreeMap<String, DensityRun>,
}

/// How far one runtime got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DensityRun {
    /// Pods running at once at the end.
    pub reached: usize,
    /// Why it stopped there.
    pub stopped: String,
    /// Starts that failed on the way (others were started in their place).
    pub failed: usize,
    /// The distinct reasons of those failures (the first few).
    pub errors: Vec<String>,
    /// The measures at each checkpoint.
    pub points: Vec<DensityPoint>,
}

/// The host's cost of N idle pods.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DensityPoint {
    /// Pods running.
    pub pods: usize,
    /// PSS of all their processes, in MiB.
    pub pss_total_mib: f64,
    /// The same per pod.
    pub pss_per_pod_mib: f64,
    /// Fall of the host's MemAvailable since before the first pod, in MiB (other users of
    /// the machine move it too).
    pub host_used_mib: f64,
    /// CPU used by the pods' processes while idle, in percent of one core.
    pub pods_cpu_percent: f64,
    /// Busy share of all host CPUs over the same window, in percent.
    pub host_cpu_busy_percent: f64,
}
