//! What this host offers the Xen backend, for `lightpod doctor`.

use std::path::{Path, PathBuf};

use crate::xen::{
    config::XenConfig,
    xl::{XenInfo, Xl},
};

/// The state of the Xen toolstack on this host.
#[derive(Debug, Clone)]
pub struct XenHostReport {
    /// The `xl` binary, if one was found.
    pub xl: Option<PathBuf>,
    /// What `xl info` said, or why it failed.
    pub info: Result<XenInfo, String>,
    /// xenstored's socket exists.
    pub xenstored: bool,
    /// A xenconsoled process runs (it serves the agent channel).
    pub xenconsoled: bool,
}

impl XenHostReport {
    /// Whether guests can be created: xl works, xenstored and xenconsoled run.
    pub fn usable(&self) -> bool {
        self.info.is_ok() && self.xenstored && self.xenconsoled
    }
}

/// Looks at the host: xl, `xl info`, xenstored, xenconsoled.
pub async fn probe_host(config: &XenConfig) -> XenHostReport {
    let xl = config.find_xl();
    let info = match &xl {
        Some(binary) => {
            let timeout = std::time::Duration::from_secs(config.xl_timeout_secs);
            Xl::new(binary.clone(), timeout)
                .info()
                .await
                .map_err(|e| crate::xen::chain(&e))
        }
        None => Err("xl not found".into()),
    };
    XenHostReport {
        xl,
        info,
        xenstored: config.xenstore_socket.exists(),
        xenconsoled: process_running(Path::new("/proc"), "xenconsoled"),
    }
}

/// Whether a process whose `comm` is `name` runs, from the `/proc` at `proc_dir`.
fn process_running(proc_dir: &Path, name: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        entry
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
            && std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_processes_by_name() {
        let own = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        assert!(process_running(Path::new("/proc"), own.trim_end()));
        assert!(!process_running(Path::new("/proc"), "no-such-process-name"));
    }
}
