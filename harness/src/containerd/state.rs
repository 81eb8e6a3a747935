//! What an instance records in its directory so that whoever stops it (this process or
//! another) knows what to undo: its containerd, its bridge, and the host-wide state it found.

use std::{
    io,
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

/// The record, under the instance directory.
pub(super) const STATE_FILE: &str = "instance.json";

/// The record of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct InstanceState {
    /// containerd's gRPC socket.
    pub address: PathBuf,
    /// containerd's configuration file: it names the process in its command line.
    pub config: PathBuf,
    /// The CNI bridge.
    pub bridge: String,
    /// The pod subnet.
    pub subnet: String,
    /// containerd's pid once it was started.
    pub pid: Option<u32>,
    /// Host directories that did not exist before the instance started (containerd and CNI
    /// create them); removed at stop if nothing but empty directories is in them.
    pub created_dirs: Vec<PathBuf>,
    /// Whether portmap's iptables chains were absent before the instance started.
    pub created_portmap_chains: bool,
    /// `net.ipv4.ip_forward` before the instance started.
    pub ip_forward: Option<String>,
}

impl InstanceState {
    /// Reads the record of the instance in `dir`; `None` when there is none.
    pub fn read(dir: &Path) -> io::Result<Option<InstanceState>> {
        let text = match std::fs::read_to_string(dir.join(STATE_FILE)) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// Writes the record into `dir`, atomically: a reader sees the old record or the new one.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let staging = dir.join(format!("{STATE_FILE}.new"));
        std::fs::write(&staging, text)?;
        std::fs::rename(&staging, dir.join(STATE_FILE))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_record_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(InstanceState::read(dir.path()).unwrap(), None);
        let state = InstanceState {
            address: "/tmp/lp/containerd.sock".into(),
            config: "/tmp/lp/config.toml".into(),
            bridge: "lph0".into(),
            subnet: "10.250.91.0/24".into(),
            pid: Some(42),
            created_dirs: vec!["/run/containerd".into()],
            created_portmap_chains: true,
            ip_forward: Some("0".into()),
        };
        state.write(dir.path()).unwrap();
        assert_eq!(InstanceState::read(dir.path()).unwrap(), Some(state));
    }
}
