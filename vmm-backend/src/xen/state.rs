//! The files of a Xen VM in its state directory.

use std::path::{Path, PathBuf};

use crate::VmError;

/// Files of a VM inside its state directory.
#[derive(Debug, Clone)]
pub struct StatePaths {
    dir: PathBuf,
}

impl StatePaths {
    /// The paths under `dir`.
    pub fn new(dir: PathBuf) -> StatePaths {
        StatePaths { dir }
    }

    /// The xl domain configuration.
    pub fn domain_config(&self) -> PathBuf {
        self.dir.join("domain.cfg")
    }

    /// The domain's name, read by the clean-up after a crashed owner.
    pub fn domain_name(&self) -> PathBuf {
        self.dir.join("domain")
    }

    /// Output of `xl create -F`.
    pub fn xl_log(&self) -> PathBuf {
        self.dir.join("xl.log")
    }

    /// Pid of `xl create -F`.
    pub fn xl_pid(&self) -> PathBuf {
        self.dir.join("xl.pid")
    }

    /// The guest console up to the agent's takeover.
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
}

/// Creates the state directory, which must be new: everything in it goes with the VM.
pub fn make_state_dir(dir: &Path) -> Result<(), VmError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|source| VmError::Io {
            context: format!("create {}", parent.display()),
            source,
        })?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(VmError::InvalidSpec(format!(
                "state dir {} already exists (clean it up with cleanup_state_dir)",
                dir.display()
            )))
        }
        Err(source) => Err(VmError::Io {
            context: format!("create {}", dir.display()),
            source,
        }),
    }
}

/// Writes a small file of the state directory.
pub fn write_file(path: &Path, text: &str) -> Result<(), VmError> {
    std::fs::write(path, text).map_err(|source| VmError::Io {
        context: format!("write {}", path.display()),
        source,
    })
}
