//! The command line of `lightpod-bench`.

use std::{path::PathBuf, time::Duration};

use clap::Parser;
use lightpod_harness::containerd::Subnet;

/// Which measures a run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Pods started one at a time (and lightpod's start in phases).
    Latency,
    /// Pods started at once.
    Parallel,
    /// Host memory per pod, idle and after touching 64 MiB.
    Memory,
    /// Pods kept running at once.
    Density,
}

/// lightpod and runc side by side on one private containerd: start latency, parallel start,
/// memory per pod, density. Run as root, usually through `bench/run.sh`.
#[derive(Debug, Clone, Parser)]
#[command(name = "lightpod-bench", version, args_override_self = true)]
pub struct Options {
    /// A short run: 5 pods, 5 at once, density 10, 2 memory pods, short settling.
    #[arg(long)]
    pub quick: bool,
    /// Pods per runtime started one at a time [default: 20, quick 5].
    #[arg(long)]
    pub pods: Option<usize>,
    /// Batches of pods started at once [default: 10,50, quick 5].
    #[arg(long, value_delimiter = ',')]
    pub parallel: Option<Vec<usize>>,
    /// Pods per runtime kept running at once, at most [default: 100, quick 10].
    #[arg(long)]
    pub density: Option<usize>,
    /// Pods per runtime in the memory measure [default: 5, quick 2].
    #[arg(long)]
    pub memory_pods: Option<usize>,
    /// The measures to make, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "latency,parallel,memory,density"
    )]
    pub scenarios: Vec<Scenario>,
    /// vCPUs of each lightpod VM (annotation lightpod.io/vcpus).
    #[arg(long, default_value_t = 1)]
    pub vcpus: u32,
    /// Memory of each lightpod VM in MiB (annotation lightpod.io/memory-mib).
    #[arg(long, default_value_t = 256)]
    pub vm_memory_mib: u32,
    /// Seconds pods are left alone before an idle measure [default: 5, quick 3].
    #[arg(long)]
    pub settle_secs: Option<f64>,
    /// Seconds over which idle CPU is measured [default: 10, quick 5].
    #[arg(long)]
    pub idle_window_secs: Option<f64>,
    /// Pods started at once while density climbs.
    #[arg(long, default_value_t = 4)]
    pub density_concurrency: usize,
    /// Density ends after this many failed starts (others are started in their place).
    #[arg(long, default_value_t = 3)]
    pub density_max_failures: usize,
    /// Density starts no more pods once the host's MemAvailable is below this (MiB).
    #[arg(long, default_value_t = 4096)]
    pub min_available_mib: u64,
    /// Density starts no more pods once the idle pods use more than this share of all the
    /// host's CPUs (%).
    #[arg(long, default_value_t = 50.0)]
    pub max_idle_cpu_percent: f64,
    /// Seconds a pod may take from RunPodSandbox to its first output line.
    #[arg(long, default_value_t = 300)]
    pub ready_timeout_secs: u64,
    /// How often a CRI log is polled for the first line, one pod at a time (ms).
    #[arg(long, default_value_t = 5)]
    pub poll_ms: u64,
    /// Pods removed at once.
    #[arg(long, default_value_t = 8)]
    pub removers: usize,
    /// Where results.json, results.md and results.png go.
    #[arg(long, default_value = "bench/results")]
    pub results_dir: PathBuf,
    /// The private containerd's directory (an earlier run's instance there is stopped first).
    #[arg(long, default_value = "/run/lightpod-bench/containerd")]
    pub containerd_dir: PathBuf,
    /// The private containerd's CNI bridge.
    #[arg(long, default_value = "lpbench0")]
    pub bridge: String,
    /// Its pod subnet.
    #[arg(long, default_value = "10.250.93.0/24")]
    pub subnet: Subnet,
    /// Where the test images are built (cached between runs).
    #[arg(long, default_value = "target/bench-cache")]
    pub image_cache: PathBuf,
    /// Where containerd finds containerd-shim-lightpod-v2 [default: this binary's directory].
    #[arg(long)]
    pub shim_dir: Option<PathBuf>,
    /// lightpod's configuration for the shims (containerd passes it on in its environment).
    #[arg(long, env = "LIGHTPOD_CONFIG")]
    pub lightpod_config: Option<PathBuf>,
    /// The Python with matplotlib that draws the chart.
    #[arg(long, default_value = "python3")]
    pub python: PathBuf,
    /// The chart script.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/chart.py"))]
    pub chart_script: PathBuf,
    /// The command to record as the one that ran the benchmark (bench/run.sh sets it).
    #[arg(long, hide = true)]
    pub invoked_as: Option<String>,
}

impl Options {
    /// Pods per runtime, one at a time.
    pub fn pods(&self) -> usize {
        self.pods.unwrap_or(if self.quick { 5 } else { 20 })
    }

    /// Batches started at once.
    pub fn parallel(&self) -> Vec<usize> {
        self.parallel
            .clone()
            .unwrap_or_else(|| if self.quick { vec![5] } else { vec![10, 50] })
    }

    /// The density limit.
    pub fn density(&self) -> usize {
        self.density.unwrap_or(if self.quick { 10 } else { 100 })
    }

    /// Pods per runtime in the memory measure.
    pub fn memory_pods(&self) -> usize {
        self.memory_pods.unwrap_or(if self.quick { 2 } else { 5 })
    }

    /// Rest before idle measures.
    pub fn settle(&self) -> Duration {
        secs(
            self.settle_secs
                .unwrap_or(if self.quick { 3.0 } else { 5.0 }),
        )
    }

    /// The idle CPU window.
    pub fn idle_window(&self) -> Duration {
        secs(
            self.idle_window_secs
                .unwrap_or(if self.quick { 5.0 } else { 10.0 }),
        )
    }

    /// Whether `scenario` is asked for.
    pub fn wants(&self, scenario: Scenario) -> bool {
        self.scenarios.contains(&scenario)
    }
}

fn secs(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.max(0.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quick_changes_the_defaults_and_flags_win() {
        let parse = |args: &[&str]| {
            Options::try_parse_from(std::iter::once("lightpod-bench").chain(args.iter().copied()))
                .unwrap()
        };
        let full = parse(&[]);
        assert_eq!(
            (full.pods(), full.parallel(), full.density()),
            (20, vec![10, 50], 100)
        );
        let quick = parse(&["--quick", "--density", "3"]);
        assert_eq!(
            (quick.pods(), quick.parallel(), quick.density()),
            (5, vec![5], 3)
        );
        let some = parse(&["--parallel", "10,50,100", "--scenarios", "latency,density"]);
        assert_eq!(some.parallel(), [10, 50, 100]);
        assert!(some.wants(Scenario::Density) && !some.wants(Scenario::Memory));
        assert_eq!(some.subnet.to_string(), "10.250.93.0/24");
        let twice = parse(&["--results-dir", "a", "--results-dir", "b"]);
        assert_eq!(
            twice.results_dir,
            PathBuf::from("b"),
            "bench/run.sh's defaults yield"
        );
    }
}
