#!/usr/bin/env bash
# Boots Xen 4.17 with the PV dom0 that build-dom0.sh made, under QEMU with TCG, and prints
# the serial console (Xen's, then dom0's, including the test driver's `LPXEN` lines).
#
# Usage: e2e/xen/run.sh WORK [--pvh]
#   --pvh   also run a PVH guest (uses QEMU's emulated AMD SVM)
# Environment: XEN_E2E_TIMEOUT (seconds, default 300).
# The exit status is 0 when the driver reported `LPXEN DONE pass=N fail=0`.
set -uo pipefail
[[ $# -ge 1 ]] || {
    echo "usage: run.sh WORK [--pvh]" >&2
    exit 2
}
out=$1/out
dom0_extra=""
[[ ${2:-} == --pvh ]] && dom0_extra=" lightpod.pvh"
log=$out/serial.log
# -cpu max without SMAP: QEMU 7.2's TCG faults a PV kernel's IRET frame read at CPL 3 under
# SMAP. The dom0 command line follows the kernel in -initrd and must hold no comma.
timeout --foreground "${XEN_E2E_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg -cpu max,-smap \
    -m 2048 -smp 2 -display none -vga none -no-reboot -monitor none -serial stdio \
    -kernel "$out/xen.elf" \
    -append "console=com1 com1=115200,8n1 dom0_mem=768M,max:768M dom0_max_vcpus=1 spec-ctrl=no" \
    -initrd "$out/vmlinux console=hvc0 earlyprintk=xen rdinit=/init mitigations=off quiet$dom0_extra,$out/dom0.cpio" \
    </dev/null 2>&1 | tee "$log"
grep -q 'LPXEN DONE pass=[0-9]* fail=0' "$log"
