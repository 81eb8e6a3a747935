#!/usr/bin/env bash
# Benchmarks lightpod against runc in one run, on one private containerd, with the same
# image on the same machine: start latency (and lightpod's start in phases), pods started at
# once, host memory per pod, density. Writes bench/results/results.{json,md,png}.
#
# Usage: sudo bench/run.sh [lightpod-bench flags…]
#   --quick                 a short run (5 pods, 5 at once, density 10, 2 memory pods)
#   --pods N                pods per runtime started one at a time (default 20)
#   --parallel 10,50        batches of pods started at once (default 10,50)
#   --density N             pods per runtime kept running at once, at most (default 100)
#   --memory-pods N         pods per runtime in the memory measure (default 5)
#   --scenarios latency,parallel,memory,density
#   --help                  every flag
#
# It installs what the run needs (deploy/install.sh --deps-only), builds the workspace, the
# static agent and lightpod's guest kernel into target/ (nothing is installed system-wide),
# writes the shims' lightpod configuration into target/bench/, makes a Python venv with
# matplotlib in target/bench/venv for the chart, and runs target/release/lightpod-bench.
# Ctrl-C or SIGTERM: the benchmark removes every pod it made and stops its containerd
# (a second signal forces it).
#
# Environment:
#   LIGHTPOD_BENCH_KERNEL    guest kernel (default: the one built into target/kernel)
#   LIGHTPOD_BENCH_SKIP_DEPS=1  skip deploy/install.sh --deps-only
#   LIGHTPOD_BENCH_QEMU      extra lines for the [qemu] section of the shims' configuration,
#                            e.g. to measure lightpod as it was before a change:
#                            $'tcg_tb_size_mib = 1024\nfree_page_reporting = false'
#   LIGHTPOD_BENCH_RESULTS   where the results go (default bench/results)
#   CARGO_BUILD_JOBS         parallel compile jobs (builds are slow on 2 cores)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
log() { echo "bench/run.sh: $*" >&2; }

[[ $(id -u) == 0 ]] || {
    echo "bench/run.sh: run as root (sudo bench/run.sh): it starts containerd and boots VMs" >&2
    exit 1
}

if [[ ${LIGHTPOD_BENCH_SKIP_DEPS:-} != 1 ]]; then
    deploy/install.sh --deps-only
fi

log "building the workspace (release)"
cargo build --release --workspace --bins
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p lightpod-agent --target x86_64-unknown-linux-gnu

kernel=${LIGHTPOD_BENCH_KERNEL:-}
if [[ -z $kernel ]]; then
    log "building the guest kernel into target/kernel (cached after the first build)"
    vmm-backend/guest/kernel/build-kernel.sh "$here/target/kernel"
    kernel=$here/target/kernel/vmlinuz
fi

# The configuration of the shims the private containerd starts (containerd passes its
# environment on to them). The boot timeout is generous so that many guests booting at once
# under emulation show as slow starts, not as failures.
mkdir -p "$here/target/bench"
export LIGHTPOD_CONFIG=$here/target/bench/lightpod.toml
cat >"$LIGHTPOD_CONFIG" <<CONFIG
[runtime]
state_dir = "/run/lightpod-bench/state"
[vm]
boot_timeout_secs = 300
[guest]
kernel = "$kernel"
agent = "$here/target/x86_64-unknown-linux-gnu/release/lightpod-agent"
image_cache = "$here/target/bench-cache/guest"
[qemu]
${LIGHTPOD_BENCH_QEMU:-}
CONFIG

# The chart: matplotlib from PyPI in a venv (Debian's python3-venv). Without it the run
# still writes the JSON and markdown results.
venv=$here/target/bench/venv
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "making a Python venv with matplotlib in $venv (for the chart)"
    if ! { /usr/bin/python3 -m venv "$venv" && "$venv/bin/pip" install --quiet 'matplotlib>=3.6,<4'; }; then
        log "no matplotlib: the run writes no chart"
    fi
fi

# `exec`: Ctrl-C and SIGTERM go straight to the benchmark, which cleans up.
exec "$here/target/release/lightpod-bench" \
    --results-dir "${LIGHTPOD_BENCH_RESULTS:-$here/bench/results}" \
    --image-cache "$here/target/bench-cache" \
    --python "$venv/bin/python" \
    --chart-script "$here/bench/chart.py" \
    --invoked-as "sudo bench/run.sh${*:+ $*}" \
    "$@"
