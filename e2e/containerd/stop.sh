#!/bin/bash
# Stops the private containerd that start.sh started in DIR and removes everything it made:
# pods (through CRI, so CNI tears their networks down), tasks and containers of every
# namespace, the daemon, leftover shims, mounts under DIR, the CNI bridge, the portmap
# iptables chains, and DIR itself. Restores net.ipv4.ip_forward.
#
#   e2e/containerd/stop.sh DIR
#
# Exits non-zero and says what is left when something could not be removed.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
workspace=$(cd "$here/../.." && pwd)

log() { echo "stop.sh: $*" >&2; }

[ $# -eq 1 ] || { log "usage: stop.sh DIR"; exit 2; }
[ "$(id -u)" = 0 ] || { log "must run as root"; exit 2; }
[ -d "$1" ] || { log "$1 does not exist: nothing to stop"; exit 0; }
dir=$(cd "$1" && pwd)
address=$dir/containerd.sock
bridge=$(sed -n 's/^export LIGHTPOD_E2E_CNI_BRIDGE=//p' "$dir/e2e.env" 2>/dev/null)
bridge=${bridge:-${LIGHTPOD_E2E_CNI_BRIDGE:-lpe2e0}}
pid=$(cat "$dir/containerd.pid" 2>/dev/null || true)
ctr_() { timeout 30 ctr --address "$address" "$@"; }

fixture_bin() {
  for candidate in "${LIGHTPOD_E2E_FIXTURE:-}" "${LIGHTPOD_BIN_DIR:-}/lightpod-e2e-fixture" \
      "$workspace/target/debug/lightpod-e2e-fixture"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
}

if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  # Pods first, through CRI: that runs CNI DEL (IPs, veths, portmap rules) as kubelet would.
  fixture=$(fixture_bin)
  if [ -n "$fixture" ]; then
    RUST_BACKTRACE=0 timeout 120 "$fixture" remove-pods "$address" >&2 || log "removing CRI pods failed; going on"
  else
    log "lightpod-e2e-fixture not built: CRI pods are not removed through CRI"
  fi
  for ns in $(ctr_ namespaces ls -q); do
    for task in $(ctr_ -n "$ns" tasks ls -q); do
      ctr_ -n "$ns" tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1
    done
    for task in $(ctr_ -n "$ns" tasks ls -q); do
      ctr_ -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || log "task $ns/$task: delete failed"
    done
    for container in $(ctr_ -n "$ns" containers ls -q); do
      ctr_ -n "$ns" containers delete "$container" >/dev/null 2>&1 ||
        log "container $ns/$container: delete failed"
    done
  done
  kill -TERM "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && { log "containerd ignored SIGTERM; killing it"; kill -KILL "$pid"; }
fi

# Shims outlive containerd by design; those of this instance name its socket.
for proc in /proc/[0-9]*; do
  cmdline=$( { tr '\0' ' ' < "$proc/cmdline"; } 2>/dev/null) || continue
  case "$cmdline" in
    *containerd-shim*"-address $address"*)
      log "killing leftover shim ${proc#/proc/}: $cmdline"
      kill -KILL "${proc#/proc/}" 2>/dev/null ;;
  esac
done
sleep 0.2

# Mounts under DIR (rootfs overlays, shm, pod network namespaces), deepest first.
for _ in 1 2 3; do
  mounts=$(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  [ -z "$mounts" ] && break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

if ip link show "$bridge" >/dev/null 2>&1; then
  for port in /sys/class/net/"$bridge"/brif/*; do
    [ -e "$port" ] && ip link del "$(basename "$port")" 2>/dev/null
  done
  ip link del "$bridge" || log "could not delete bridge $bridge"
fi

# portmap leaves its shared chains behind; remove them if this instance brought them in.
if [ -f "$dir/created" ] && grep -qx 'iptables:CNI-HOSTPORT' "$dir/created"; then
  for chain in PREROUTING OUTPUT POSTROUTING; do
    iptables -w -t nat -S "$chain" | grep -- '-j CNI-HOSTPORT-' | sed 's/^-A/-D/' |
      while read -r rule; do eval "iptables -w -t nat $rule"; done
  done
  for chain in $(iptables -w -t nat -S | awk '$1 == "-N" && $2 ~ /^CNI-(HOSTPORT-|DN-)/ { print $2 }'); do
    iptables -w -t nat -F "$chain"
  done
  for chain in $(iptables -w -t nat -S | awk '$1 == "-N" && $2 ~ /^CNI-(HOSTPORT-|DN-)/ { print $2 }'); do
    iptables -w -t nat -X "$chain"
  done
fi

if [ -f "$dir/ip_forward.orig" ]; then
  cat "$dir/ip_forward.orig" > /proc/sys/net/ipv4/ip_forward
fi
# Host directories the instance created: removed when nothing but empty directories is left.
if [ -f "$dir/created" ]; then
  grep '^/' "$dir/created" | while read -r shared; do
    [ -d "$shared" ] && find "$shared" -depth -type d -empty -delete 2>/dev/null
    [ -e "$shared" ] && log "$shared is not empty; left in place"
  done
fi

leftover=$(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
if [ -n "$leftover" ]; then
  log "mounts left under $dir: $leftover"
  exit 1
fi
rm -rf "$dir"
if ip link show "$bridge" >/dev/null 2>&1; then log "bridge $bridge is still there"; exit 1; fi
log "stopped; $dir removed"
