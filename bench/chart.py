#!/usr/bin/env python3
"""Draws the chart of a lightpod-bench run: the start latency distributions of both
runtimes side by side, and host memory (PSS) per pod against the number of pods running.

Usage: chart.py RESULTS_JSON OUTPUT_PNG
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

COLOURS = {"runc": "#4c72b0", "lightpod": "#dd8452"}
RUNTIMES = ("runc", "lightpod")


def latency_panel(ax, results):
    latency = results.get("latency") or {}
    samples = latency.get("samples_ms") or {}
    data = [[v / 1000.0 for v in samples.get(r, [])] for r in RUNTIMES]
    present = [(r, d) for r, d in zip(RUNTIMES, data) if d]
    if not present:
        ax.text(0.5, 0.5, "no latency measured", ha="center", va="center")
        ax.set_axis_off()
        return
    names = [r for r, _ in present]
    parts = ax.violinplot([d for _, d in present], showextrema=False)
    for body, name in zip(parts["bodies"], names):
        body.set_facecolor(COLOURS[name])
        body.set_alpha(0.35)
    ax.boxplot(
        [d for _, d in present],
        widths=0.15,
        whis=(0, 100),
        medianprops={"color": "black"},
    )
    for i, (name, values) in enumerate(present, start=1):
        ax.scatter([i] * len(values), values, s=10, color=COLOURS[name], zorder=3)
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([f"{n}\n(n={len(d)})" for n, d in present])
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("RunPodSandbox → first output line (s, log scale)")
    ax.set_title("Pod start latency, one pod at a time")
    ax.grid(axis="y", which="both", alpha=0.3)


def memory_panel(ax, results):
    runs = (results.get("density") or {}).get("runs") or {}
    drawn = False
    for name in RUNTIMES:
        points = (runs.get(name) or {}).get("points") or []
        if not points:
            continue
        pods = [p["pods"] for p in points]
        pss = [p["pss_per_pod_mib"] for p in points]
        ax.plot(pods, pss, marker="o", color=COLOURS[name], label=name)
        drawn = True
    memory = results.get("memory") or {}
    for key, style in (("idle_mib", "s"), ("touched_mib", "^")):
        for name in RUNTIMES:
            summary = (memory.get(key) or {}).get(name)
            if summary:
                label = f"{name}, {key.split('_')[0]} ({memory['pods'].get(name, 0)} pods)"
                ax.scatter([memory["pods"].get(name, 1)], [summary["p50"]], marker=style,
                           color=COLOURS[name], alpha=0.6, label=label)
                drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no memory measured", ha="center", va="center")
        ax.set_axis_off()
        return
    ax.set_xlabel("pods running")
    ax.set_ylabel("host PSS per pod (MiB)")
    ax.set_title("Host memory per pod against pod count")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        results = json.load(f)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    latency_panel(left, results)
    memory_panel(right, results)
    machine = results.get("machine") or {}
    accel = (machine.get("accelerator") or "?").upper()
    fig.suptitle(
        f"lightpod vs runc — {machine.get('cores', '?')} cores, {accel}, "
        f"{results.get('started_at', '')}",
        fontsize="medium",
    )
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=80)


if __name__ == "__main__":
    main()
