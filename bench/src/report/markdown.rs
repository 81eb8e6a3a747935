//! The results as markdown tables: each figure for runc, for lightpod, and lightpod / runc.

use std::fmt::Write as _;

use crate::{
    results::{
        Compared, Density, DensityPoint, DensityRun, Latency, MemoryResult, ParallelRun, Phases,
        Results,
    },
    stats::Summary,
};

/// The markdown of a run's results.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    header(&mut out, r);
    if let Some(latency) = &r.latency {
        latency_table(&mut out, latency);
    }
    if let Some(phases) = &r.phases {
        phases_table(&mut out, phases);
    }
    if !r.parallel.is_empty() {
        parallel_table(&mut out, &r.parallel);
    }
    if let Some(memory) = &r.memory {
        memory_tables(&mut out, memory);
    }
    if let Some(density) = &r.density {
        density_table(&mut out, density);
    }
    out
}

fn header(out: &mut String, r: &Results) {
    let m = &r.machine;
    let _ = writeln!(out, "# lightpod and runc, side by side\n");
    let _ = writeln!(
        out,
        "Run of {} ({:.1} min){}: `{}`\n",
        r.started_at,
        r.duration_secs / 60.0,
        if r.interrupted { ", interrupted" } else { "" },
        r.command
    );
    let _ = writeln!(
        out,
        "- machine: {} cores ({}), {:.1} GiB, host kernel {}",
        m.cores,
        m.cpu_model,
        m.memory_mib as f64 / 1024.0,
        m.host_kernel
    );
    let _ = writeln!(
        out,
        "- lightpod's accelerator: **{}**; VM {} vCPU, {} MiB",
        m.accelerator.as_deref().unwrap_or("unknown").to_uppercase(),
        r.settings.vcpus,
        r.settings.vm_memory_mib
    );
    let _ = writeln!(out, "- {}; {}", m.containerd, m.qemu);
    let load = |l: [f64; 3]| format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2]);
    let _ = writeln!(
        out,
        "- load average (1/5/15 min): {} before, {} after; all CPUs busy {} over the run \
         (other users of the machine included)\n",
        load(m.load_before),
        load(m.load_after),
        m.host_cpu_busy_percent
            .map_or("-".into(), |p| format!("{p:.0} %"))
    );
    if !r.leftovers.is_empty() {
        let _ = writeln!(
            out,
            "Left behind by the pods after containerd stopped (removed by the benchmark): {}\n",
            r.leftovers.join("; ")
        );
    }
}

fn latency_table(out: &mut String, l: &Latency) {
    let _ = writeln!(
        out,
        "## Start latency, one pod at a time\n\n{} runc and {} lightpod pods, alternating; \
         times in ms.\n",
        l.pods.get("runc").unwrap_or(&0),
        l.pods.get("lightpod").unwrap_or(&0)
    );
    summary_head(out, "step");
    for step in &l.steps {
        compared_rows(out, &step.name, &step.figures, 0);
    }
    for (runtime, failures) in &l.failures {
        let _ = writeln!(
            out,
            "\n{} {runtime} start(s) failed: {}",
            failures.len(),
            failures.join("; ")
        );
    }
    out.push('\n');
}

fn phases_table(out: &mut String, p: &Phases) {
    let _ = writeln!(
        out,
        "## lightpod's start in phases\n\nFrom the RunPodSandbox call, over {} pods; ms.\n",
        p.pods
    );
    let _ = writeln!(
        out,
        "| phase ends | when | at p50 | at p95 | took p50 | took p95 |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: |");
    for phase in &p.phases {
        let at = |f: fn(&Summary) -> f64| phase.at_ms.as_ref().map_or("-".into(), |s| num(f(s), 0));
        let took =
            |f: fn(&Summary) -> f64| phase.took_ms.as_ref().map_or("-".into(), |s| num(f(s), 0));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            phase.name,
            phase.description,
            at(|s| s.p50),
            at(|s| s.p95),
            took(|s| s.p50),
            took(|s| s.p95)
        );
    }
    out.push('\n');
}

