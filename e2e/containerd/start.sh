#!/bin/bash
# Starts a private containerd for lightpod's end-to-end tests and imports the test images.
#
#   e2e/containerd/start.sh DIR [SHIM_DIR]
#
# DIR holds everything of the instance: config, root, state, sockets, log, CNI config and
# IPAM state. Keep it short: unix socket paths are limited to 108 bytes. SHIM_DIR goes first
# in containerd's PATH, so containerd finds containerd-shim-lightpod-v2 there.
#
# Prints the environment the tests need as `export NAME=value` lines on stdout (also written
# to DIR/e2e.env), so a runner can `eval "$(e2e/containerd/start.sh DIR SHIM_DIR)"`.
# Progress and timings go to stderr. e2e/containerd/stop.sh DIR undoes everything.
#
# Environment: LIGHTPOD_E2E_CNI_BRIDGE (default lpe2e0), LIGHTPOD_E2E_CNI_SUBNET (default
# 10.250.87.0/24), LIGHTPOD_E2E_FIXTURE (the lightpod-e2e-fixture binary; default: the one in
# $LIGHTPOD_BIN_DIR or target/debug, else built with cargo), LIGHTPOD_E2E_CONTAINERD_LOG_LEVEL.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)

die() { echo "start.sh: $*" >&2; exit 1; }
log() { echo "start.sh: $*" >&2; }
now_ms() { date +%s%3N; }

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: start.sh DIR [SHIM_DIR]"
[ "$(id -u)" = 0 ] || die "must run as root (containerd, mounts, network namespaces)"
mkdir -p "$1"
dir=$(cd "$1" && pwd)
shim_dir=${2:-$workspace/target/debug}
bridge=${LIGHTPOD_E2E_CNI_BRIDGE:-lpe2e0}
subnet=${LIGHTPOD_E2E_CNI_SUBNET:-10.250.87.0/24}
cni_bin_dir=/usr/lib/cni
address=$dir/containerd.sock

for tool in containerd ctr runc containerd-shim-runc-v2 ip; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install containerd runc iproute2)"
done
for plugin in bridge host-local loopback portmap; do
  [ -x "$cni_bin_dir/$plugin" ] || die "$cni_bin_dir/$plugin missing (apt-get install containernetworking-plugins)"
done
[ ${#address} -lt 100 ] || die "$address is too long for a unix socket; use a shorter DIR"
if [ -f "$dir/containerd.pid" ] && kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null; then
  die "a containerd already runs for $dir; run e2e/containerd/stop.sh $dir first"
fi
if [ -e "$dir/root" ]; then
  die "$dir holds an earlier instance; run e2e/containerd/stop.sh $dir first"
fi
if ip link show "$bridge" >/dev/null 2>&1; then
  die "bridge $bridge exists (left by an earlier run?); run e2e/containerd/stop.sh $dir, or set LIGHTPOD_E2E_CNI_BRIDGE"
fi
if [ -n "$(ip -4 route show to match "${subnet%/*}" | grep -v '^default')" ]; then
  die "$subnet is already routed on this host; set LIGHTPOD_E2E_CNI_SUBNET"
fi

# What stop.sh must restore or remove: host-wide state the instance may create.
: > "$dir/created"
for shared in /run/containerd /var/run/netns; do
  [ -e "$shared" ] || echo "$shared" >> "$dir/created"
done
iptables -w -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 || echo "iptables:CNI-HOSTPORT" >> "$dir/created"
cat /proc/sys/net/ipv4/ip_forward > "$dir/ip_forward.orig"

mkdir -p "$dir/root" "$dir/state" "$dir/cni/net.d" "$dir/cni/ipam"
render() {
  sed -e "s|@DIR@|$dir|g" -e "s|@BRIDGE@|$bridge|g" -e "s|@SUBNET@|$subnet|g" \
      -e "s|@CNI_BIN_DIR@|$cni_bin_dir|g" -e "s|@PAUSE_IMAGE@|docker.io/lightpod/pause:e2e|g" \
      -e "s|@LOG_LEVEL@|${LIGHTPOD_E2E_CONTAINERD_LOG_LEVEL:-info}|g" "$1"
}
render "$here/config.toml.in" > "$dir/config.toml"
render "$here/cni.conflist.in" > "$dir/cni/net.d/10-lightpod-e2e.conflist"

# The test images: built once per machine by the e2e crate (content-addressed cache).
fixture=${LIGHTPOD_E2E_FIXTURE:-}
if [ -z "$fixture" ]; then
  for candidate in "${LIGHTPOD_BIN_DIR:-}/lightpod-e2e-fixture" "$workspace/target/debug/lightpod-e2e-fixture"; do
    if [ -x "$candidate" ]; then fixture=$candidate; break; fi
  done
fi
if [ -z "$fixture" ]; then
  log "building lightpod-e2e-fixture"
  (cd "$workspace" && cargo build -q -p lightpod-e2e --bin lightpod-e2e-fixture) >&2
  fixture=$workspace/target/debug/lightpod-e2e-fixture
fi
images=$("$fixture" images) || die "$fixture images failed"

t0=$(now_ms)
# setsid: the daemon must not die with the runner's terminal or process group.
PATH="$shim_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  setsid containerd --config "$dir/config.toml" >> "$dir/containerd.log" 2>&1 < /dev/null &
echo $! > "$dir/containerd.pid"
ctr_() { ctr --address "$address" "$@"; }
for _ in $(seq 1 200); do
  if [ -S "$address" ] && ctr_ version >/dev/null 2>&1; then break; fi
  kill -0 "$(cat "$dir/containerd.pid")" 2>/dev/null || { tail -20 "$dir/containerd.log" >&2; die "containerd exited"; }
  sleep 0.05
done
ctr_ version >/dev/null 2>&1 || { tail -20 "$dir/containerd.log" >&2; die "containerd did not answer on $address"; }
t1=$(now_ms)
# A plugin that fails to load only warns in the log; the tests need these.
for plugin in tasks cri; do
  # Captured first: grep -q exits at its match and would SIGPIPE ctr under pipefail.
  plugins=$(ctr_ plugins ls)
  [ "$(awk -v p="$plugin" '$1 == "io.containerd.grpc.v1" && $2 == p { print $4 }' <<< "$plugins")" = ok ] ||
    { grep -E 'level=(warning|error)' "$dir/containerd.log" | tail -5 >&2; die "plugin io.containerd.grpc.v1.$plugin did not load; stop.sh $dir, then fix $dir/config.toml"; }
done
log "containerd up in $((t1 - t0)) ms (pid $(cat "$dir/containerd.pid"), log $dir/containerd.log)"

# CRI pods use the k8s.io namespace; ctr tests import into namespaces of their own.
while read -r name archive; do
  ctr_ -n k8s.io images import "$archive" >/dev/null || die "import of $archive failed"
  grep -qxF "$name" <<< "$(ctr_ -n k8s.io images ls -q)" || die "$name missing after importing $archive"
done <<< "$images"
t2=$(now_ms)
log "images imported into k8s.io in $((t2 - t1)) ms"

env_file=$dir/e2e.env
{
  echo "export LIGHTPOD_E2E_CONTAINERD_ADDRESS=$address"
  echo "export LIGHTPOD_E2E_CONTAINERD_DIR=$dir"
  echo "export LIGHTPOD_E2E_CNI_BRIDGE=$bridge"
  echo "export LIGHTPOD_E2E_CNI_SUBNET=$subnet"
} > "$env_file"
cat "$env_file"
