//! The KVM boot probe's verdict, cached for the current host boot.
//!
//! Whether KVM runs a guest does not change while the host runs, so the verdict is kept in
//! `<cache dir>/kvm-probe.json` together with the host's boot id
//! (`/proc/sys/kernel/random/boot_id`); a verdict from an earlier boot is ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::qemu::accel::BootProbeVerdict;

const CACHE_FILE: &str = "kvm-probe.json";

#[derive(Debug, Serialize, Deserialize)]
struct CacheEntry {
    boot_id: String,
    verdict: BootProbeVerdict,
}

/// The cache of the boot probe's verdict.
#[derive(Debug, Clone)]
pub struct ProbeCache {
    file: PathBuf,
    boot_id: String,
}

impl ProbeCache {
    /// The cache in `dir` for the running host boot.
    pub fn for_this_boot(dir: &Path) -> Self {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        ProbeCache::new(dir, boot_id)
    }

    /// The cache in `dir` for the host boot `boot_id`.
    pub fn new(dir: &Path, boot_id: String) -> Self {
        ProbeCache {
            file: dir.join(CACHE_FILE),
            boot_id,
        }
    }

    /// The verdict recorded during this host boot, if any.
    pub fn load(&self) -> Option<BootProbeVerdict> {
        if self.boot_id.is_empty() {
            return None;
        }
        let text = std::fs::read_to_string(&self.file).ok()?;
        let entry: CacheEntry = serde_json::from_str(&text).ok()?;
        (entry.boot_id == self.boot_id).then_some(BootProbeVerdict {
            cached: true,
            ..entry.verdict
        })
    }

    /// Records a verdict (best effort: a host without a writable cache dir probes again).
    pub fn store(&self, verdict: &BootProbeVerdict) {
        let entry = CacheEntry {
            boot_id: self.boot_id.clone(),
            verdict: verdict.clone(),
        };
        let Ok(text) = serde_json::to_string(&entry) else {
            return;
        };
        let tmp = self
            .file
            .with_extension(format!("tmp{}", std::process::id()));
        let written = self
            .file
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, &self.file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::debug!(file = %self.file.display(), error = %e, "cannot cache the KVM probe verdict");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn verdict_is_kept_for_one_boot_only() {
        let dir = tempfile::tempdir().unwrap();
        let verdict = BootProbeVerdict {
            kvm_works: true,
            detail: "ok".into(),
            cached: false,
        };
        let cache = ProbeCache::new(dir.path(), "boot-1".into());
        assert_eq!(cache.load(), None, "empty cache");
        cache.store(&verdict);
        let loaded = cache.load().expect("stored verdict is found");
        assert!(
            loaded.kvm_works && loaded.cached,
            "loaded verdict is marked cached"
        );
        assert_eq!(
            ProbeCache::new(dir.path(), "boot-2".into()).load(),
            None,
            "other boot"
        );
    }
}
