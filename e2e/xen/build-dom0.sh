#!/usr/bin/env bash
# Builds what the Xen end-to-end test boots: Debian's Xen 4.17 hypervisor, a PV dom0 (Debian's
# generic kernel, which has CONFIG_XEN_DOM0) and a dom0 initramfs holding the Xen toolstack,
# lightpod, the static agent, lightpod's guest kernel, a busybox root filesystem and the test
# driver (dom0-test.sh). Nothing is installed on the host: the Xen and kernel packages are
# fetched with `apt-get download` once, cached in WORK/debs, and unpacked with dpkg-deb.
#
# Usage: e2e/xen/build-dom0.sh WORK
# Environment (all required; e2e/run.sh and the test set them):
#   LIGHTPOD_BIN_DIR      directory holding the `lightpod` binary
#   LIGHTPOD_AGENT        the static agent
#   LIGHTPOD_XEN_KERNEL   the guest kernel (a bzImage; a `vmlinux` beside it goes along)
#   LIGHTPOD_XEN_ROOTFS   a busybox root filesystem directory
# Output: WORK/out/{xen.elf,vmlinux,dom0.cpio}
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() {
    echo "build-dom0.sh: error: $*" >&2
    exit 1
}
[[ $# == 1 ]] || die "usage: build-dom0.sh WORK"
work=$(mkdir -p "$1" && cd "$1" && pwd)
for var in LIGHTPOD_BIN_DIR LIGHTPOD_AGENT LIGHTPOD_XEN_KERNEL LIGHTPOD_XEN_ROOTFS; do
    [[ -n ${!var:-} ]] || die "$var is not set"
done
lightpod=$LIGHTPOD_BIN_DIR/lightpod
for f in "$lightpod" "$LIGHTPOD_AGENT" "$LIGHTPOD_XEN_KERNEL" /bin/busybox /usr/sbin/mkfs.ext4; do
    [[ -e $f ]] || die "$f is missing"
done
xenver=4.17
mkdir -p "$work/debs" "$work/out"

# 1. Packages: the kernel ABI linux-image-amd64 points to is resolved once; the stamp keeps
#    the package list, so a rerun needs no network and a new list refetches.
packages() {
    local kver
    kver=$(apt-cache depends linux-image-amd64 |
        awk '/Depends: linux-image-[0-9]/{sub("linux-image-","",$2); print $2; exit}')
    [[ -n $kver ]] || {
        echo "build-dom0.sh: cannot resolve linux-image-amd64" >&2
        return 1
    }
    echo "xen-hypervisor-$xenver-amd64 xen-utils-$xenver xen-utils-common xenstore-utils" \
        "linux-image-$kver libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1" \
        "libxenmisc$xenver libxenstore4 libxentoollog1 libyajl2 libxendevicemodel1" \
        "libxenhypfs1 libxentoolcore1"
}
download() {
    debs=$(packages) || return 1
    rm -f "$work/debs"/*.deb
    (cd "$work/debs" && apt-get download $debs >/dev/null)
}
if [[ -s $work/debs/.done ]]; then
    debs=$(cat "$work/debs/.done")
else
    # A fresh machine may have no or stale package lists: update them once and retry.
    if ! download; then
        apt-get update -q >/dev/null || die "apt-get update failed"
        download || die "apt-get download failed"
    fi
    echo "$debs" >"$work/debs/.done"
fi
root=$work/root
if [[ $(cat "$root/.done" 2>/dev/null) != "$debs" ]]; then
    rm -rf "$root" "$work/out/vmlinux"
    mkdir -p "$root"
    for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$root"; done
    echo "$debs" >"$root/.done"
fi
kver=$(sed -n 's/.*linux-image-\([^ ]*\).*/\1/p' <<<"$debs")

# 2. The hypervisor as the ELF QEMU's multiboot loader reads, and the dom0 kernel as an ELF
#    vmlinux: Xen loads it directly, which saves decompressing the xz bzImage under TCG.
zcat "$root/boot/xen-$xenver-amd64.gz" >"$work/out/xen.elf"
if [[ ! -s $work/out/vmlinux ]]; then
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$root/boot/vmlinuz-$kver" | head -1 | cut -d: -f1)
    [[ -n $offset ]] || die "no xz payload in vmlinuz-$kver"
    tail -c +$((offset + 1)) "$root/boot/vmlinuz-$kver" | xz -dc --single-stream \
        >"$work/out/vmlinux.tmp" 2>/dev/null || true
    [[ -s $work/out/vmlinux.tmp ]] || die "cannot unpack vmlinuz-$kver"
    mv "$work/out/vmlinux.tmp" "$work/out/vmlinux"
fi

# 3. The dom0 initramfs, assembled in a fresh directory.
init=$work/initramfs
rm -rf "$init"
mkdir -p "$init"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc/xen,etc/lightpod} \
    "$init"/{var/lib/xen,var/log/xen,lib64,lib/x86_64-linux-gnu,lib/modules,lightpod}
ln -s ../run "$init/var/run"
cp /bin/busybox "$init/bin/busybox"
for applet in $(/bin/busybox --list); do
    [[ -e $init/bin/$applet ]] || ln -s busybox "$init/bin/$applet"
done

# Shared libraries of host binaries (and of the toolstack, whose own libs come from root/).
copy_libs() {
    LD_LIBRARY_PATH=$root/usr/lib/x86_64-linux-gnu ldd "$@" | awk '/=> \//{print $3}' |
        sort -u | while read -r lib; do
        [[ $lib == "$root"/* ]] || cp -Ln "$lib" "$init/lib/x86_64-linux-gnu/"
    done
}
bindir=$init/usr/lib/xen-$xenver/bin
mkdir -p "$bindir" "$init/usr/lib/x86_64-linux-gnu"
tools="xl xenstored xenconsoled xen-init-dom0 libxl-save-helper"
for tool in $tools; do cp "$root/usr/lib/xen-$xenver/bin/$tool" "$bindir/"; done
cp -a "$root"/usr/lib/x86_64-linux-gnu/*.so* "$init/usr/lib/x86_64-linux-gnu/"
copy_libs $(for tool in $tools; do echo "$bindir/$tool"; done)
cp -L /lib64/ld-linux-x86-64.so.2 "$init/lib64/"
# glibc dlopen()s libgcc_s for pthread_cancel: xl aborts without it.
cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$init/lib/x86_64-linux-gnu/"
cp -a "$root/etc/xen/xl.conf" "$root/etc/xen/scripts" "$init/etc/xen/"
# Xen's block hotplug script needs bash (as /bin/bash), flock, and xenstore-read/-write.
rm -f "$init/bin/bash"
cp /bin/bash "$init/bin/bash"
cp /usr/bin/flock "$init/usr/bin/"
cp "$root"/usr/bin/xenstore* "$init/usr/bin/"
copy_libs /bin/bash /usr/bin/flock
modules=$root/lib/modules/$kver/kernel/drivers
for module in xen/xen-evtchn xen/xen-gntdev xen/xen-gntalloc xen/xen-privcmd xen/xenfs/xenfs \
    block/loop block/xen-blkback/xen-blkback; do
    cp "$modules/$module.ko" "$init/lib/modules/"
done

# lightpod: the CLI, mkfs.ext4 for root filesystem images, the agent, the guest kernel, and
# a root filesystem to run.
cp "$lightpod" "$init/usr/bin/lightpod"
cp /usr/sbin/mkfs.ext4 "$init/usr/sbin/"
cp /etc/mke2fs.conf "$init/etc/" 2>/dev/null || true
copy_libs "$init/usr/bin/lightpod" /usr/sbin/mkfs.ext4
cp "$LIGHTPOD_AGENT" "$init/lightpod/lightpod-agent"
install -D -m 0755 "$here/../../vmm-backend/xen/block-hotplug" \
    "$init/usr/local/lib/lightpod/xen-block-hotplug"
# The guest kernel, with the ELF vmlinux beside it when there is one (the Xen backend boots
# that: libxc loads it without decompressing).
mkdir -p "$init/lightpod/kernel"
cp "$LIGHTPOD_XEN_KERNEL" "$init/lightpod/kernel/vmlinuz"
elf=$(dirname "$LIGHTPOD_XEN_KERNEL")/vmlinux
[[ ! -f $elf ]] || cp "$elf" "$init/lightpod/kernel/vmlinux"
cp -a "$LIGHTPOD_XEN_ROOTFS" "$init/rootfs"
rm -f "$init/rootfs/.complete"
cp "$here/dom0-init.sh" "$init/init"
cp "$here/dom0-test.sh" "$init/lightpod/dom0-test.sh"
chmod +x "$init/init" "$init/lightpod/dom0-test.sh"

(cd "$init" && find . | cpio -o -H newc --quiet) >"$work/out/dom0.cpio"
rm -rf "$init"
echo "build-dom0.sh: $(du -h "$work/out/dom0.cpio" | cut -f1) dom0 initramfs in $work/out" >&2
