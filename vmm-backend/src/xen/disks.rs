//! A guest's disks: their guest names (`xvdb` … `xvdz`), and how each reaches blkback.
//!
//! With lightpod's hotplug script installed ([`XenConfig::block_script`]) a disk image is
//! bound to a loop device here and handed to xl as that device with the script; without it,
//! xl gets the image file and Xen's own `block` script sets up the loop device (slower, see
//! the script's comment).
//!
//! [`XenConfig::block_script`]: crate::xen::XenConfig::block_script

use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::Mutex,
};

use crate::{
    xen::{
        domain_config::{DiskAccess, DiskSpec},
        loop_device::LoopDevice,
    },
    BlockDevice, VmError,
};

/// Guest disk letters: `xvdb` … `xvdz` (`xvda` is left to the conventional root disk).
const LETTERS: std::ops::RangeInclusive<u8> = b'b'..=b'z';

/// The disks of one guest.
#[derive(Debug)]
pub struct GuestDisks {
    script: Option<PathBuf>,
    state: Mutex<DiskState>,
}

#[derive(Debug, Default)]
struct DiskState {
    used: BTreeSet<u8>,
    /// Loop devices lightpod bound, held open while their disk is attached.
    loops: HashMap<u8, LoopDevice>,
}

/// A disk ready to hand to xl, holding its guest name until attached or given back.
#[derive(Debug)]
pub struct PreparedDisk {
    /// Guest letter (`b` for `xvdb`).
    pub letter: u8,
    /// xl's disk specification.
    pub spec: DiskSpec,
}

impl PreparedDisk {
    /// The disk's path in the guest.
    pub fn guest_path(&self) -> String {
        format!("/dev/{}", self.spec.vdev)
    }
}

impl GuestDisks {
    /// No disks yet; `script` is lightpod's block hotplug script when installed.
    pub fn new(script: Option<PathBuf>) -> GuestDisks {
        GuestDisks {
            script,
            state: Mutex::new(DiskState::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DiskState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the next free guest name for `block` and prepares its backing.
    ///
    /// # Errors
    ///
    /// Every name is taken, or the loop device cannot be bound.
    pub fn prepare(&self, block: &BlockDevice) -> Result<PreparedDisk, VmError> {
        let letter = {
            let mut state = self.lock();
            let Some(letter) = LETTERS.clone().find(|l| !state.used.contains(l)) else {
                return Err(VmError::InvalidSpec(
                    "no free guest disk name left (xvdb-xvdz are taken)".into(),
                ));
            };
            state.used.insert(letter);
            letter
        };
        let access = if block.readonly {
            DiskAccess::ReadOnly
        } else {
            DiskAccess::ReadWrite
        };
        let vdev = format!("xvd{}", letter as char);
        let Some(script) = &self.script else {
            let spec = DiskSpec {
                vdev,
                access,
                script: None,
                target: block.path.clone(),
            };
            return Ok(PreparedDisk { letter, spec });
        };
        match LoopDevice::attach(&block.path, block.readonly) {
            Ok(device) => {
                let spec = DiskSpec {
                    vdev,
                    access,
                    script: Some(script.clone()),
                    target: device.path().to_path_buf(),
                };
                self.lock().loops.insert(letter, device);
                Ok(PreparedDisk { letter, spec })
            }
            Err(e) => {
                self.lock().used.remove(&letter);
                Err(VmError::Io {
                    context: format!("set up a loop device for {}", block.path.display()),
                    source: std::io::Error::other(e),
                })
            }
        }
    }

    /// Gives a disk's name back and closes its loop device (the kernel detaches it once
    /// blkback has let go too).
    pub fn release(&self, letter: u8) {
        let mut state = self.lock();
        state.used.remove(&letter);
        state.loops.remove(&letter);
    }

    /// The letter of an attached disk, by its guest path (`/dev/xvdb`).
    pub fn letter_of(&self, guest_path: &str) -> Option<u8> {
        let vdev = guest_path.strip_prefix("/dev/").unwrap_or(guest_path);
        match vdev.strip_prefix("xvd").map(str::as_bytes) {
            Some([letter]) if self.lock().used.contains(letter) => Some(*letter),
            _ => None,
        }
    }

    /// Closes every loop device (the guest is gone).
    pub fn release_all(&self) {
        let mut state = self.lock();
        state.used.clear();
        state.loops.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn image(readonly: bool) -> BlockDevice {
        BlockDevice {
            path: "/run/lightpod/sandboxes/p/images/c.img".into(),
            readonly,
        }
    }

    #[test]
    fn names_are_handed_out_in_order_and_reused() {
        let disks = GuestDisks::new(None);
        let b = disks.prepare(&image(false)).unwrap();
        let c = disks.prepare(&image(true)).unwrap();
        assert_eq!(
            (b.guest_path(), c.guest_path()),
            ("/dev/xvdb".into(), "/dev/xvdc".into())
        );
        assert_eq!(c.spec.access, DiskAccess::ReadOnly);
        assert_eq!(
            b.spec.target,
            image(false).path,
            "without lightpod's script xl gets the image"
        );
        assert_eq!(disks.letter_of("/dev/xvdc"), Some(b'c'));
        assert_eq!(disks.letter_of("/dev/xvdd"), None, "not attached");
        assert_eq!(disks.letter_of("/dev/sda"), None);
        disks.release(b'b');
        assert_eq!(disks.prepare(&image(false)).unwrap().letter, b'b');
    }

    #[test]
    fn names_run_out_after_xvdz() {
        let disks = GuestDisks::new(None);
        for _ in LETTERS {
            disks.prepare(&image(false)).unwrap();
        }
        let err = disks.prepare(&image(false)).unwrap_err();
        assert!(err.to_string().contains("xvdb-xvdz"), "{err}");
    }

    #[test]
    fn a_failed_loop_device_gives_the_name_back() {
        let disks = GuestDisks::new(Some("/usr/local/lib/lightpod/xen-block-hotplug".into()));
        let missing = BlockDevice {
            path: "/nonexistent/c.img".into(),
            readonly: false,
        };
        assert!(disks.prepare(&missing).is_err());
        assert_eq!(disks.lock().used.len(), 0);
    }
}
