//! Container root filesystems as disk images, for backends that cannot share directories
//! with the guest (Xen: [`lightpod_vmm::Hypervisor::shares_directories`] is false).
//!
//! Each container's root filesystem directory is copied into a fresh ext4 image with
//! `mkfs.ext4 -d` (e2fsprogs), the image is hot-plugged into the guest as a disk, and the
//! agent mounts it as the container's storage. What the container writes stays in the image:
//! it does not reach the host directory, and it goes when the container is removed.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use lightpod_proto::agent as pb;
use lightpod_vmm::{BlockDevice, Vm};
use tokio::{process::Command, sync::Mutex};

use crate::{
    agent::AgentClient,
    agent_request,
    error::{chain, SandboxError},
    share::ShareLayout,
    spec::{ContainerSpec, MountSource},
};

/// Where the agent mounts containers' storage in the guest.
pub const GUEST_STORAGE_DIR: &str = "/run/lightpod/storage";

/// Free space every image gets beyond what the files take, for what the container writes.
const HEADROOM_BYTES: u64 = 64 << 20;
/// Space per file for its inode, directory entry and block rounding.
const PER_FILE_BYTES: u64 = 8 << 10;

/// The images of one sandbox's containers and the guest devices they are attached as.
pub struct RootfsImages {
    dir: PathBuf,
    vm: Arc<dyn Vm>,
    attached: Mutex<HashMap<String, AttachedImage>>,
}

/// One container's image.
#[derive(Debug, Clone)]
struct AttachedImage {
    path: PathBuf,
    guest_device: String,
}

impl RootfsImages {
    // TODO: `dir` is in the sandbox's state directory, on tmpfs under /run on most hosts, so
    // an image costs host memory for the files it holds; it goes once images have a
    // configurable directory on disk.
    /// Images kept in `dir` (created on first use) for the guest `vm`.
    pub fn new(dir: PathBuf, vm: Arc<dyn Vm>) -> RootfsImages {
        RootfsImages {
            dir,
            vm,
            attached: Mutex::new(HashMap::new()),
        }
    }

    /// Creates `spec`'s container in the guest behind `agent`, its root filesystem as an
    /// image. On error nothing of it is left.
    ///
    /// # Errors
    ///
    /// The container has host-path volumes (they need shared directories), or the image or
    /// the agent failed.
    pub async fn create_container(
        &self,
        agent: &AgentClient,
        share: &ShareLayout,
        spec: &ContainerSpec,
    ) -> Result<(), SandboxError> {
        if spec
            .mounts
            .iter()
            .any(|m| matches!(m.source, MountSource::Host(_)))
        {
            return Err(SandboxError::NeedsSharedDirectories(
                "host-path volumes".into(),
            ));
        }
        let mut req = agent_request::create_container(spec, share);
        self.attach(&spec.id, &spec.rootfs, &mut req).await?;
        if let Err(e) = agent.create_container(&req).await {
            let _ = self.release(&spec.id, true).await;
            return Err(e);
        }
        Ok(())
    }

    /// Builds the image of `container`'s root filesystem `rootfs`, attaches it to the guest,
    /// and points `req` at it: the image as a storage of the container, mounted at the
    /// rootfs path. On error nothing is left.
    ///
    /// # Errors
    ///
    /// The image cannot be built or attached.
    async fn attach(
        &self,
        container: &str,
        rootfs: &Path,
        req: &mut pb::CreateContainerRequest,
    ) -> Result<(), SandboxError> {
        let io = |context: String| move |source| SandboxError::Io { context, source };
        std::fs::create_dir_all(&self.dir).map_err(io(format!("create {}", self.dir.display())))?;
        let path = self.dir.join(format!("{container}.img"));
        let started = std::time::Instant::now();
        if let Err(e) = build_image(rootfs, &path).await {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let built = started.elapsed();
        let block = BlockDevice {
            path: path.clone(),
            readonly: false,
        };
        let guest_device = match self.vm.attach_block(block).await {
            Ok(device) => device,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e.into());
            }
        };
        tracing::debug!(container, image = %path.display(), device = %guest_device,
            build_ms = built.as_millis() as u64,
            attach_ms = (started.elapsed() - built).as_millis() as u64, "rootfs image attached");
        point_at_image(req, container, &guest_device);
        let image = AttachedImage { path, guest_device };
        self.attached
            .lock()
            .await
            .insert(container.to_string(), image);
        Ok(())
    }

    /// Detaches `container`'s image (unless the whole VM is going away, which releases its
    /// disks anyway) and deletes it. A container without an image is fine.
    ///
    /// # Errors
    ///
    /// The disk could not be detached; the image is deleted all the same.
    pub async fn release(&self, container: &str, detach: bool) -> Result<(), SandboxError> {
        let Some(image) = self.attached.lock().await.remove(container) else {
            return Ok(());
        };
        let detached = if detach {
            self.vm.detach_block(&image.guest_device).await
        } else {
            Ok(())
        };
        if let Err(e) = std::fs::remove_file(&image.path) {
            tracing::warn!(image = %image.path.display(), error = %e, "remove rootfs image");
        }
        detached.map_err(|e| {
            tracing::warn!(container, error = %chain(&e), "detach rootfs image");
            e.into()
        })
    }
}