fn parallel_table(out: &mut String, runs: &[ParallelRun]) {
    let _ = writeln!(out, "## Pods started at once\n\nTimes in s.\n");
    let _ = writeln!(
        out,
        "| pods at once | runtime | all ready | failed | per pod p50 | per pod p95 |"
    );
    let _ = writeln!(out, "| ---: | --- | ---: | ---: | ---: | ---: |");
    for run in runs {
        for (name, outcome) in [("runc", &run.runc), ("lightpod", &run.lightpod)] {
            let Some(o) = outcome else {
                continue;
            };
            let s = |f: fn(&Summary) -> f64| {
                o.per_pod_ms
                    .as_ref()
                    .map_or("-".into(), |s| num(f(s) / 1000.0, 2))
            };
            let _ = writeln!(
                out,
                "| {} | {name} | {} | {} / {} | {} | {} |",
                run.n,
                o.all_ready_ms.map_or("-".into(), |v| num(v / 1000.0, 2)),
                o.failed,
                o.failed + o.ready,
                s(|s| s.p50),
                s(|s| s.p95)
            );
        }
        let _ = writeln!(
            out,
            "| {} | lightpod / runc | {} | | | |",
            run.n,
            run.ratio_all_ready.map_or("-".into(), times)
        );
    }
    let errors: Vec<String> = runs
        .iter()
        .flat_map(|run| {
            [("runc", &run.runc), ("lightpod", &run.lightpod)]
                .into_iter()
                .filter_map(move |(name, o)| {
                    let o = o.as_ref()?;
                    (!o.errors.is_empty())
                        .then(|| format!("{} {name}: {}", run.n, o.errors.join("; ")))
                })
        })
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nFailures: {}", errors.join(" — "));
    }
    out.push('\n');
}

fn memory_tables(out: &mut String, m: &MemoryResult) {
    let _ = writeln!(
        out,
        "## Host memory per running pod\n\nPSS of the pod's shim and all its descendants, \
         {} runc and {} lightpod pods; MiB.\n",
        m.pods.get("runc").unwrap_or(&0),
        m.pods.get("lightpod").unwrap_or(&0)
    );
    summary_head(out, "pod");
    compared_rows(out, "idle", &m.idle_mib, 1);
    compared_rows(out, "after touching 64 MiB", &m.touched_mib, 1);
    let _ = writeln!(
        out,
        "\nMean PSS per pod by process and by kind of memory (MiB, idle → touched):\n"
    );
    let _ = writeln!(out, "| runtime | process or kind | idle | touched |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: |");
    for (runtime, parts) in m.by_process.iter().chain(m.by_kind.iter()) {
        for (name, memory) in parts {
            let _ = writeln!(
                out,
                "| {runtime} | {name} | {} | {} |",
                num(memory.idle_mib, 1),
                num(memory.touched_mib, 1)
            );
        }
    }
    out.push('\n');
}

