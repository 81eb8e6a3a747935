#!/usr/bin/env bash
# Runs all of lightpod's tests: the unit tests of every crate and the end-to-end tests
# against real QEMU guests, a real guest kernel and a private containerd.
#
# Usage: sudo e2e/run.sh [cargo test arguments…]      e.g.  sudo e2e/run.sh --test run
#
# First it installs what the tests need (deploy/install.sh --deps-only: Debian packages and
# virtiofsd), then builds the workspace, the static agent and lightpod's guest kernel into
# target/ (nothing is installed system-wide), starts a private containerd, runs
# `cargo test --release --workspace`, and stops containerd again, also on failure or ^C.
#
# Environment:
#   LIGHTPOD_E2E_KERNEL      guest kernel for the tests (default: the one built into target/kernel)
#   LIGHTPOD_TEST_THREADS    parallel tests (default 2: each TCG guest keeps a core busy)
#   LIGHTPOD_E2E_CNI_BRIDGE  the private containerd's CNI bridge (default lpe2e0)
#   LIGHTPOD_E2E_CNI_SUBNET  its pod subnet (default 10.250.87.0/24)
#   LIGHTPOD_E2E_CONTAINERD_LOG_LEVEL  its log level (default info)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"
log() { echo "e2e/run.sh: $*" >&2; }

[[ $(id -u) == 0 ]] || {
    echo "e2e/run.sh: run as root (sudo e2e/run.sh): the tests boot VMs and make mounts" >&2
    exit 1
}

deploy/install.sh --deps-only

log "building the workspace (release)"
cargo build --release --workspace --bins
RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release -p lightpod-agent --target x86_64-unknown-linux-gnu

if [[ -z ${LIGHTPOD_E2E_KERNEL:-} ]]; then
    log "building the guest kernel into target/kernel (cached after the first build)"
    vmm-backend/guest/kernel/build-kernel.sh "$here/target/kernel"
    export LIGHTPOD_E2E_KERNEL=$here/target/kernel/vmlinuz
fi
# The tests fail, rather than skip, when this host lacks something they need.
export LIGHTPOD_E2E_REQUIRE=1
export LIGHTPOD_BIN_DIR=$here/target/release
export LIGHTPOD_AGENT=$here/target/x86_64-unknown-linux-gnu/release/lightpod-agent

# The configuration of the shims the private containerd starts (containerd passes its
# environment on to them): the kernel and agent built above, state under /run/lightpod-e2e.
export LIGHTPOD_E2E_STATE_DIR=/run/lightpod-e2e
mkdir -p "$here/target/e2e"
export LIGHTPOD_CONFIG=$here/target/e2e/lightpod.toml
cat >"$LIGHTPOD_CONFIG" <<EOF
[runtime]
state_dir = "$LIGHTPOD_E2E_STATE_DIR"
[guest]
kernel = "$LIGHTPOD_E2E_KERNEL"
agent = "$LIGHTPOD_AGENT"
image_cache = "$here/target/e2e-cache/guest"
EOF

# The private containerd (lightpod-harness, through the fixture binary built above): its
# shims come from target/release. LIGHTPOD_E2E_CNI_BRIDGE / LIGHTPOD_E2E_CNI_SUBNET choose
# another bridge and subnet, so that two runs can share a host.
fixture=$LIGHTPOD_BIN_DIR/lightpod-e2e-fixture
containerd_dir=$(mktemp -d /tmp/lightpod-e2e-containerd.XXXXXX)
stop_containerd() { "$fixture" containerd-stop "$containerd_dir" || true; }
trap stop_containerd EXIT
trap 'exit 130' INT TERM
# Assigned first: `set -e` sees a failed start here, not through eval.
containerd_env=$("$fixture" containerd-start "$containerd_dir" "$LIGHTPOD_BIN_DIR")
eval "$containerd_env"

log "running the tests"
cargo test --release --workspace "$@" -- --test-threads="${LIGHTPOD_TEST_THREADS:-2}"
