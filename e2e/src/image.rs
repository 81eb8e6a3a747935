//! OCI images built locally from Debian's `busybox-static`, for containerd and its CRI plugin.
//!
//! There is no registry to pull from, so the tests build their images: one layer holding the
//! busybox root filesystem of [`crate::rootfs::busybox_base`], written as OCI image layout
//! archives that `ctr images import` accepts. Each archive carries the full image name in the
//! `io.containerd.image.name` annotation, so it is imported under a name the CRI plugin
//! resolves as kubelet would (`docker.io/...`).
//!
//! Archives are content-addressed: the file name holds the manifest digest, and the digests
//! are deterministic (sorted entries, fixed owners and times, uncompressed layers), so the same
//! busybox binary always gives the same images. They are built once per machine into
//! [`crate::cache_dir`].

mod layer;
mod layout;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::Context;
use serde_json::json;

pub use layout::ImageArchive;

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

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The archive of [`BUSYBOX_IMAGE`], built on first use.
pub fn busybox_image_tar() -> PathBuf {
    built().busybox.path.clone()
}

/// The archive of [`PAUSE_IMAGE`], built on first use.
pub fn pause_image_tar() -> PathBuf {
    built().pause.path.clone()
}

/// The archive of [`WEB_IMAGE`], built on first use.
pub fn web_image_tar() -> PathBuf {
    built().web.path.clone()
}

/// All the test images: what `e2e/containerd/start.sh` imports.
pub fn all_images() -> [&'static ImageArchive; 3] {
    let images = built();
    [&images.busybox, &images.pause, &images.web]
}

struct Images {
    busybox: ImageArchive,
    pause: ImageArchive,
    web: ImageArchive,
}

fn built() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = crate::cache_dir().join("oci-images");
        build_all(&dir).expect("build the e2e OCI images (needs busybox-static)")
    })
}

/// Builds the three images into `dir`, reusing archives already there.
fn build_all(dir: &Path) -> anyhow::Result<Images> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let rootfs = crate::rootfs::busybox_base()?;
    let base = layer::from_dir(&rootfs).context("busybox layer")?;
    let www = layer::from_files(&[("www/index.html", WEB_PAGE.as_bytes(), 0o644)])
        .context("web page layer")?;

    let busybox = layout::write(dir, BUSYBOX_IMAGE, &[&base], config(&[], &["sh"], &[]))?;
    let pause = layout::write(
        dir,
        PAUSE_IMAGE,
        &[&base],
        config(&["sleep", "infinity"], &[], &[]),
    )?;
    let web_cmd = ["httpd", "-f", "-v", "-p", "8080", "-h", "/www"];
    let web = layout::write(
        dir,
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
