//! Checks that a test left nothing behind: no process, mount, or file under its state dir.

use std::path::Path;

/// Processes whose command line mentions `needle` (a test's private state directory).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    let me = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) || name == me {
            continue;
        }
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = dir.to_string_lossy().into_owned();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| p.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

/// Entries left inside `dir` (recursively), not counting `dir` itself.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            found.push(path.display().to_string());
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    found
}

/// Whether `path` is a containerd namespace's state directory (`<state>/<namespace>`) that
/// holds nothing but an empty `sandboxes/`: the layout lightpod keeps, not a leak.
fn is_empty_namespace_dir(state_dir: &Path, path: &Path) -> bool {
    path.parent() == Some(state_dir)
        && std::fs::read_dir(path).is_ok_and(|entries| {
            entries.flatten().all(|e| {
                e.file_name() == "sandboxes"
                    && std::fs::read_dir(e.path()).is_ok_and(|mut d| d.next().is_none())
            })
        })
}

/// Asserts that nothing of a lightpod state directory survives: no process mentions it, no
/// mount is below it, and it holds no files (a namespace's empty `sandboxes/` is fine).
pub fn assert_no_leaks(state_dir: &Path) {
    let needle = state_dir.to_string_lossy().into_owned();
    // The VMM may take a moment to be reaped after the CLI exits.
    let mut procs = processes_mentioning(&needle);
    for _ in 0..50 {
        if procs.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        procs = processes_mentioning(&needle);
    }
    assert!(procs.is_empty(), "processes left behind: {procs:#?}");
    let mounts = mounts_under(state_dir);
    assert!(mounts.is_empty(), "mounts left behind: {mounts:#?}");
    let files: Vec<String> = files_under(state_dir)
        .into_iter()
        .filter(|f| !f.ends_with("/sandboxes") && !f.ends_with("/accel-probe"))
        .filter(|f| !is_empty_namespace_dir(state_dir, Path::new(f)))
        .collect();
    assert!(
        files.is_empty(),
        "files left behind in {}: {files:#?}",
        state_dir.display()
    );
}
