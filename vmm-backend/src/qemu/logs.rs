//! The ends of the log files a failed or crashed VM leaves (QEMU's stderr, the console).

use std::{
    io::{Read, Seek, SeekFrom},
    path::Path,
};

/// How many bytes at the end of a file are read to find its last lines.
const TAIL_BYTES: u64 = 16 * 1024;

/// The last `lines` lines of `path`, joined by " | "; empty when the file is missing or empty.
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file
        .seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .is_err()
    {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r').trim())
        .filter(|l| !l.is_empty())
        .collect();
    kept[kept.len().saturating_sub(lines)..].join(" | ")
}

/// The last line near the end of `path` that contains `needle`.
fn last_line_with(path: &Path, needle: &str) -> Option<String> {
    let text = tail(path, usize::MAX);
    text.split(" | ")
        .filter(|l| l.contains(needle))
        .last()
        .map(str::to_string)
}

/// The end of QEMU's stderr and of the guest console, labelled, for error messages.
pub fn vm_tail(stderr: &Path, console: &Path) -> String {
    let mut parts = Vec::new();
    let qemu = tail(stderr, 8);
    if !qemu.is_empty() {
        parts.push(format!("qemu: {qemu}"));
    }
    // A panic's message comes before its stack dump, which fills the last lines.
    if let Some(panic) = last_line_with(console, "Kernel panic") {
        parts.push(format!("guest: {panic}"));
    }
    let guest = tail(console, 12);
    if !guest.is_empty() {
        parts.push(format!("console: {guest}"));
    }
    if parts.is_empty() {
        "no output".to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_non_empty_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "one\r\ntwo\n\nthree\nfour\n").unwrap();
        assert_eq!(tail(&file, 2), "three | four");
        assert_eq!(tail(&file, 10), "one | two | three | four");
        assert_eq!(tail(&dir.path().join("missing"), 3), "");
        assert_eq!(
            vm_tail(&file, &dir.path().join("missing")),
            "qemu: one | two | three | four"
        );
    }
}
