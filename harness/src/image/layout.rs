//! OCI image layout archives (`oci-layout`, `index.json`, `blobs/sha256/...` in one tar), the
//! format `ctr images import` reads.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde_json::json;
use tar::{EntryType, Header};

use super::{
    layer::{sha256_digest, Layer},
    ImageError,
};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The annotation containerd's importer takes the image name from, as is.
const CONTAINERD_NAME: &str = "io.containerd.image.name";
/// The OCI annotation for the tag; other tools use it when the containerd one is absent.
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image archive on disk.
#[derive(Debug, Clone)]
pub struct ImageArchive {
    /// The full image name, e.g. `docker.io/lightpod/busybox:e2e`.
    pub name: &'static str,
    /// `sha256:<hex>` of the image manifest: what containerd lists as the image digest.
    pub digest: String,
    /// The OCI layout tar.
    pub path: PathBuf,
}

/// Writes the image `name` made of `layers` and the OCI `config` object into `dir` as
/// `<short name>-<manifest digest>.tar`, unless that file is already there.
pub fn write(
    dir: &Path,
    name: &'static str,
    layers: &[&Layer],
    config: serde_json::Value,
) -> Result<ImageArchive, ImageError> {
    let image_config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.digest.as_str()).collect::<Vec<_>>(),
        },
    });
    let config_bytes = serde_json::to_vec(&image_config).map_err(ImageError::EncodeMetadata)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(CONFIG_TYPE, &config_bytes),
        "layers": layers.iter().map(|l| descriptor(LAYER_TYPE, &l.bytes)).collect::<Vec<_>>(),
    });
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(ImageError::EncodeMetadata)?;
    let digest = sha256_digest(&manifest_bytes);

    let path = dir.join(format!(
        "{}-{}.tar",
        short_name(name),
        &digest["sha256:".len()..][..16]
    ));
    if path.exists() {
        return Ok(ImageArchive { name, digest, path });
    }

    let tag = name.rsplit_once(':').map_or("latest", |(_, tag)| tag);
    let mut manifest_descriptor = descriptor(MANIFEST_TYPE, &manifest_bytes);
    manifest_descriptor["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    manifest_descriptor["annotations"] = json!({ CONTAINERD_NAME: name, REF_NAME: tag });
    let index = json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": [manifest_descriptor],
    });

    let mut blobs: Vec<&[u8]> = layers.iter().map(|l| l.bytes.as_slice()).collect();
    blobs.push(&config_bytes);
    blobs.push(&manifest_bytes);
    let index_bytes = serde_json::to_vec(&index).map_err(ImageError::EncodeMetadata)?;
    let archive = archive(&index_bytes, &blobs).map_err(ImageError::AssembleTar)?;

    // Several processes may build at once: write aside, then rename into place atomically.
    let staging = path.with_extension(format!("tar.{}", std::process::id()));
    fs::write(&staging, archive).map_err(|source| ImageError::WriteArchive {
        path: staging.clone(),
        source,
    })?;
    fs::rename(&staging, &path).map_err(|source| ImageError::WriteArchive {
        path: path.clone(),
        source,
    })?;
    Ok(ImageArchive { name, digest, path })
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    json!({ "mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len() })
}

/// `docker.io/lightpod/busybox:e2e` -> `busybox`.
fn short_name(name: &str) -> &str {
    let repo = name.rsplit('/').next().unwrap_or(name);
    repo.split(':').next().unwrap_or(repo)
}

fn archive(index: &[u8], blobs: &[&[u8]]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut header = header(EntryType::Directory, 0o755, 0);
        builder.append_data(&mut header, dir, std::io::empty())?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for blob in blobs {
        let digest = sha256_digest(blob);
        // The layer shared by two images of one archive is stored once.
        if !seen.insert(digest.clone()) {
            continue;
        }
        let path = format!("blobs/sha256/{}", &digest["sha256:".len()..]);
        let mut header = header(EntryType::Regular, 0o644, blob.len() as u64);
        builder.append_data(&mut header, path, *blob)?;
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    for (path, data) in [("oci-layout", &layout[..]), ("index.json", index)] {
        let mut header = header(EntryType::Regular, 0o644, data.len() as u64);
        builder.append_data(&mut header, path, data)?;
    }
    builder.into_inner()
}

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut header = Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_mtime(0);
    header
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::image::layer;

    fn read_entry(path: &Path, name: &str) -> Vec<u8> {
        let file = fs::File::open(path).unwrap();
        let mut archive = tar::Archive::new(file);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.path().unwrap().to_str() == Some(name) {
                let mut data = Vec::new();
                entry.read_to_end(&mut data).unwrap();
                return data;
            }
        }
        panic!("{name} not in {}", path.display());
    }

    #[test]
    fn the_index_names_the_image_and_every_blob_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let layer = layer::from_files(&[("hello", b"hi", 0o644)]).unwrap();
        let image = write(
            dir.path(),
            "docker.io/x/y:t",
            &[&layer],
            json!({"Cmd": ["sh"]}),
        )
        .unwrap();
        assert!(image
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("y-"));

        let index: serde_json::Value =
            serde_json::from_slice(&read_entry(&image.path, "index.json")).unwrap();
        let entry = &index["manifests"][0];
        assert_eq!(entry["annotations"][CONTAINERD_NAME], "docker.io/x/y:t");
        assert_eq!(entry["annotations"][REF_NAME], "t");
        assert_eq!(entry["digest"], image.digest.as_str());

        let blob =
            |digest: &str| read_entry(&image.path, &format!("blobs/sha256/{}", &digest[7..]));
        let manifest: serde_json::Value = serde_json::from_slice(&blob(&image.digest)).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], layer.digest.as_str());
        assert_eq!(blob(&layer.digest), layer.bytes);

        let again = write(
            dir.path(),
            "docker.io/x/y:t",
            &[&layer],
            json!({"Cmd": ["sh"]}),
        )
        .unwrap();
        assert_eq!(again.digest, image.digest, "same input, same digest");
        assert_eq!(again.path, image.path);
    }
}
