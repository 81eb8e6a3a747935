#!/usr/bin/env bash
# Installs lightpod on a Debian 12 node, from this source tree:
#   - the Debian packages lightpod runs with (QEMU, containerd, CNI plugins) and builds with;
#   - virtiofsd (the Rust implementation, from crates.io) into /usr/local/lib/lightpod;
#   - lightpod's binaries (release build): /usr/local/bin/lightpod,
#     /usr/local/bin/containerd-shim-lightpod-v2, and the static guest agent
#     /usr/local/lib/lightpod/lightpod-agent; for the Xen backend, its block hotplug script
#     /usr/local/lib/lightpod/xen-block-hotplug and /etc/lightpod/xen.toml;
#   - lightpod's guest kernel, built from Debian's linux-source-6.1, into
#     /var/lib/lightpod/kernel (about 10 minutes on 2 cores the first time, then cached);
#   - /etc/lightpod/config.toml (only if absent) and a warm guest image cache.
# It changes the system containerd's configuration only with --containerd; `lightpod demo`
# runs a private containerd of its own.
#
# Usage: sudo deploy/install.sh [--deps-only] [--no-kernel] [--containerd]
#   --deps-only   install packages and virtiofsd only (what building and testing need)
#   --no-kernel   skip the guest kernel build (guests then boot the host's distribution kernel)
#   --containerd  register the runtime with the node's containerd: deploy/containerd/lightpod.toml
#                 into /etc/containerd/conf.d/ and an `imports` line in its config.toml (restart
#                 containerd afterwards; `kubectl apply -f deploy/kubernetes/runtimeclass.yaml`)
# Idempotent: a second run only redoes what changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PREFIX:-/usr/local}
libdir=$prefix/lib/lightpod
kernel_dir=${LIGHTPOD_KERNEL_DIR:-/var/lib/lightpod/kernel}
virtiofsd_version=1.14.0
deps_only=false
build_kernel=true
register_containerd=false
for arg in "$@"; do
    case $arg in
    --deps-only) deps_only=true ;;
    --no-kernel) build_kernel=false ;;
    --containerd) register_containerd=true ;;
    -h | --help)
        sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install.sh: unknown option $arg (try --help)" >&2
        exit 2
        ;;
    esac
done

log() { echo "install.sh: $*" >&2; }
die() {
    echo "install.sh: error: $*" >&2
    exit 1
}

[[ $(id -u) == 0 ]] || die "run as root (sudo deploy/install.sh): it installs packages and binaries"

# Runtime: qemu-system-x86 containerd containernetworking-plugins iproute2 iptables.
# Building: build-essential pkg-config protobuf-compiler (the CRI client of the tests)
#   libseccomp-dev libcap-ng-dev (virtiofsd) and the kernel's bc bison flex libelf-dev lz4
#   xz-utils patch linux-source-6.1 cpio.
# Tests: busybox-static (root filesystems and images), e2fsprogs, socat, curl. The Xen
#   backend needs e2fsprogs (mkfs.ext4) at run time; its end-to-end test boots Debian's Xen
#   under QEMU from packages it fetches with `apt-get download`, never installs.
packages=(
    qemu-system-x86 containerd containernetworking-plugins iproute2 iptables
    build-essential pkg-config protobuf-compiler libseccomp-dev libcap-ng-dev
    bc bison flex libelf-dev lz4 xz-utils patch cpio linux-source-6.1
    busybox-static e2fsprogs socat curl
)

install_packages() {
    local missing=() pkg
    for pkg in "${packages[@]}"; do
        [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == *'install ok installed'* ]] ||
            missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null ||
        die "apt-get install ${missing[*]} failed"
    # Debian starts the system containerd on install; lightpod never uses it, and its
    # sockets do not clash with the private instances, so it is left as the host has it.
}

