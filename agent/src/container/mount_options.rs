//! OCI mount option strings (`ro`, `nosuid`, `rbind`, `rprivate`, `size=64m` …) turned into
//! `mount(2)` flags, propagation and filesystem data.

use nix::mount::MsFlags;
use serde::{Deserialize, Serialize};

/// What an option does.
enum Effect {
    /// Sets mount flags.
    Set(MsFlags),
    /// Clears mount flags.
    Clear(MsFlags),
    /// Sets the propagation type, applied by a second `mount(2)` call.
    Propagation(MsFlags),
    /// Accepted and ignored: meaningful to other runtimes only.
    Ignore,
}

/// The options of the OCI runtime spec and mount(8) that map to `mount(2)` flags.
fn effect(option: &str) -> Option<Effect> {
    use Effect::*;
    Some(match option {
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND.union(MsFlags::MS_REC)),
        "private" => Propagation(MsFlags::MS_PRIVATE),
        "rprivate" => Propagation(MsFlags::MS_PRIVATE.union(MsFlags::MS_REC)),
        "shared" => Propagation(MsFlags::MS_SHARED),
        "rshared" => Propagation(MsFlags::MS_SHARED.union(MsFlags::MS_REC)),
        "slave" => Propagation(MsFlags::MS_SLAVE),
        "rslave" => Propagation(MsFlags::MS_SLAVE.union(MsFlags::MS_REC)),
        "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
        "runbindable" => Propagation(MsFlags::MS_UNBINDABLE.union(MsFlags::MS_REC)),
        "defaults" | "tmpcopyup" => Ignore,
        _ => return None,
    })
}

/// Parsed mount options. Flags are kept as raw bits so the value can cross the pipe to the
/// container init.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountOptions {
    /// `MS_*` flags of the mount itself.
    pub flags: u64,
    /// `MS_PRIVATE`/`MS_SHARED`/`MS_SLAVE`/`MS_UNBINDABLE` (with `MS_REC`), or 0 to leave
    /// propagation as it is.
    pub propagation: u64,
    /// Filesystem-specific options, comma-separated (`size=65536k,mode=755`).
    pub data: String,
}

impl MountOptions {
    /// Parses OCI option strings; the last of two contradicting options wins. Options that
    /// are not flags are passed to the filesystem as data.
    pub fn parse<S: AsRef<str>>(options: &[S]) -> MountOptions {
        let mut flags = MsFlags::empty();
        let mut propagation = MsFlags::empty();
        let mut data: Vec<&str> = Vec::new();
        for option in options {
            let option = option.as_ref().trim();
            if option.is_empty() {
                continue;
            }
            match effect(option) {
                Some(Effect::Set(f)) => flags |= f,
                Some(Effect::Clear(f)) => flags &= !f,
                Some(Effect::Propagation(p)) => propagation = p,
                Some(Effect::Ignore) => {}
                None => data.push(option),
            }
        }
        MountOptions {
            flags: flags.bits(),
            propagation: propagation.bits(),
            data: data.join(","),
        }
    }

    /// The `MS_*` flags of the mount.
    pub fn ms_flags(&self) -> MsFlags {
        MsFlags::from_bits_truncate(self.flags)
    }

    /// The propagation flags, empty for none.
    pub fn ms_propagation(&self) -> MsFlags {
        MsFlags::from_bits_truncate(self.propagation)
    }

    /// Whether this is a bind mount (`bind` or `rbind`).
    pub fn is_bind(&self) -> bool {
        self.ms_flags().contains(MsFlags::MS_BIND)
    }

    /// The data argument of `mount(2)`, `None` when empty.
    pub fn data(&self) -> Option<&str> {
        (!self.data.is_empty()).then_some(self.data.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_map_to_flags_propagation_and_data() {
        let none = MsFlags::empty();
        let cases: &[(&str, &[&str], MsFlags, MsFlags, &str)] = &[
            ("empty", &[], none, none, ""),
            (
                "read-only bind",
                &["rbind", "ro", "nosuid"],
                MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID,
                none,
                "",
            ),
            ("rw clears ro", &["ro", "rw"], none, none, ""),
            (
                "tmpfs with data",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
                MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
                none,
                "mode=755,size=65536k",
            ),
            (
                "propagation",
                &["bind", "rslave"],
                MsFlags::MS_BIND,
                MsFlags::MS_SLAVE | MsFlags::MS_REC,
                "",
            ),
            (
                "last propagation wins",
                &["private", "shared"],
                none,
                MsFlags::MS_SHARED,
                "",
            ),
            (
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
                MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
                none,
                "newinstance,ptmxmode=0666,mode=0620,gid=5",
            ),
            ("ignored", &["defaults", " ", "tmpcopyup"], none, none, ""),
        ];
        for (name, options, flags, propagation, data) in cases {
            let parsed = MountOptions::parse(options);
            assert_eq!(parsed.ms_flags(), *flags, "{name}: flags");
            assert_eq!(parsed.ms_propagation(), *propagation, "{name}: propagation");
            assert_eq!(parsed.data, *data, "{name}: data");
        }
    }

    #[test]
    fn bind_is_detected() {
        assert!(MountOptions::parse(&["rbind"]).is_bind());
        assert!(MountOptions::parse(&["bind", "ro"]).is_bind());
        assert!(!MountOptions::parse(&["ro"]).is_bind());
        assert_eq!(MountOptions::parse(&["ro"]).data(), None);
    }
}
