#!/bin/sh
# The Xen end-to-end cases, run in dom0: `lightpod run --backend xen` on a busybox root
# filesystem. Each case prints `LPXEN PASS <case>` or `LPXEN FAIL <case> <why>`; timings of
# the first run print as `LPXEN TIMING …`; the last line is `LPXEN DONE pass=N fail=M`.
pass=0
fail=0
verdict() { # case, failure reason ("" = pass)
    if [ -z "$2" ]; then
        echo "LPXEN PASS $1"
        pass=$((pass + 1))
    else
        echo "LPXEN FAIL $1 $2"
        fail=$((fail + 1))
        sed 's/^/LPXEN   stderr: /' /tmp/err | tail -15
    fi
}
# run ARGS…: lightpod's output in /tmp/out and /tmp/err, exit code in $rc, seconds in $took.
run() {
    start=$(cut -d' ' -f1 /proc/uptime)
    lightpod "$@" </dev/null >/tmp/out 2>/tmp/err
    rc=$?
    took=$(awk -v a="$start" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b-a}')
    echo "LPXEN RAN rc=$rc in ${took}s: lightpod $*"
}
expect() { # case, want rc, want text in stdout ("" = none), want text in stderr ("" = none)
    why=""
    [ "$rc" = "$2" ] || why="exit code $rc, want $2;"
    if [ -n "$3" ] && ! grep -q "$3" /tmp/out; then why="$why stdout lacks '$3' ($(head -c 200 /tmp/out | tr '\n' '|'));"; fi
    if [ -n "$4" ] && ! grep -q "$4" /tmp/err; then why="$why stderr lacks '$4';"; fi
    verdict "$1" "$why"
}

cat >/etc/lightpod/config.toml <<CONF
[runtime]
backend = "xen"
[vm]
boot_timeout_secs = 120
[guest]
kernel = "/lightpod/kernel/vmlinuz"
agent = "/lightpod/lightpod-agent"
image_cache = "/var/lib/lightpod/guest"
CONF
sed 's#^kernel = .*#kernel = "/nonexistent/vmlinuz"#' /etc/lightpod/config.toml >/etc/lightpod/no-kernel.toml
{
    cat /etc/lightpod/config.toml
    # TCG's emulated SVM cannot complete an intercepted RDTSCP: PVH guests read the TSC natively.
    printf '[xen]\nguest_type = "pvh"\ntsc_mode = "native"\n'
} >/etc/lightpod/pvh.toml

run doctor
expect doctor 0 "ok       xen" ""
sed 's/^/LPXEN   doctor: /' /tmp/out

export LIGHTPOD_LOG=lightpod_sandbox=debug,lightpod_vmm=debug,warn
run run --timings --rootfs /rootfs -- sh -c \
    'echo hello from xen; cat /sys/hypervisor/type /sys/hypervisor/guest_type; echo to-err >&2'
unset LIGHTPOD_LOG
expect stdout-and-exit-0 0 "hello from xen" "to-err"
grep -q '^PV$' /tmp/out || verdict pv-guest "guest_type is not PV: $(tr '\n' '|' </tmp/out)"
sed -n 's/^  \(.*[0-9a-z]\)$/LPXEN TIMING pv \1/p' /tmp/err
grep -E 'rootfs image attached|VM booted|VM stopped' /tmp/err | sed 's/^/LPXEN DEBUG /'

run run --rootfs /rootfs -- sh -c 'exit 42'
expect exit-code-42 42 "" ""

run run --rootfs /rootfs -- sh -c 'kill -KILL $$'
expect killed-by-sigkill 137 "" ""

run run --rootfs /rootfs -- sh -c 'echo written > /new-file; cat /new-file'
expect rootfs-writes-stay-in-the-image 0 "written" ""
[ ! -e /rootfs/new-file ] || verdict rootfs-host-untouched "the write reached the host directory"

run --config /etc/lightpod/no-kernel.toml run --rootfs /rootfs -- true
expect missing-kernel 125 "" "/nonexistent/vmlinuz"

run run --memory-mib 6000 --rootfs /rootfs -- true
expect more-memory-than-xen-has 125 "" "MiB free"

if grep -q lightpod.pvh /proc/cmdline; then
    run --config /etc/lightpod/pvh.toml run --timings --rootfs /rootfs -- cat /sys/hypervisor/guest_type
    expect pvh-guest 0 "PVH" ""
    sed -n 's/^  \(.*[0-9a-z]\)$/LPXEN TIMING pvh \1/p' /tmp/err
fi

# Nothing may be left: no domain but dom0, no monitor, no state, no loop device.
domains=$(xl list | tail -n +2 | awk '{print $1}' | tr '\n' ' ')
[ "$domains" = "Domain-0 " ] || verdict only-dom0-left "domains left: $domains"
[ "$domains" = "Domain-0 " ] && verdict only-dom0-left ""
left=$(ls -A /run/lightpod/sandboxes 2>/dev/null)
loops=$(losetup -a)
monitors=$(ps | grep '[x]l create' || true)
why=""
[ -z "$left" ] || why="state left: $left;"
[ -z "$loops" ] || why="$why loop devices left: $loops;"
[ -z "$monitors" ] || why="$why xl monitors left: $monitors;"
verdict no-leftover-state "$why"
if [ -n "$why" ]; then
    tail -40 /var/log/xen/xen-hotplug.log 2>/dev/null | sed 's/^/LPXEN   hotplug: /'
    grep -v xenstored /var/log/messages 2>/dev/null | tail -20 | sed 's/^/LPXEN   syslog: /'
fi

echo "LPXEN DONE pass=$pass fail=$fail"
