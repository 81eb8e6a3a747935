//! Linux capabilities by their OCI names, and applying a set to the calling process.

use serde::{Deserialize, Serialize};

/// Capability names in kernel number order (`include/uapi/linux/capability.h`).
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// One capability, by kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Capability(u8);

impl Capability {
    /// Looks a capability up by its OCI name (`CAP_CHOWN`); the `CAP_` prefix is optional
    /// and case does not matter, as runc accepts.
    pub fn from_name(name: &str) -> Option<Capability> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        NAMES
            .iter()
            .position(|n| *n == full)
            .map(|i| Capability(i as u8))
    }

    /// The kernel's number for this capability.
    pub fn number(self) -> u8 {
        self.0
    }

    /// The OCI name of this capability.
    pub fn name(self) -> &'static str {
        NAMES
            .get(usize::from(self.0))
            .copied()
            .unwrap_or("CAP_UNKNOWN")
    }
}

/// A capability set as the kernel's `capset` takes it: two 32-bit words.
pub fn to_words(caps: &[Capability]) -> [u32; 2] {
    let mut words = [0u32; 2];
    for cap in caps {
        let n = usize::from(cap.0);
        words[n / 32] |= 1 << (n % 32);
    }
    words
}

/// Every capability up to `last` (the kernel's `/proc/sys/kernel/cap_last_cap`).
pub fn all_up_to(last: u8) -> Vec<Capability> {
    (0..=last.min(NAMES.len() as u8 - 1))
        .map(Capability)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_kernel_numbers() {
        let cases = [
            ("CAP_CHOWN", Some(0)),
            ("CAP_KILL", Some(5)),
            ("CAP_NET_BIND_SERVICE", Some(10)),
            ("CAP_SYS_ADMIN", Some(21)),
            ("CAP_AUDIT_WRITE", Some(29)),
            ("CAP_SETFCAP", Some(31)),
            ("CAP_MAC_OVERRIDE", Some(32)),
            ("CAP_CHECKPOINT_RESTORE", Some(40)),
            ("net_raw", Some(13)),
            ("CAP_NOPE", None),
            ("", None),
        ];
        for (name, number) in cases {
            assert_eq!(
                Capability::from_name(name).map(Capability::number),
                number,
                "{name}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for (i, name) in NAMES.iter().enumerate() {
            let cap = Capability::from_name(name).expect("known name");
            assert_eq!(usize::from(cap.number()), i, "{name}");
            assert_eq!(cap.name(), *name);
        }
    }

    #[test]
    fn sets_split_into_words() {
        let caps = [
            Capability(0),
            Capability(5),
            Capability(31),
            Capability(32),
            Capability(40),
        ];
        assert_eq!(to_words(&caps), [1 | 1 << 5 | 1 << 31, 1 | 1 << 8]);
        assert_eq!(all_up_to(40).len(), 41);
        assert_eq!(all_up_to(200).len(), 41, "clamped to known capabilities");
    }
}
