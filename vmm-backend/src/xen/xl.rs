//! Running `xl` commands, and what `xl info` says about the host.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::Command;

/// An `xl` command failed.
#[derive(Debug, thiserror::Error)]
pub enum XlError {
    /// `xl` could not be started.
    #[error("start {binary}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// The command did not finish in time (it was killed).
    #[error("xl {command} did not finish within {limit:?}")]
    Timeout {
        /// Subcommand and arguments.
        command: String,
        /// The time limit.
        limit: Duration,
    },
    /// The command exited with a failure.
    #[error("xl {command} failed ({status}): {output}")]
    Failed {
        /// Subcommand and arguments.
        command: String,
        /// Its exit status.
        status: String,
        /// The last lines of its output.
        output: String,
    },
}

/// The `xl` binary and how long one command may take.
#[derive(Debug, Clone)]
pub struct Xl {
    binary: PathBuf,
    timeout: Duration,
}

impl Xl {
    /// Commands of `binary`, each limited to `timeout`.
    pub fn new(binary: PathBuf, timeout: Duration) -> Xl {
        Xl { binary, timeout }
    }

    /// The binary.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Runs `xl <args>` and returns its standard output.
    ///
    /// # Errors
    ///
    /// `xl` cannot be started, times out, or exits with a failure.
    pub async fn run(&self, args: &[&str]) -> Result<String, XlError> {
        let command = args.join(" ");
        let child = Command::new(&self.binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| XlError::Spawn {
                binary: self.binary.clone(),
                source,
            })?;
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(XlError::Spawn {
                    binary: self.binary.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(XlError::Timeout {
                    command,
                    limit: self.timeout,
                })
            }
        };
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            tracing::trace!(%command, "xl succeeded");
            return Ok(stdout);
        }
        let text = format!("{stdout}{}", String::from_utf8_lossy(&output.stderr));
        Err(XlError::Failed {
            command,
            status: output.status.to_string(),
            output: last_lines(&text, 6),
        })
    }

    /// Runs `xl info` and parses it.
    ///
    /// # Errors
    ///
    /// `xl info` fails (not a dom0, no hypervisor, no permission).
    pub async fn info(&self) -> Result<XenInfo, XlError> {
        Ok(XenInfo::parse(&self.run(&["info"]).await?))
    }
}

/// The lines of `xl info` lightpod uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XenInfo {
    fields: HashMap<String, String>,
}

impl XenInfo {
    /// Parses `key : value` lines.
    pub fn parse(text: &str) -> XenInfo {
        let fields = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        XenInfo { fields }
    }

    /// A field's value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// Memory not given to any domain, in MiB.
    pub fn free_memory_mib(&self) -> Option<u64> {
        self.get("free_memory")?.parse().ok()
    }

    /// The hypervisor's version (`4.17.7`).
    pub fn xen_version(&self) -> Option<&str> {
        self.get("xen_version")
    }

    /// Whether PVH guests can run: the hypervisor offers HVM.
    pub fn supports_pvh(&self) -> bool {
        self.get("virt_caps")
            .is_some_and(|caps| caps.split_whitespace().any(|c| c == "hvm"))
    }
}

/// The last `n` non-empty lines of `text`, joined by " | ".
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const INFO: &str = "\
host                   : dom0
release                : 6.1.0-57-amd64
virt_caps              : pv hvm hap gnttab-v1 gnttab-v2
total_memory           : 2047
free_memory            : 1256
xen_version            : 4.17.7
xen_commandline        : console=com1 com1=115200,8n1 dom0_mem=768M,max:768M
";

    #[test]
    fn parses_what_lightpod_needs_from_xl_info() {
        let info = XenInfo::parse(INFO);
        assert_eq!(info.free_memory_mib(), Some(1256));
        assert_eq!(info.xen_version(), Some("4.17.7"));
        assert!(info.supports_pvh());
        assert_eq!(
            info.get("xen_commandline"),
            Some("console=com1 com1=115200,8n1 dom0_mem=768M,max:768M"),
            "values keep their own colons"
        );
        let pv_only = XenInfo::parse("virt_caps : pv gnttab-v1\n");
        assert!(!pv_only.supports_pvh());
        assert_eq!(pv_only.free_memory_mib(), None);
    }

    #[test]
    fn last_lines_skips_blanks() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines("", 3), "");
    }

    #[tokio::test]
    async fn a_failing_command_reports_its_output() {
        // `false` stands in for xl: it ignores its arguments and fails.
        let xl = Xl::new("/bin/false".into(), Duration::from_secs(5));
        match xl.run(&["destroy", "lightpod-x"]).await {
            Err(XlError::Failed { command, .. }) => assert_eq!(command, "destroy lightpod-x"),
            other => panic!("{other:?}"),
        }
        let missing = Xl::new("/nonexistent/xl".into(), Duration::from_secs(5));
        assert!(matches!(
            missing.run(&["info"]).await,
            Err(XlError::Spawn { .. })
        ));
    }
}