require_cargo() {
    command -v cargo >/dev/null ||
        die "cargo not found: install a Rust toolchain (https://rustup.rs), then rerun"
    [[ $(rustup target list --installed 2>/dev/null) == *x86_64-unknown-linux-gnu* ]] ||
        rustc --print target-list >/dev/null ||
        die "the x86_64-unknown-linux-gnu target is missing from the Rust toolchain"
}

install_virtiofsd() {
    local dest=$libdir/virtiofsd
    if [[ -x $dest && $("$dest" --version 2>/dev/null) == *"$virtiofsd_version"* ]]; then
        return 0
    fi
    log "building virtiofsd $virtiofsd_version (about a minute)"
    local root
    root=$(mktemp -d)
    cargo install --quiet --locked --version "$virtiofsd_version" --root "$root" virtiofsd ||
        die "cargo install virtiofsd failed"
    install -D -m 0755 "$root/bin/virtiofsd" "$dest"
    rm -rf "$root"
}

build_binaries() {
    log "building lightpod (release)"
    (cd "$here" && cargo build --release --quiet --bins) || die "cargo build failed"
    # The agent is the guest's init: static, so the initramfs needs no libraries.
    (cd "$here" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --quiet -p lightpod-agent --target x86_64-unknown-linux-gnu) ||
        die "building the static agent failed"
}

install_binaries() {
    local target=$here/target
    install -D -m 0755 "$target/release/lightpod" "$prefix/bin/lightpod"
    if [[ -x $target/release/containerd-shim-lightpod-v2 ]]; then
        install -D -m 0755 "$target/release/containerd-shim-lightpod-v2" \
            "$prefix/bin/containerd-shim-lightpod-v2"
    fi
    install -D -m 0755 "$target/x86_64-unknown-linux-gnu/release/lightpod-agent" \
        "$libdir/lightpod-agent"
    if [[ ! -e /etc/lightpod/config.toml ]]; then
        install -D -m 0644 "$here/deploy/config.toml" /etc/lightpod/config.toml
    fi
    # The Xen backend (used only in a Xen dom0; harmless elsewhere).
    install -D -m 0755 "$here/vmm-backend/xen/block-hotplug" "$libdir/xen-block-hotplug"
    if [[ ! -e /etc/lightpod/xen.toml ]]; then
        install -D -m 0644 "$here/deploy/xen.toml" /etc/lightpod/xen.toml
    fi
}

# Adds lightpod's runtime to the node's containerd through a drop-in file and `imports`.
register_with_containerd() {
    local config=/etc/containerd/config.toml dropin=/etc/containerd/conf.d/lightpod.toml
    install -D -m 0644 "$here/deploy/containerd/lightpod.toml" "$dropin"
    if [[ ! -e $config ]]; then
        printf 'version = 2\nimports = ["/etc/containerd/conf.d/*.toml"]\n' >"$config"
    elif ! grep -q '^imports' "$config"; then
        # imports must come before any table: put it after the version line.
        sed -i '0,/^version/s||imports = ["/etc/containerd/conf.d/*.toml"]\n&|' "$config"
        grep -q '^imports' "$config" || sed -i '1i imports = ["/etc/containerd/conf.d/*.toml"]' "$config"
    elif ! grep -q 'conf.d/\*.toml' "$config"; then
        log "$config has its own imports line: add \"$dropin\" to it by hand"
    fi
    log "registered runtime handler lightpod in $dropin; restart containerd to load it"
}

install_packages
require_cargo
install_virtiofsd
$deps_only && exit 0

build_binaries
if $build_kernel; then
    log "building the guest kernel into $kernel_dir (first time: about 10 minutes)"
    "$here/vmm-backend/guest/kernel/build-kernel.sh" "$kernel_dir" ||
        die "the guest kernel build failed"
fi
install_binaries
$register_containerd && register_with_containerd
"$prefix/bin/lightpod" image build >/dev/null || die "lightpod image build failed"
log "installed; \`lightpod doctor\` shows what this host runs guests with"
