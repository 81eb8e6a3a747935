//! The Xen backend end to end: a real Xen 4.17 host (Debian's hypervisor, a PV dom0 with
//! Debian's kernel) boots inside QEMU with TCG, and in its dom0 `lightpod run --backend xen`
//! runs a busybox root filesystem as PV and PVH guests through xl: output, exit codes, a
//! process killed by a signal, writes staying in the rootfs image, a missing kernel, more
//! memory than Xen has, and nothing left afterwards (only Domain-0 in `xl list`, no state,
//! no loop device, no xl monitor).
//!
//! The driver inside dom0 is `e2e/xen/dom0-test.sh`; it reports each case on the serial
//! console as `LPXEN PASS <case>` or `LPXEN FAIL <case> <why>`. `e2e/xen/build-dom0.sh`
//! fetches the Xen packages with `apt-get download` once and caches them in
//! `target/xen-e2e/debs`, so a rerun needs no network.

use std::{
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use lightpod_e2e::{
    agent_binary, bin_dir, require_root, rootfs::busybox_copy, skip_or_fail, workspace_root,
};

/// The guest kernel: the one e2e/run.sh built, else the workspace's cached build.
fn guest_kernel() -> PathBuf {
    std::env::var_os("LIGHTPOD_E2E_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/kernel/vmlinuz"))
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// What the dom0 driver reported.
#[derive(Debug, Default)]
struct Report {
    passed: Vec<String>,
    failed: Vec<String>,
    done: bool,
    timings: Vec<String>,
}

fn parse(lines: &[String]) -> Report {
    let mut report = Report::default();
    for line in lines {
        let Some(rest) = line.split("LPXEN ").nth(1) else {
            continue;
        };
        if let Some(case) = rest.strip_prefix("PASS ") {
            report.passed.push(case.trim().to_string());
        } else if let Some(case) = rest.strip_prefix("FAIL ") {
            report.failed.push(case.trim().to_string());
        } else if rest.starts_with("DONE ") {
            report.done = true;
        } else if rest.starts_with("TIMING ") || rest.starts_with("RAN ") {
            report.timings.push(rest.trim().to_string());
        }
    }
    report
}

/// Boots the Xen host and returns its serial console, each line stamped with the seconds
/// since QEMU started.
fn boot_xen_host(work: &Path) -> Vec<String> {
    let started = Instant::now();
    let mut child = Command::new(workspace_root().join("e2e/xen/run.sh"))
        .arg(work)
        .arg("--pvh")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start e2e/xen/run.sh");
    let stdout = child.stdout.take().expect("stdout");
    let mut log = std::fs::File::create(work.join("serial-stamped.log")).expect("log");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let line = format!("[{:7.2}] {line}", started.elapsed().as_secs_f64());
        let _ = writeln!(log, "{line}");
        lines.push(line);
    }
    let _ = child.wait();
    lines
}

#[test]
fn lightpod_runs_containers_as_xen_guests() {
    const TEST: &str = "lightpod_runs_containers_as_xen_guests";
    require_root();
    let kernel = guest_kernel();
    if !on_path("qemu-system-x86_64") {
        return skip_or_fail(TEST, "qemu-system-x86_64 is not installed");
    }
    if !kernel.exists() {
        return skip_or_fail(TEST, &format!("no guest kernel at {}", kernel.display()));
    }
    let scratch = tempfile::tempdir().expect("tempdir");
    let rootfs = busybox_copy(scratch.path()).expect("busybox root filesystem");
    let work = workspace_root().join("target/xen-e2e");

    let started = Instant::now();
    let build = Command::new(workspace_root().join("e2e/xen/build-dom0.sh"))
        .arg(&work)
        .env("LIGHTPOD_BIN_DIR", bin_dir())
        .env("LIGHTPOD_AGENT", agent_binary())
        .env("LIGHTPOD_XEN_KERNEL", &kernel)
        .env("LIGHTPOD_XEN_ROOTFS", &rootfs)
        .output()
        .expect("run e2e/xen/build-dom0.sh");
    if !build.status.success() {
        let why = String::from_utf8_lossy(&build.stderr);
        return skip_or_fail(
            TEST,
            &format!("e2e/xen/build-dom0.sh failed (Debian mirror unreachable?): {why}"),
        );
    }
    let built = started.elapsed();

    let lines = boot_xen_host(&work);
    let report = parse(&lines);
    eprintln!(
        "xen e2e: dom0 image built in {:.1} s, whole test {:.1} s",
        built.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    for timing in &report.timings {
        eprintln!("xen e2e: {timing}");
    }
    let tail: Vec<&String> = lines.iter().rev().take(60).rev().collect();
    let context = format!(
        "passed: {:?}\nfailed: {:#?}\nlast console lines (full log: {}):\n{}",
        report.passed,
        report.failed,
        work.join("serial-stamped.log").display(),
        tail.iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(report.failed.is_empty(), "cases failed in dom0\n{context}");
    assert!(report.done, "the dom0 driver did not finish\n{context}");
    for case in [
        "doctor",
        "stdout-and-exit-0",
        "exit-code-42",
        "killed-by-sigkill",
        "rootfs-writes-stay-in-the-image",
        "missing-kernel",
        "more-memory-than-xen-has",
        "pvh-guest",
        "only-dom0-left",
        "no-leftover-state",
    ] {
        assert!(
            report.passed.iter().any(|p| p == case),
            "case {case} did not pass\n{context}"
        );
    }
}

#[test]
fn the_report_parser_reads_the_driver_lines() {
    let lines: Vec<String> = [
        "[  12.00] LPXEN PASS doctor",
        "[  20.00] LPXEN FAIL exit-code-42 exit code 1, want 42;",
        "[  20.10] (XEN) unrelated",
        "[  30.00] LPXEN TIMING pv sandbox ready 2839",
        "[  40.00] LPXEN DONE pass=1 fail=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let report = parse(&lines);
    assert_eq!(report.passed, ["doctor"]);
    assert_eq!(report.failed, ["exit-code-42 exit code 1, want 42;"]);
    assert!(report.done);
    assert_eq!(report.timings, ["TIMING pv sandbox ready 2839"]);
}
