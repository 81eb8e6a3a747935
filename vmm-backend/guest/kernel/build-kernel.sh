#!/usr/bin/env bash
# Builds lightpod's guest kernel from Debian's linux-source-6.1, with the patches in
# patches/ beside this script applied: `make tinyconfig`, plus the fragment lightpod.config
# beside this script, then `make olddefconfig`. Everything is built in (no modules).
# Installs into OUTDIR (default /var/lib/lightpod/kernel):
#   vmlinuz       bzImage (LZ4), for any boot loader or QEMU -kernel
#   vmlinux       stripped ELF with the PVH entry note, for QEMU -kernel (PVH) and Xen
#   config        the final .config
#   build.sha256  hash of (fragment + patches + source version + this script); a rerun
#                 with the same hash does nothing
#
# Usage: build-kernel.sh [OUTDIR]
# Environment:
#   LIGHTPOD_KERNEL_SOURCE  source tarball (default /usr/src/linux-source-6.1.tar.xz)
#   LIGHTPOD_KERNEL_WORK    work dir for the extracted source and build tree
#                           (default /var/tmp/lightpod-kernel)
#   JOBS                    parallel make jobs (default: nproc)
#
# Debian 12 packages it needs:
#   apt-get install build-essential bc bison flex libelf-dev lz4 xz-utils patch linux-source-6.1
# (libssl-dev is not needed: no module signing, no trusted keyring.)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fragment="$here/lightpod.config"
shopt -s nullglob
patches=("$here"/patches/*.patch)
shopt -u nullglob
self="$here/$(basename "${BASH_SOURCE[0]}")"
out=${1:-/var/lib/lightpod/kernel}
tarball=${LIGHTPOD_KERNEL_SOURCE:-/usr/src/linux-source-6.1.tar.xz}
work=${LIGHTPOD_KERNEL_WORK:-/var/tmp/lightpod-kernel}
jobs=${JOBS:-$(nproc)}

die() {
    echo "build-kernel: error: $*" >&2
    exit 1
}
log() { echo "build-kernel: $*" >&2; }

check_prerequisites() {
    local missing=() pkg
    for pkg in build-essential bc bison flex libelf-dev lz4 xz-utils patch; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != *'install ok installed'* ]]; then
            missing+=("$pkg")
        fi
    done
    if [[ -z ${LIGHTPOD_KERNEL_SOURCE:-} ]] &&
        [[ $(dpkg-query -W -f='${Status}' linux-source-6.1 2>/dev/null) != *'install ok installed'* ]]; then
        missing+=(linux-source-6.1)
    fi
    if ((${#missing[@]})); then
        die "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
    fi
    [[ -r $tarball ]] || die "kernel source tarball not readable: $tarball"
    [[ -r $fragment ]] || die "config fragment not found: $fragment"
}

# The source's identity: the Debian package version when the default tarball is used,
# else the tarball's own sha256.
source_version() {
    if [[ -z ${LIGHTPOD_KERNEL_SOURCE:-} ]]; then
        echo "linux-source-6.1 $(dpkg-query -W -f='${Version}' linux-source-6.1)"
    else
        echo "tarball $(sha256sum <"$tarball" | cut -d' ' -f1)"
    fi
}

# Extracts the source and applies the patches once per source version and patch set; the
# marker is written only after tar and every patch succeeded.
extract_source() {
    local src=$1 patch
    if [[ -e $src/.lightpod-extracted ]]; then
        return
    fi
    log "extracting $tarball into $src"
    rm -rf "$src"
    mkdir -p "$src"
    tar -xf "$tarball" -C "$src" --strip-components=1
    for patch in "${patches[@]}"; do
        log "applying $(basename "$patch")"
        # No fuzz: a hunk that does not match exactly must not land somewhere else.
        patch -d "$src" -p1 --batch --forward --fuzz=0 <"$patch" >>"$work/patch.log" 2>&1 ||
            die "patch $patch does not apply to $version (see $work/patch.log)"
    done
    touch "$src/.lightpod-extracted"
}

# Checks that every option of the fragment ended up in .config as asked: Kconfig silently
# drops options whose dependencies are not met.
verify_config() {
    local config=$1 line name value bad=0
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            name=${BASH_REMATCH[1]}
            value=${BASH_REMATCH[2]}
            if ! grep -qxF -- "$name=$value" "$config"; then
                echo "build-kernel: option did not stick: $name=$value" \
                    "(got: $(grep -E "^(# )?$name[= ]" "$config" || echo 'absent'))" >&2
                bad=1
            fi
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            name=${BASH_REMATCH[1]}
            if grep -qE "^$name=" "$config"; then
                echo "build-kernel: option did not stick: $name should be off" \
                    "(got: $(grep -E "^$name=" "$config"))" >&2
                bad=1
            fi
        fi
    done <"$fragment"
    ((bad == 0)) || die "the merged .config differs from $fragment (see above)"
}

# Runs make with its output in a log; shows the log's tail when it fails.
run_make() {
    local logfile=$1
    shift
    if ! make -C "$src" O="$build" ARCH=x86_64 "$@" >>"$logfile" 2>&1; then
        tail -n 60 "$logfile" >&2
        die "make $* failed (full log: $logfile)"
    fi
}

check_prerequisites
mkdir -p "$work" "$out"
exec 9>"$work/.lock"
flock 9

version=$(source_version)
# The patches' identity, part of both the build hash and the source tree's name.
patch_set=$(cat /dev/null "${patches[@]}" | sha256sum | cut -d' ' -f1)
hash=$( {
    cat "$fragment"
    echo "$version $patch_set"
    cat "$self"
} | sha256sum | cut -d' ' -f1)

if [[ -f $out/build.sha256 && $(cat "$out/build.sha256") == "$hash" &&
    -f $out/vmlinuz && -f $out/vmlinux && -f $out/config ]]; then
    log "up to date in $out ($hash)"
    exit 0
fi

src="$work/src-$(echo "$version $patch_set" | sha256sum | cut -c1-12)"
build="$work/build"
extract_source "$src"
# Source trees of other versions or patch sets are not needed again (about 1.3 GB each).
for old in "$work"/src-*; do
    [[ $old == "$src" ]] || rm -rf "$old"
done
mkdir -p "$build"
logfile="$work/build.log"
: >"$logfile"

log "configuring (tinyconfig + $(basename "$fragment"))"
run_make "$logfile" tinyconfig
if ! "$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "$fragment" \
    >>"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    die "merge_config.sh failed"
fi
run_make "$logfile" olddefconfig
verify_config "$build/.config"

log "building with $jobs jobs (log: $logfile)"
start=$SECONDS
run_make "$logfile" -j"$jobs" bzImage
log "built in $((SECONDS - start)) s"

# Install through a temporary dir so that OUTDIR never holds a half-written set.
staging="$out/.staging"
rm -rf "$staging"
mkdir -p "$staging"
cp "$build/arch/x86/boot/bzImage" "$staging/vmlinuz"
strip --strip-all -o "$staging/vmlinux" "$build/vmlinux"
cp "$build/.config" "$staging/config"
# QEMU and Xen find the PVH entry point through this ELF note (XEN_ELFNOTE_PHYS32_ENTRY).
grep -q 'Xen.*0x00000012' <<<"$(readelf -n "$staging/vmlinux")" ||
    die "stripped vmlinux lacks the PVH entry note"
for f in vmlinuz vmlinux config; do
    mv -f "$staging/$f" "$out/$f"
done
rmdir "$staging"
echo "$hash" >"$out/build.sha256"
log "installed into $out: vmlinuz $(stat -c %s "$out/vmlinuz") B," \
    "vmlinux $(stat -c %s "$out/vmlinux") B"