fn density_table(out: &mut String, d: &Density) {
    let _ = writeln!(
        out,
        "## Density\n\nIdle pods kept running at once, limit {}. PSS of the pods' processes per \
         pod; host memory is the fall of MemAvailable since before the first pod; CPU is the \
         pods' processes while idle, in % of one core.\n",
        d.limit
    );
    let _ = writeln!(
        out,
        "| pods | runtime | PSS per pod (MiB) | PSS total (MiB) | host memory (MiB) | pods' CPU (%) | all CPUs busy (%) |"
    );
    let _ = writeln!(out, "| ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    let runc = d.runs.get("runc");
    let lightpod = d.runs.get("lightpod");
    let mut counts: Vec<usize> = d
        .runs
        .values()
        .flat_map(|r| r.points.iter().map(|p| p.pods))
        .collect();
    counts.sort_unstable();
    counts.dedup();
    for pods in counts {
        fn point(run: Option<&DensityRun>, pods: usize) -> Option<&DensityPoint> {
            run.and_then(|r| r.points.iter().find(|p| p.pods == pods))
        }
        for (name, p) in [
            ("runc", point(runc, pods)),
            ("lightpod", point(lightpod, pods)),
        ] {
            if let Some(p) = p {
                let cells: Vec<String> = compared_figures(p)
                    .iter()
                    .map(|&(value, decimals)| num(value, decimals))
                    .collect();
                let _ = writeln!(
                    out,
                    "| {pods} | {name} | {} | {} |",
                    cells.join(" | "),
                    num(p.host_cpu_busy_percent, 0)
                );
            }
        }
        if let (Some(r), Some(l)) = (point(runc, pods), point(lightpod, pods)) {
            let cells: Vec<String> = compared_figures(l)
                .iter()
                .zip(compared_figures(r))
                .map(|(&(value, _), (base, decimals))| {
                    // A base the table shows as zero (runc's host memory and CPU are often
                    // within the noise) gives no ratio: dividing by noise means nothing.
                    if num(base.abs(), decimals).parse::<f64>() == Ok(0.0) {
                        return "-".to_string();
                    }
                    crate::stats::ratio(value, base).map_or("-".into(), times)
                })
                .collect();
            let _ = writeln!(
                out,
                "| {pods} | lightpod / runc | {} | |",
                cells.join(" | ")
            );
        }
    }
    out.push('\n');
    for (runtime, run) in &d.runs {
        let _ = writeln!(
            out,
            "- {runtime}: reached {} pods; stopped at {}",
            run.reached, run.stopped
        );
    }
    out.push('\n');
}

fn summary_head(out: &mut String, what: &str) {
    let _ = writeln!(out, "| {what} | runtime | min | p50 | p95 | max |");
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: |");
}

/// Rows for runc, lightpod and their ratio.
fn compared_rows(out: &mut String, name: &str, c: &Compared, decimals: usize) {
    for (runtime, summary) in [("runc", &c.runc), ("lightpod", &c.lightpod)] {
        if let Some(s) = summary {
            let _ = writeln!(
                out,
                "| {name} | {runtime} | {} | {} | {} | {} |",
                num(s.min, decimals),
                num(s.p50, decimals),
                num(s.p95, decimals),
                num(s.max, decimals)
            );
        }
    }
    if let Some(r) = &c.ratio {
        let _ = writeln!(
            out,
            "| {name} | lightpod / runc | {} | {} | {} | {} |",
            times(r.min),
            times(r.p50),
            times(r.p95),
            times(r.max)
        );
    }
}

/// The density figures compared between runtimes, each with the decimals the table shows.
fn compared_figures(p: &DensityPoint) -> [(f64, usize); 4] {
    [
        (p.pss_per_pod_mib, 1),
        (p.pss_total_mib, 0),
        (p.host_used_mib, 0),
        (p.pods_cpu_percent, 1),
    ]
}

fn num(value: f64, decimals: usize) -> String {
    format!("{value:.decimals$}")
}

/// A ratio as `12.3×` (one decimal, two below 10).
fn times(ratio: f64) -> String {
    if ratio < 10.0 {
        format!("{ratio:.2}×")
    } else {
        format!("{ratio:.1}×")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::results::{ParallelOutcome, Step};

    #[test]
    fn tables_show_both_runtimes_and_the_ratio() {
        let latency = Latency {
            steps: vec![Step {
                name: "start to first line".into(),
                description: String::new(),
                figures: Compared::of(&[100.0, 200.0], &[1000.0, 3000.0]),
            }],
            ..Default::default()
        };
        let mut run = ParallelRun {
            n: 10,
            runc: Some(ParallelOutcome {
                all_ready_ms: Some(2000.0),
                ready: 10,
                ..Default::default()
            }),
            lightpod: Some(ParallelOutcome {
                all_ready_ms: Some(30000.0),
                ready: 9,
                failed: 1,
                errors: vec!["first line: timeout".into()],
                ..Default::default()
            }),
            ratio_all_ready: None,
        };
        run.compare();
        let results = Results {
            latency: Some(latency),
            parallel: vec![run],
            ..Default::default()
        };
        let text = render(&results);
        assert!(
            text.contains("| start to first line | runc | 100 | 100 | 200 | 200 |"),
            "{text}"
        );
        assert!(
            text.contains(
                "| start to first line | lightpod / runc | 10.0× | 10.0× | 15.0× | 15.0× |"
            ),
            "{text}"
        );
        assert!(
            text.contains("| 10 | lightpod | 30.00 | 1 / 10 |"),
            "{text}"
        );
        assert!(text.contains("| 10 | lightpod / runc | 15.0× |"), "{text}");
        assert!(text.contains("10 lightpod: first line: timeout"), "{text}");
    }

    #[test]
    fn density_gives_no_ratio_over_a_base_shown_as_zero() {
        let run = |pss: f64, host: f64, cpu: f64| DensityRun {
            points: vec![DensityPoint {
                pods: 10,
                pss_total_mib: pss * 10.0,
                pss_per_pod_mib: pss,
                host_used_mib: host,
                pods_cpu_percent: cpu,
                host_cpu_busy_percent: 1.0,
            }],
            ..Default::default()
        };
        let density = Density {
            limit: 10,
            runs: [
                ("runc".to_string(), run(4.0, 0.4, 0.04)),
                ("lightpod".to_string(), run(100.0, 1000.0, 20.0)),
            ]
            .into_iter()
            .collect(),
        };
        let text = render(&Results {
            density: Some(density),
            ..Default::default()
        });
        assert!(
            text.contains("| 10 | runc | 4.0 | 40 | 0 | 0.0 | 1 |"),
            "{text}"
        );
        assert!(
            text.contains("| 10 | lightpod / runc | 25.0× | 25.0× | - | - | |"),
            "{text}"
        );
    }
}
