//! Loop devices over disk images: blkback in dom0 serves block devices only.
//!
//! lightpod sets the loop device up itself, with `LO_FLAGS_AUTOCLEAR`, so it needs no
//! `losetup` in a hotplug script and can never leak one: the kernel detaches the device
//! when its last user closes it, which is blkback once the guest's disk is gone and
//! lightpod's own descriptor, held as long as the disk is attached.

use std::{
    fs::{File, OpenOptions},
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
};

/// `LOOP_SET_FD` (linux/loop.h): back the device with an open file.
const LOOP_SET_FD: u64 = 0x4C00;
/// `LOOP_SET_STATUS64`: set the device's flags and name.
const LOOP_SET_STATUS64: u64 = 0x4C04;
/// `LOOP_CTL_GET_FREE`: the number of a free loop device, allocated if needed.
const LOOP_CTL_GET_FREE: u64 = 0x4C82;
/// `LO_FLAGS_AUTOCLEAR`: detach when the last opener closes the device.
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// Attempts when another process takes the free device first.
const ATTEMPTS: usize = 8;

/// `struct loop_info64` of linux/loop.h.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// A loop device could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// `/dev/loop-control` is missing (no `loop` module) or refused a free device.
    #[error("find a free loop device through /dev/loop-control (is the loop module loaded?)")]
    Control(#[source] std::io::Error),
    /// The image could not be opened.
    #[error("open {0}")]
    OpenImage(PathBuf, #[source] std::io::Error),
    /// A loop device could not be opened or bound to the image.
    #[error("bind {device} to {image}")]
    Bind {
        /// The loop device.
        device: PathBuf,
        /// The image.
        image: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
}

/// An attached loop device; dropping it closes lightpod's descriptor (see the module docs).
#[derive(Debug)]
pub struct LoopDevice {
    device: File,
    path: PathBuf,
}

impl LoopDevice {
    /// Binds a free loop device to `image`, read-only if asked, detaching automatically
    /// once unused.
    ///
    /// # Errors
    ///
    /// No free device, or the image or device cannot be opened or bound.
    pub fn attach(image: &Path, readonly: bool) -> Result<LoopDevice, LoopError> {
        let backing = OpenOptions::new()
            .read(true)
            .write(!readonly)
            .open(image)
            .map_err(|e| LoopError::OpenImage(image.to_path_buf(), e))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(LoopError::Control)?;
        let mut last = None;
        for _ in 0..ATTEMPTS {
            // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
            let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if number < 0 {
                return Err(LoopError::Control(std::io::Error::last_os_error()));
            }
            let path = PathBuf::from(format!("/dev/loop{number}"));
            match bind(&path, &backing, image, readonly) {
                Ok(device) => return Ok(LoopDevice { device, path }),
                // Someone else bound it between GET_FREE and SET_FD: take the next one.
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = Some(e),
                Err(source) => {
                    return Err(LoopError::Bind {
                        device: path,
                        image: image.to_path_buf(),
                        source,
                    })
                }
            }
        }
        Err(LoopError::Bind {
            device: PathBuf::from("/dev/loop*"),
            image: image.to_path_buf(),
            source: last.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::EBUSY)),
        })
    }

    /// The device node, `/dev/loopN`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device's descriptor, kept open while the disk is attached.
    pub fn file(&self) -> &File {
        &self.device
    }
}

fn bind(device: &Path, backing: &File, image: &Path, readonly: bool) -> std::io::Result<File> {
    let loop_file = OpenOptions::new()
        .read(true)
        .write(!readonly)
        .open(device)?;
    // SAFETY: LOOP_SET_FD takes a descriptor by value; `backing` is open for the call.
    let rc = unsafe {
        libc::ioctl(
            loop_file.as_raw_fd(),
            LOOP_SET_FD as _,
            backing.as_raw_fd() as libc::c_ulong,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut info = LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; 64],
        lo_crypt_name: [0; 64],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    };
    // The name only shows in `losetup -a`; it is cut to fit with its NUL.
    let name = image.as_os_str().as_bytes();
    let len = name.len().min(info.lo_file_name.len() - 1);
    info.lo_file_name[..len].copy_from_slice(&name[..len]);
    // SAFETY: LOOP_SET_STATUS64 reads one `struct loop_info64`, which `info` is (repr(C),
    // the kernel's layout), alive for the call.
    let rc = unsafe {
        libc::ioctl(
            loop_file.as_raw_fd(),
            LOOP_SET_STATUS64 as _,
            &info as *const LoopInfo64,
        )
    };
    if rc < 0 {
        let error = std::io::Error::last_os_error();
        // Without autoclear the device would outlive us: unbind it now.
        // SAFETY: LOOP_CLR_FD (0x4C01) takes no argument.
        unsafe { libc::ioctl(loop_file.as_raw_fd(), 0x4C01 as _) };
        return Err(error);
    }
    Ok(loop_file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_info_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    }

    #[test]
    fn a_loop_device_goes_away_with_its_last_user() {
        if !nix::unistd::geteuid().is_root() || !Path::new("/dev/loop-control").exists() {
            eprintln!("SKIP a_loop_device_goes_away_with_its_last_user: needs root and loop");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let image = dir.path().join("disk.img");
        std::fs::write(&image, vec![0u8; 1 << 20]).expect("image");
        let device = LoopDevice::attach(&image, false).expect("attach");
        let name = device.path().file_name().expect("name").to_owned();
        let backing = Path::new("/sys/block")
            .join(&name)
            .join("loop/backing_file");
        let shown = std::fs::read_to_string(&backing).expect("bound");
        assert!(shown.trim().ends_with("disk.img"), "{shown}");
        drop(device);
        // Autoclear runs when the descriptor closes; sysfs reflects it at once.
        assert!(!backing.exists(), "{} still bound", name.to_string_lossy());
    }
}
