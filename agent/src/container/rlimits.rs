//! Resource limits by their OCI names (`RLIMIT_NOFILE` …).

use nix::sys::resource::Resource;
use serde::{Deserialize, Serialize};

/// Resource names in the order of [`RESOURCES`].
const NAMES: [&str; 16] = [
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

const RESOURCES: [Resource; 16] = [
    Resource::RLIMIT_AS,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_DATA,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_LOCKS,
    Resource::RLIMIT_MEMLOCK,
    Resource::RLIMIT_MSGQUEUE,
    Resource::RLIMIT_NICE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_RSS,
    Resource::RLIMIT_RTPRIO,
    Resource::RLIMIT_RTTIME,
    Resource::RLIMIT_SIGPENDING,
    Resource::RLIMIT_STACK,
];

/// Which resource a limit applies to, as an index into the tables above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RlimitKind(u8);

impl RlimitKind {
    /// Looks a resource up by its OCI name; case does not matter.
    pub fn from_name(name: &str) -> Option<RlimitKind> {
        let upper = name.to_ascii_uppercase();
        NAMES
            .iter()
            .position(|n| *n == upper)
            .map(|i| RlimitKind(i as u8))
    }

    /// The OCI name.
    pub fn name(self) -> &'static str {
        NAMES[usize::from(self.0) % NAMES.len()]
    }

    /// The resource as `setrlimit` takes it.
    pub fn resource(self) -> Resource {
        RESOURCES[usize::from(self.0) % RESOURCES.len()]
    }
}

/// One limit of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// Which resource.
    pub kind: RlimitKind,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_resources() {
        let cases = [
            ("RLIMIT_NOFILE", Some(Resource::RLIMIT_NOFILE)),
            ("rlimit_nproc", Some(Resource::RLIMIT_NPROC)),
            ("RLIMIT_CORE", Some(Resource::RLIMIT_CORE)),
            ("RLIMIT_STACK", Some(Resource::RLIMIT_STACK)),
            ("RLIMIT_RTTIME", Some(Resource::RLIMIT_RTTIME)),
            ("NOFILE", None),
            ("RLIMIT_BOGUS", None),
        ];
        for (name, resource) in cases {
            assert_eq!(
                RlimitKind::from_name(name).map(RlimitKind::resource),
                resource,
                "{name}"
            );
        }
    }

    #[test]
    fn every_name_has_its_own_resource() {
        for name in NAMES {
            let kind = RlimitKind::from_name(name).expect("known name");
            assert_eq!(kind.name(), name);
            assert_eq!(
                format!("{:?}", kind.resource()),
                name,
                "{name} maps to a resource of another name"
            );
        }
    }
}
