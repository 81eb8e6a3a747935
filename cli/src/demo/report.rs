//! What `lightpod demo` prints: each step with its time, then what it learned.

use std::{path::Path, time::Instant};

use super::PodFacts;

/// One step of the demo and how long it took.
pub struct Step {
    what: String,
    detail: String,
    millis: u128,
}

impl Step {
    /// A step that began at `started` and has just finished.
    pub fn new(what: &str, started: Instant) -> Step {
        Step {
            what: what.to_string(),
            detail: String::new(),
            millis: started.elapsed().as_millis(),
        }
    }

    /// The step with a detail shown beside it (a path, an address, a status line).
    pub fn detail(mut self, detail: impl std::fmt::Display) -> Step {
        self.detail = detail.to_string();
        self
    }
}

/// The steps so far; each is printed as it finishes, so a slow step shows where it is.
#[derive(Default)]
pub struct Report {
    count: usize,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Prints a finished step.
    pub fn step(&mut self, step: Step) {
        self.count += 1;
        println!(
            "  {:>2}. {:<46} {:>6} ms  {}",
            self.count, step.what, step.millis, step.detail
        );
    }

    /// Prints what the demo learned about its pod.
    pub fn print(&self, facts: &PodFacts) {
        println!();
        println!("  pod IP          {}", facts.pod_ip);
        println!(
            "  guest kernel    {} (the host runs {})",
            facts.guest_kernel, facts.host_kernel
        );
        println!("  from the host   {}  {}", facts.status_line, facts.page);
        println!(
            "  from the pod    the sidecar read {} on localhost",
            facts.sidecar_saw
        );
        if !facts.vm_phases.is_empty() {
            let phases: Vec<String> = facts
                .vm_phases
                .iter()
                .map(|(name, value)| format!("{name} {value}"))
                .collect();
            println!("  VM start        {}", phases.join(", "));
        }
    }
}

/// The boot figures the shim logged for sandbox `pod_id` (`sandbox ready` in containerd's
/// log, logfmt): every `*_ms` field and the accelerator.
pub fn vm_phases(log: &Path, pod_id: &str) -> Vec<(String, String)> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    let wanted = format!("sandbox={pod_id}");
    text.lines()
        .rev()
        .find(|l| l.contains("msg=\"sandbox ready\"") && l.contains(&wanted))
        .map(fields)
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| key.ends_with("_ms") || key == "accelerator")
        .map(|(key, value)| {
            let name = key.trim_end_matches("_ms").replace('_', " ");
            let value = if key.ends_with("_ms") {
                format!("{value} ms")
            } else {
                value
            };
            (name, value)
        })
        .collect()
}

/// The `key=value` fields of a logfmt line (quoted values unquoted, escapes left alone).
fn fields(line: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim().to_string();
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .char_indices()
                .find(|&(i, c)| c == '"' && !quoted[..i].ends_with('\\'))
                .map_or(quoted.len(), |(i, _)| i);
            (
                quoted[..end].to_string(),
                quoted.get(end + 1..).unwrap_or(""),
            )
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        out.push((key, value));
        rest = next.trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_fields_with_and_without_quotes() {
        let line = r#"time="2026-12-04T08:00:00Z" level=info msg="sandbox ready" sandbox=abc total_ms=812 accelerator=tcg"#;
        let f = fields(line);
        assert_eq!(f[2], ("msg".to_string(), "sandbox ready".to_string()));
        assert_eq!(f[3], ("sandbox".to_string(), "abc".to_string()));
        assert_eq!(f[4], ("total_ms".to_string(), "812".to_string()));
    }

    #[test]
    fn phases_come_from_the_pods_own_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("containerd.log");
        std::fs::write(
            &log,
            "level=info msg=\"sandbox ready\" sandbox=other total_ms=1\n\
             level=info msg=\"sandbox ready\" sandbox=pod1 total_ms=900 accelerator=tcg\n",
        )
        .expect("write");
        let phases = vm_phases(&log, "pod1");
        assert_eq!(
            phases,
            [
                ("total".to_string(), "900 ms".to_string()),
                ("accelerator".to_string(), "tcg".to_string())
            ]
        );
    }
}
