//! OCI images built locally from Debian's `busybox-static`, for containerd and its CRI plugin.
//!
//! There is no registry to pull from, so the images are built here: one layer holding the
//! busybox root filesystem of [`busybox_rootfs`], written as OCI image layout archives that
//! `ctr images import` accepts. Each archive carries the full image name in the
//! `io.containerd.image.name` annotation, so it is imported under a name the CRI plugin
//! resolves as kubelet would (`docker.io/...`).
//!
//! Archives are content-addressed: the file name holds the manifest digest, and the digests
//! are deterministic (sorted entries, fixed owners and times, uncompressed layers), so the same
//! busybox binary always gives the same images. They are built once into a cache directory
//! the caller chooses (`target/e2e-cache` for the tests, `/var/lib/lightpod/demo` for the
//! demo), which then holds:
//!
//! - `busybox-rootfs/`: the root filesystem, complete once it holds `.complete`;
//! - `oci-images/<short name>-<digest prefix>.tar`: one archive per image.

mod layer;
mod layout;
mod rootfs;

use std::path::{Path, PathBuf};

use serde_json::json;

pub use layout::ImageArchive;
pub use rootfs::busybox_rootfs;

/// The plain busybox image: `sh` by default, every busybox applet in PATH.
pub const BUSYBOX_IMAGE: &str = "docker.io/lightpod/busybox:e2e";
/// The pod sandbox ("pause") image the private containerd's CRI plugin uses: busybox whose
/// entrypoint sleeps forever.
pub const PAUSE_IMAGE: &str = "docker.io/lightpod/pause:e2e";
/// A web server: busybox `httpd` serving [`WEB_PAGE`] from `/www` on [`WEB_PORT`].
pub const WEB_IMAGE: &str = "docker.io/lightpod/web:e2e";
/// The port [`WEB_IMAGE`] listens on.
pub const WEB_PORT: u16 = 8080;
/// The body of `/index.html` in [`WEB_IMAGE`].
pub const WEB_PAGE: &str = "<h1>lightpod e2e</h1>\n";

/// The subdirectory of the cache directory that holds the image archives.
const ARCHIVE_DIR: &str = "oci-images";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Why the images or the root filesystem they hold could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A directory of the cache could not be created.
    #[error("create {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `/bin/busybox --list-full` could not run.
    #[error("run {busybox} --list-full (apt-get install busybox-static)")]
    ListApplets {
        /// The busybox binary.
        busybox: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `/bin/busybox --list-full` ran and failed.
    #[error("{busybox} --list-full failed ({status})")]
    AppletsFailed {
        /// The busybox binary.
        busybox: &'static str,
        /// How it exited.
        status: std::process::ExitStatus,
    },
    /// A file or link of the busybox root filesystem could not be written.
    #[error("write {} of the busybox root filesystem", path.display())]
    WriteRootfs {
        /// The file, link or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file of the tree going into a layer could not be read.
    #[error("read {} for a layer", path.display())]
    ReadTree {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A layer or an image archive could not be assembled in memory.
    #[error("assemble a tarball")]
    AssembleTar(#[source] std::io::Error),
    /// The image configuration, manifest or index could not be encoded.
    #[error("encode image metadata")]
    EncodeMetadata(#[source] serde_json::Error),
    /// An image archive could not be written into the cache.
    #[error("write {}", path.display())]
    WriteArchive {
        /// The archive (or its staging file).
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The three images, as archives in a cache directory.
#[derive(Debug, Clone)]
pub struct Images {
    /// [`BUSYBOX_IMAGE`].
    pub busybox: ImageArchive,
    /// [`PAUSE_IMAGE`].
    pub pause: ImageArchive,
    /// [`WEB_IMAGE`].
    pub web: ImageArchive,
}

impl Images {
    /// Builds the images into `cache_dir` (see the module documentation for its layout),
    /// reusing the root filesystem and the archives already there. Several processes may
    /// build into the same directory at once: each writes aside and renames into place.
    ///
    /// # Errors
    ///
    /// Fails when `/bin/busybox` (Debian's `busybox-static`) is missing or the cache cannot
    /// be written.
    pub fn build(cache_dir: &Path) -> Result<Images, ImageError> {
        let dir = cache_dir.join(ARCHIVE_DIR);
        std::fs::create_dir_all(&dir).map_err(|source| ImageError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let rootfs = busybox_rootfs(cache_dir)?;
        let base = layer::from_dir(&rootfs)?;
        let www = layer::from_files(&[("www/index.html", WEB_PAGE.as_bytes(), 0o644)])?;

        let busybox = layout::write(&dir, BUSYBOX_IMAGE, &[&base], config(&[], &["sh"], &[]))?;
        let pause = layout::write(
            &dir,
            PAUSE_IMAGE,
            &[&base],
            config(&["sleep", "infinity"], &[], &[]),
        )?;
        let web_port = WEB_PORT.to_string();
        let web_cmd = ["httpd", "-f", "-v", "-p", &web_port, "-h", "/www"];
        let web = layout::write(
            &dir,
            WEB_IMAGE,
            &[&base, &www],
            config(&[], &web_cmd, &[WEB_PORT]),
        )?;
        Ok(Images {
            busybox,
            pause,
            web,
        })
    }

    /// The three archives: busybox, pause, web.
    pub fn all(&self) -> [&ImageArchive; 3] {
        [&self.busybox, &self.pause, &self.web]
    }
}

/// The `config` object of an OCI image configuration.
fn config(entrypoint: &[&str], cmd: &[&str], ports: &[u16]) -> serde_json::Value {
    let mut config = json!({ "Env": [PATH_ENV], "WorkingDir": "/" });
    if !entrypoint.is_empty() {
        config["Entrypoint"] = json!(entrypoint);
    }
    if !cmd.is_empty() {
        config["Cmd"] = json!(cmd);
    }
    if !ports.is_empty() {
        let exposed: serde_json::Map<String, serde_json::Value> = ports
            .iter()
            .map(|p| (format!("{p}/tcp"), json!({})))
            .collect();
        config["ExposedPorts"] = serde_json::Value::Object(exposed);
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_sets_only_what_is_given() {
        let plain = config(&[], &["sh"], &[]);
        assert_eq!(plain["Cmd"], json!(["sh"]));
        assert!(plain.get("Entrypoint").is_none(), "no entrypoint: {plain}");
        assert!(plain.get("ExposedPorts").is_none(), "no ports: {plain}");

        let web = config(&["sleep"], &[], &[8080]);
        assert_eq!(web["Entrypoint"], json!(["sleep"]));
        assert_eq!(web["ExposedPorts"], json!({ "8080/tcp": {} }));
    }
}
