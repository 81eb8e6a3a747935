//! Checks of a [`VmSpec`] that QEMU would otherwise reject late or obscurely.

use crate::{spec::valid_mac, VmError, VmSpec};

/// Longest virtio-fs tag (the `tag` field of the virtio-fs config space is 36 bytes).
const MAX_TAG_LEN: usize = 36;
/// Smallest guest RAM that boots a Linux kernel with an initramfs.
const MIN_MEMORY_MIB: u32 = 64;
/// Longest socket path the VM's state directory may lead to: `sun_path` holds 108 bytes
/// with the terminating NUL (unix(7)).
const MAX_SOCKET_PATH: usize = 107;

/// Checks what QEMU would otherwise reject late or obscurely.
pub fn validate(spec: &VmSpec) -> Result<(), VmError> {
    if spec.vcpus == 0 {
        return Err(VmError::InvalidSpec("vcpus must be at least 1".into()));
    }
    if spec.memory_mib < MIN_MEMORY_MIB {
        return Err(VmError::InvalidSpec(format!(
            "memory must be at least {MIN_MEMORY_MIB} MiB"
        )));
    }
    // The QMP, agent and virtiofsd sockets live in the state directory.
    let longest_name = spec
        .shared_dirs
        .iter()
        .map(|dir| format!("vfs-{}.sock", dir.tag).len())
        .chain(["agent.sock".len()])
        .max()
        .unwrap_or_default();
    let longest = spec.state_dir.as_os_str().len() + 1 + longest_name;
    if longest > MAX_SOCKET_PATH {
        return Err(VmError::InvalidSpec(format!(
            "state directory {} is too long for its unix sockets ({longest} of at most \
             {MAX_SOCKET_PATH} bytes); use a shorter runtime.state_dir",
            spec.state_dir.display()
        )));
    }
    let mut tags = std::collections::HashSet::new();
    for dir in &spec.shared_dirs {
        let ok_chars = dir
            .tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if dir.tag.is_empty() || dir.tag.len() > MAX_TAG_LEN || !ok_chars {
            return Err(VmError::InvalidSpec(format!(
                "shared dir tag {:?} must be 1-{MAX_TAG_LEN} characters of [A-Za-z0-9._-]",
                dir.tag
            )));
        }
        if !tags.insert(dir.tag.as_str()) {
            return Err(VmError::InvalidSpec(format!(
                "shared dir tag {:?} repeats",
                dir.tag
            )));
        }
    }
    for net in &spec.net_devices {
        if !valid_mac(&net.mac) {
            return Err(VmError::InvalidSpec(format!(
                "MAC address {:?} is not aa:bb:cc:dd:ee:ff",
                net.mac
            )));
        }
        if !(68..=65535).contains(&net.mtu) {
            return Err(VmError::InvalidSpec(format!(
                "MTU {} is outside 68-65535",
                net.mtu
            )));
        }
    }
    for (what, path) in [("kernel", &spec.kernel), ("initramfs", &spec.initrd)] {
        std::fs::File::open(path).map_err(|source| VmError::GuestFile {
            what,
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mac_validation() {
        for (mac, ok) in [
            ("02:11:22:33:44:55", true),
            ("AA:bb:CC:dd:EE:ff", true),
            ("02:11:22:33:44", false),
            ("02:11:22:33:44:5g", false),
            ("02:11:22:33:44:55,netdev=x", false),
        ] {
            assert_eq!(valid_mac(mac), ok, "{mac}");
        }
    }

    #[test]
    fn state_dirs_too_long_for_a_socket_are_refused() {
        let spec = |dir: &str| VmSpec {
            id: "vm".into(),
            state_dir: dir.into(),
            vcpus: 1,
            memory_mib: 128,
            kernel: "/dev/null".into(),
            initrd: "/dev/null".into(),
            kernel_params: Vec::new(),
            shared_dirs: vec![crate::SharedDir {
                tag: "lightpod".into(),
                host_path: "/tmp".into(),
                readonly: false,
            }],
            net_devices: Vec::new(),
            block_devices: Vec::new(),
            boot_timeout: std::time::Duration::from_secs(1),
        };
        assert!(validate(&spec("/run/lightpod/k8s.io/sandboxes/0123456789abcdef/vm")).is_ok());
        let long = format!("/run/{}/vm", "d".repeat(90));
        let err = validate(&spec(&long)).unwrap_err().to_string();
        assert!(
            err.contains("too long") && err.contains("state_dir"),
            "{err}"
        );
    }
}
