//! lightpod's benchmarks: lightpod and runc side by side, on one private containerd, the
//! same image and the same machine, in one run. The measures (see [`scenario`]): start
//! latency one pod at a time and lightpod's start in phases, pods started at once, host
//! memory per pod idle and after touching 64 MiB, and density. Every figure is reported for
//! both runtimes and as the ratio lightpod / runc, in JSON, markdown and a PNG chart
//! ([`report`]).
//!
//! `bench/run.sh` builds what the run needs and calls the `lightpod-bench` binary, which
//! calls [`run`].

pub mod error;
pub mod footprint;
pub mod interrupt;
pub mod leftovers;
pub mod machine;
pub mod options;
pub mod phases;
pub mod pod;
pub mod procfs;
pub mod progress;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
mod session;
pub mod shimlog;
pub mod stats;
pub mod workload;

pub use self::{
    error::BenchError,
    options::{Options, Scenario},
    session::{run, Outcome},
};
