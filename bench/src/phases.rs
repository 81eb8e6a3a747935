//! lightpod's start in phases, for each pod of the latency measure: the benchmark's own
//! clock (the CRI calls and the first output line) joined with the shim's `sandbox ready`
//! and `process started` lines in containerd's log (see [`crate::shimlog`]).
//!
//! Every phase is placed in ms from the RunPodSandbox call. The shim's phases count from
//! when it began the sandbox, which is its line's time less its `total`. Two phases come from
//! the guest's clock (its uptime when the agent started and when it served), placed from the
//! moment the guest's vCPUs were released: under emulation the guest's clock may lag a
//! little, so those two are approximate.

use std::time::{Duration, SystemTime};

use crate::{
    results::{Phase, Phases},
    scenario::latency::LatencySample,
    shimlog::{SandboxReady, ShimLog},
    stats::Summary,
    workload::Runtime,
};

/// What one pod's start looked like, every phase from the RunPodSandbox call.
struct PodPhases<'a> {
    sample: &'a LatencySample,
    ready: &'a SandboxReady,
    began: SystemTime,
    process_started: Option<SystemTime>,
}

impl PodPhases<'_> {
    fn since_call(&self, time: SystemTime) -> Option<f64> {
        let call = self.sample.timing.began;
        Some(match time.duration_since(call) {
            Ok(after) => ms(after),
            Err(before) => -ms(before.duration()),
        })
    }

    /// A shim phase (`vmm_spawned`, …), from the call.
    fn shim(&self, name: &str) -> Option<f64> {
        self.since_call(self.began + *self.ready.phases.get(name)?)
    }

    /// A guest-clock phase, placed after the guest was started.
    fn guest(&self, name: &str) -> Option<f64> {
        let started = *self.ready.phases.get("guest_started")?;
        self.since_call(self.began + started + *self.ready.phases.get(name)?)
    }
}

/// One phase: its name, what marks its end, and where that is for a pod.
type PhaseDef = (&'static str, &'static str, fn(&PodPhases) -> Option<f64>);

const PHASES: [PhaseDef; 13] = [
    (
        "containerd prepared the pod",
        "CNI network, sandbox snapshot, shim spawned; the shim begins the sandbox",
        |p| p.since_call(p.began),
    ),
    ("VMM process up", "QEMU and virtiofsd spawned", |p| {
        p.shim("vmm_spawned")
    }),
    ("VMM control ready", "QEMU answers on QMP", |p| {
        p.shim("vmm_ready")
    }),
    ("guest kernel running", "the guest's vCPUs released", |p| {
        p.shim("guest_started")
    }),
    (
        "guest kernel booted",
        "the agent (PID 1) begins, by the guest's clock (approximate)",
        |p| p.guest("agent_start_guest"),
    ),
    (
        "agent serving",
        "the agent serves its channel, by the guest's clock (approximate)",
        |p| p.guest("agent_ready_guest"),
    ),
    (
        "agent ready",
        "the shim has the agent's first answer",
        |p| p.shim("agent_ready"),
    ),
    (
        "sandbox ready",
        "shared directory mounted, pod network carried into the guest",
        |p| p.since_call(p.ready.time),
    ),
    ("RunPodSandbox returned", "the CRI call returned", |p| {
        Some(ms(p.sample.timing.sandbox))
    }),
    ("CreateContainer returned", "the CRI call returned", |p| {
        Some(ms(p.sample.timing.created))
    }),
    (
        "container process started",
        "the guest started the container's process (the shim's `process started`)",
        |p| p.since_call(p.process_started?),
    ),
    ("StartContainer returned", "the CRI call returned", |p| {
        Some(ms(p.sample.timing.started))
    }),
    (
        "first output line",
        "the container's first line reached its CRI log",
        |p| Some(ms(p.sample.timing.first_line)),
    ),
];

/// The phases of the lightpod samples found in `log`; `None` when none was.
pub fn of(samples: &[LatencySample], log: &ShimLog) -> Option<Phases> {
    let pods: Vec<PodPhases> = samples
        .iter()
        .filter(|s| s.runtime == Runtime::Lightpod)
        .filter_map(|sample| {
            let ready = log.ready.get(&sample.sandbox_id)?;
            Some(PodPhases {
                sample,
                ready,
                began: ready.began()?,
                process_started: log.started.get(&sample.container_id).copied(),
            })
        })
        .collect();
    if pods.is_empty() {
        return None;
    }
    let at: Vec<Vec<Option<f64>>> = pods
        .iter()
        .map(|pod| PHASES.iter().map(|(_, _, f)| f(pod)).collect())
        .collect();
    let phases = PHASES
        .iter()
        .enumerate()
        .map(|(i, (name, description, _))| {
            let at_i: Vec<f64> = at.iter().filter_map(|pod| pod[i]).collect();
            let took: Vec<f64> = at
                .iter()
                .filter_map(|pod| {
                    let previous = if i == 0 { Some(0.0) } else { pod[i - 1] };
                    Some(pod[i]? - previous?)
                })
                .collect();
            Phase {
                name: name.to_string(),
                description: description.to_string(),
                at_ms: Summary::of(&at_i),
                took_ms: Summary::of(&took),
            }
        })
        .collect();
    Some(Phases {
        pods: pods.len(),
        phases,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{pod::StartTiming, shimlog::parse_rfc3339};

    #[test]
    fn phases_are_placed_from_the_call() {
        let call = parse_rfc3339("2024-05-01T10:00:00Z").unwrap();
        let sample = LatencySample {
            runtime: Runtime::Lightpod,
            sandbox_id: "pod1".into(),
            container_id: "c1".into(),
            timing: StartTiming {
                began: call,
                sandbox: Duration::from_millis(2000),
                created: Duration::from_millis(2100),
                started: Duration::from_millis(2400),
                first_line: Duration::from_millis(2450),
            },
            removed_in: None,
        };
        // The shim began 300 ms after the call and was ready 1500 ms later.
        let text = "time=\"2024-05-01T10:00:01.800Z\" level=info msg=\"sandbox ready\" \
                    sandbox=pod1 vmm_spawned_ms=50 vmm_ready_ms=150 guest_started_ms=160 \
                    agent_start_guest_ms=800 agent_ready_guest_ms=850 agent_ready_ms=1200 \
                    total_ms=1500\n\
                    time=\"2024-05-01T10:00:02.300Z\" level=info msg=\"process started\" \
                    container=c1 exec=\"\" guest_pid=3\n";
        let log = ShimLog::parse(text);
        let runc = LatencySample {
            runtime: Runtime::Runc,
            ..sample.clone()
        };
        let phases = of(&[sample, runc], &log).unwrap();
        assert_eq!(phases.pods, 1, "runc samples have no phases");
        let at: Vec<f64> = phases.phases.iter().map(|p| p.at_ms.unwrap().p50).collect();
        let want = [
            300.0, 350.0, 450.0, 460.0, 1260.0, 1310.0, 1500.0, 1800.0, 2000.0, 2100.0, 2300.0,
            2400.0, 2450.0,
        ];
        for ((phase, got), want) in phases.phases.iter().zip(&at).zip(want) {
            assert!((got - want).abs() < 0.01, "{}: {got} != {want}", phase.name);
        }
        let took: Vec<f64> = phases
            .phases
            .iter()
            .map(|p| p.took_ms.unwrap().p50)
            .collect();
        assert!(
            (took[0] - 300.0).abs() < 0.01 && (took[1] - 50.0).abs() < 0.01,
            "{took:?}"
        );
        assert!(of(&[], &log).is_none());
    }
}
