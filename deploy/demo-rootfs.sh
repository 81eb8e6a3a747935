#!/usr/bin/env bash
# Makes a busybox root filesystem in DIR from Debian's busybox-static: /bin with busybox and
# a hard link per applet (hard, not symbolic: a symlink would point at the host's path), and
# the directories a container expects.
#
# Usage: deploy/demo-rootfs.sh DIR
set -euo pipefail

die() {
    echo "demo-rootfs.sh: error: $*" >&2
    exit 1
}

[[ $# == 1 ]] || die "usage: deploy/demo-rootfs.sh DIR"
dir=$1
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox missing (apt-get install busybox-static)"
[[ $(file -b "$busybox" 2>/dev/null || echo static) != *dynamic* ]] ||
    die "$busybox is dynamically linked (apt-get install busybox-static)"
if [[ -e $dir && -n $(ls -A "$dir") && ! -x $dir/bin/busybox ]]; then
    die "$dir exists and is not a busybox root filesystem; pick an empty or new directory"
fi

mkdir -p "$dir"/{bin,dev,etc,proc,root,sys,tmp,var}
chmod 1777 "$dir/tmp"
install -m 0755 "$busybox" "$dir/bin/busybox"
"$dir/bin/busybox" --install "$dir/bin"
echo 'root:x:0:0:root:/root:/bin/sh' >"$dir/etc/passwd"
echo 'root:x:0:' >"$dir/etc/group"
echo "demo-rootfs.sh: busybox root filesystem in $dir" >&2