/// Guest path where a container's image is mounted.
pub fn guest_rootfs(container: &str) -> String {
    format!("{GUEST_STORAGE_DIR}/{container}/rootfs")
}

/// Makes `req` use the image on `guest_device` as the container's root filesystem.
fn point_at_image(req: &mut pb::CreateContainerRequest, container: &str, guest_device: &str) {
    let mut storage = pb::MountStorageRequest::new();
    storage.driver = "block".into();
    storage.source = guest_device.to_string();
    storage.fs_type = "ext4".into();
    storage.mount_point = guest_rootfs(container);
    req.rootfs = storage.mount_point.clone();
    req.storages.push(storage);
}

/// Builds an ext4 image at `image` holding a copy of the directory `rootfs`.
async fn build_image(rootfs: &Path, image: &Path) -> Result<(), SandboxError> {
    let source = rootfs.to_path_buf();
    let used = tokio::task::spawn_blocking(move || tree_size(&source))
        .await
        .map_err(|e| SandboxError::Io {
            context: "measure the root filesystem".into(),
            source: std::io::Error::other(e),
        })?;
    let size_mib = image_size_mib(used);
    let file = std::fs::File::create(image).map_err(|source| SandboxError::Io {
        context: format!("create {}", image.display()),
        source,
    })?;
    // Sparse: the image takes host space only for what is written into it.
    file.set_len(size_mib << 20)
        .map_err(|source| SandboxError::Io {
            context: format!("size {}", image.display()),
            source,
        })?;
    drop(file);
    // No journal: the image lives as long as the container, and nothing replays it.
    let output = Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-O",
            "^has_journal",
            "-m",
            "0",
            "-L",
            "lightpod-rootfs",
        ])
        .arg("-d")
        .arg(rootfs)
        .arg(image)
        .output()
        .await
        .map_err(|source| SandboxError::Io {
            context: "run mkfs.ext4 (apt-get install e2fsprogs)".into(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(SandboxError::Io {
        context: format!(
            "mkfs.ext4 -d {} {}: {}",
            rootfs.display(),
            image.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        source: std::io::Error::other(output.status.to_string()),
    })
}

/// Bytes the files under `dir` take, with a per-file allowance; symlinks are not followed.
fn tree_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            total += PER_FILE_BYTES;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

/// Image size in MiB for `used` bytes of files: room for them plus the headroom.
fn image_size_mib(used: u64) -> u64 {
    (used + used / 4 + HEADROOM_BYTES).div_ceil(1 << 20)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn images_fit_their_files_with_headroom() {
        assert_eq!(image_size_mib(0), 64);
        assert_eq!(image_size_mib(100 << 20), 125 + 64);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/tool"), vec![0u8; 10_000]).unwrap();
        std::os::unix::fs::symlink("/nonexistent/huge", dir.path().join("link")).unwrap();
        assert_eq!(tree_size(dir.path()), 3 * PER_FILE_BYTES + 10_000);
    }

    #[test]
    fn the_request_mounts_the_image_as_the_rootfs() {
        let mut req = pb::CreateContainerRequest::new();
        req.rootfs = "/run/lightpod/shared/c1/rootfs".into();
        point_at_image(&mut req, "c1", "/dev/xvdb");
        assert_eq!(req.rootfs, "/run/lightpod/storage/c1/rootfs");
        assert_eq!(req.storages.len(), 1);
        let storage = &req.storages[0];
        assert_eq!(
            (
                storage.driver.as_str(),
                storage.source.as_str(),
                storage.fs_type.as_str()
            ),
            ("block", "/dev/xvdb", "ext4")
        );
        assert_eq!(storage.mount_point, req.rootfs);
    }

    #[tokio::test]
    async fn builds_an_ext4_image_of_a_directory() {
        if !Path::new("/usr/sbin/mkfs.ext4").exists() && !Path::new("/sbin/mkfs.ext4").exists() {
            eprintln!("SKIP builds_an_ext4_image_of_a_directory: mkfs.ext4 not installed");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("etc")).unwrap();
        std::fs::write(rootfs.join("etc/hostname"), "pod\n").unwrap();
        let image = dir.path().join("c.img");
        build_image(&rootfs, &image).await.unwrap();
        let header = std::fs::read(&image).unwrap();
        // The ext4 superblock starts at 1024; its magic 0xEF53 sits at offset 56 in it.
        assert_eq!(&header[1024 + 56..1024 + 58], &[0x53, 0xef]);
        let want = image_size_mib(tree_size(&rootfs)) << 20;
        assert_eq!(std::fs::metadata(&image).unwrap().len(), want);
    }
}
