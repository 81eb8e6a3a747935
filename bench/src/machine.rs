//! The machine a run measured: cores, CPU model, memory, kernel, the versions of containerd
//! and QEMU, and its load.

use std::process::Command;

use crate::{procfs, results::Machine};

/// What can be read of the machine before the run.
pub fn describe() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    Machine {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        cpu_model: cpu_model(&cpuinfo).unwrap_or_default(),
        memory_mib: procfs::host_memory().map_or(0, |m| m.total_kib / 1024),
        host_kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        accelerator: None,
        containerd: first_line_of("containerd", &["--version"]),
        qemu: first_line_of("qemu-system-x86_64", &["--version"]),
        load_before: load_average(),
        load_after: [0.0; 3],
        host_cpu_busy_percent: None,
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> [f64; 3] {
    parse_loadavg(&read_trimmed("/proc/loadavg")).unwrap_or_default()
}

/// Parses `/proc/loadavg`.
fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<f64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// The `model name` of the first CPU in `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

fn first_line_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_and_cpu_model_parse() {
        assert_eq!(
            parse_loadavg("2.24 2.20 2.31 3/412 21937"),
            Some([2.24, 2.20, 2.31])
        );
        assert_eq!(parse_loadavg("2.24"), None);
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
    }
}
