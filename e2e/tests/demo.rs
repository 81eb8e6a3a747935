//! `lightpod demo`, the README's main command, end to end: it starts its own containerd,
//! runs a two-container pod in a VM, queries the pod's web server from the host, prints what
//! happened, and leaves nothing behind. Also what it says when given something wrong.

use std::path::Path;

use lightpod_e2e::{
    bin_dir, cache_dir,
    leaks::{assert_no_leaks, files_under, mounts_under, processes_mentioning},
    run::{stderr, stdout, TestEnv},
};

/// The demo's own bridge and subnet, apart from the ones the other tests' containerd uses.
const BRIDGE: &str = "lpdemotest0";
const SUBNET_PREFIX: &str = "10.250.79.";

/// `lightpod demo` in `dir` with `subnet`, and the shim from `shim_dir` (default: the built
/// binaries).
fn demo(env: &TestEnv, dir: &Path, subnet: &str, shim_dir: Option<&Path>) -> std::process::Output {
    let dir = dir.to_string_lossy().into_owned();
    let cache = cache_dir().join("demo").to_string_lossy().into_owned();
    let shim_dir = shim_dir
        .map_or_else(bin_dir, Path::to_path_buf)
        .to_string_lossy()
        .into_owned();
    let args = [
        "demo",
        "--dir",
        dir.as_str(),
        "--cache",
        cache.as_str(),
        "--bridge",
        BRIDGE,
        "--subnet",
        subnet,
        "--shim-dir",
        shim_dir.as_str(),
    ];
    env.lightpod(&args, b"")
}

fn bridge_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Asserts the demo's containerd, its directory, its mounts, its bridge and the VM are gone.
fn assert_demo_left_nothing(env: &TestEnv, dir: &Path) {
    assert_no_leaks(&env.state_dir);
    let procs = processes_mentioning(&dir.to_string_lossy());
    assert!(procs.is_empty(), "processes left: {procs:?}");
    let mounts = mounts_under(dir);
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    let files = files_under(dir);
    assert!(
        files.is_empty(),
        "files left under {}: {files:?}",
        dir.display()
    );
    assert!(!bridge_exists(BRIDGE), "the bridge {BRIDGE} was left");
}

#[test]
fn the_demo_runs_a_pod_in_a_vm_and_cleans_up() {
    let env = TestEnv::new("");
    let dir = env.dir.path().join("demo");
    let out = demo(&env, &dir, "10.250.79.0/24", None);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "demo failed: {}\nstdout:\n{text}\nstderr:\n{}",
        out.status,
        stderr(&out)
    );
    // The web server inside the VM answered the host on the pod IP.
    assert!(
        text.contains("web server answered the host on the pod IP") && text.contains("200 OK"),
        "no answer from the pod's web server: {text}"
    );
    let pod_ip = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("pod IP"))
        .map(str::trim)
        .unwrap_or_default();
    assert!(
        pod_ip.starts_with(SUBNET_PREFIX),
        "the pod IP {pod_ip:?} is not in the demo's subnet: {text}"
    );
    // The guest kernel is not the host's: the pod really ran in a VM.
    let host = nix::sys::utsname::uname().expect("uname");
    let host_release = host.release().to_string_lossy().into_owned();
    let guest = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("guest kernel"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default();
    assert!(
        !guest.is_empty() && guest != host_release,
        "guest kernel {guest:?} (host {host_release}): {text}"
    );
    // The second container reached the first over the pod's loopback.
    assert!(
        text.contains("the sidecar read"),
        "the sidecar's line is missing: {text}"
    );
    // The VM's start, in phases, from the shim's log.
    assert!(
        text.contains("agent ready"),
        "no start phases reported: {text}"
    );
    assert_demo_left_nothing(&env, &dir);
}

#[test]
fn a_demo_given_a_bad_subnet_says_so_and_starts_nothing() {
    let env = TestEnv::new("");
    let dir = env.dir.path().join("demo");
    let out = demo(&env, &dir, "10.250.79.0/33", None);
    assert!(!out.status.success(), "demo accepted a /33 subnet");
    let err = stderr(&out);
    assert!(
        err.contains("--subnet"),
        "error does not name --subnet: {err}"
    );
    assert_demo_left_nothing(&env, &dir);
}

#[test]
fn a_demo_without_the_shim_says_where_it_looked() {
    let env = TestEnv::new("");
    let dir = env.dir.path().join("demo");
    let empty = env.dir.path().join("no-shim-here");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = demo(&env, &dir, "10.250.79.0/24", Some(&empty));
    assert!(!out.status.success(), "demo ran without a shim");
    let err = stderr(&out);
    assert!(
        err.contains("containerd-shim-lightpod-v2") && err.contains("no-shim-here"),
        "error does not name the missing shim and where it looked: {err}"
    );
    assert_demo_left_nothing(&env, &dir);
}
