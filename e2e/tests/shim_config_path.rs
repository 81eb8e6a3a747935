//! A task started with containerd's `ConfigPath` runtime option (`ctr run
//! --runtime-config-path`, or a CRI runtime handler's `options`) boots its VM with that
//! configuration file instead of the shim's default: the mechanism of the `lightpod-xen`
//! RuntimeClass handler (deploy/containerd/lightpod-xen.toml), checked here with QEMU.

use lightpod_e2e::shim::{stderr, stdout, ShimTest};

/// `MemTotal` of the guest in MiB, from `/proc/meminfo` printed by the task.
fn guest_memory_mib(meminfo: &str) -> u64 {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

#[test]
fn a_runtime_config_path_configures_the_pod() {
    let t = ShimTest::new("shim-config-path");
    // The shims' own configuration (e2e/run.sh) with a VM size of its own.
    let base = std::env::var("LIGHTPOD_CONFIG").expect("LIGHTPOD_CONFIG: run with e2e/run.sh");
    let text = std::fs::read_to_string(&base).expect("read the shims' configuration");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("small.toml");
    std::fs::write(&config, format!("{text}\n[vm]\nmemory_mib = 160\n")).expect("write");
    let config = config.to_string_lossy().into_owned();

    let small = t.run(
        &["--rm", "--runtime-config-path", &config],
        "small",
        &["cat", "/proc/meminfo"],
    );
    assert_eq!(small.status.code(), Some(0), "stderr: {}", stderr(&small));
    let default = t.run(&["--rm"], "default", &["cat", "/proc/meminfo"]);
    assert_eq!(
        default.status.code(),
        Some(0),
        "stderr: {}",
        stderr(&default)
    );

    let (small, default) = (
        guest_memory_mib(&stdout(&small)),
        guest_memory_mib(&stdout(&default)),
    );
    assert!(
        small > 0 && small < 160,
        "the guest of the ConfigPath task has {small} MiB, want under 160"
    );
    assert!(
        default > 160,
        "the guest without ConfigPath has {default} MiB, want the default 256"
    );
    t.assert_clean();
}

#[test]
fn meminfo_parsing() {
    assert_eq!(
        guest_memory_mib("MemTotal:         153600 kB\nMemFree: 1 kB\n"),
        150
    );
    assert_eq!(guest_memory_mib("garbage"), 0);
}
