//! Cleaning up after a Xen VM whose owner (shim, CLI) died without stopping it.
//!
//! The VM's state directory names its domain (`domain`) and the pid of its `xl create -F`
//! monitor (`xl.pid`). The domain is destroyed by name, so a domain of the same id that
//! someone else created is not touched: lightpod's names carry the `lightpod-` prefix and
//! the sandbox id. The monitor exits with its domain; [`crate::qemu::cleanup_state_dir`]
//! then removes the directory (and kills a monitor that did not exit).

use std::{path::Path, process::Command};

/// Why a leftover domain could not be destroyed.
#[derive(Debug, thiserror::Error)]
pub enum XenCleanupError {
    /// The state directory's `domain` file could not be read.
    #[error("read {0}")]
    ReadName(std::path::PathBuf, #[source] std::io::Error),
    /// `xl destroy` could not run.
    #[error("run {0} destroy")]
    Spawn(std::path::PathBuf, #[source] std::io::Error),
    /// `xl destroy` failed for another reason than a domain that is already gone.
    #[error("xl destroy {name}: {output}")]
    Destroy {
        /// The domain.
        name: String,
        /// What xl said.
        output: String,
    },
}

/// Destroys the domain named in `state_dir`, if the directory names one and it still runs.
/// Returns the name of the domain destroyed.
///
/// # Errors
///
/// The name cannot be read, or xl cannot run or fails to destroy a domain that exists.
pub fn destroy_leftover_domain(
    state_dir: &Path,
    xl: &Path,
) -> Result<Option<String>, XenCleanupError> {
    let file = state_dir.join("domain");
    let name = match std::fs::read_to_string(&file) {
        Ok(name) => name.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(XenCleanupError::ReadName(file, e)),
    };
    if name.is_empty() {
        return Ok(None);
    }
    let output = Command::new(xl)
        .args(["destroy", &name])
        .output()
        .map_err(|e| XenCleanupError::Spawn(xl.to_path_buf(), e))?;
    if output.status.success() {
        tracing::info!(domain = %name, "destroyed the domain of an abandoned VM");
        return Ok(Some(name));
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if is_gone(&text) {
        return Ok(None);
    }
    Err(XenCleanupError::Destroy {
        name,
        output: crate::xen::xl::last_lines(&text, 3),
    })
}

/// Whether xl's complaint means the domain does not exist (any more).
fn is_gone(xl_output: &str) -> bool {
    xl_output.contains("invalid domain identifier") || xl_output.contains("Non-existant domain")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_without_a_domain_needs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone");
        assert_eq!(
            destroy_leftover_domain(&missing, Path::new("/nonexistent/xl")).unwrap(),
            None
        );
        assert_eq!(
            destroy_leftover_domain(dir.path(), Path::new("/nonexistent/xl")).unwrap(),
            None
        );
    }

    #[test]
    fn a_named_domain_is_destroyed_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("domain"), "lightpod-p1\n").unwrap();
        // `echo` stands in for xl: it succeeds, as `xl destroy` of a running domain does.
        let name = destroy_leftover_domain(dir.path(), Path::new("/bin/echo")).unwrap();
        assert_eq!(name.as_deref(), Some("lightpod-p1"));
        let err = destroy_leftover_domain(dir.path(), Path::new("/bin/false")).unwrap_err();
        assert!(err.to_string().contains("lightpod-p1"), "{err}");
    }

    #[test]
    fn xl_complaints_about_missing_domains_mean_gone() {
        assert!(is_gone("xl: invalid domain identifier lightpod-x"));
        assert!(!is_gone("libxl: error: permission denied"));
    }
}
