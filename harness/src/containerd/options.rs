//! What a private containerd is started with, and the checks those options must pass before
//! anything on the host is touched.

use std::{
    fmt,
    net::Ipv4Addr,
    path::{Path, PathBuf},
    str::FromStr,
};

use crate::image::ImageArchive;

/// The CNI bridge pods are attached to unless the options say otherwise.
pub const DEFAULT_BRIDGE: &str = "lpe2e0";
/// The pod subnet unless the options say otherwise: `10.250.87.0/24`.
pub const DEFAULT_SUBNET: Subnet = Subnet {
    network: Ipv4Addr::new(10, 250, 87, 0),
    prefix: 24,
};
/// The gRPC socket under the instance directory (CRI is served there too).
pub(super) const SOCKET: &str = "containerd.sock";
/// Unix socket paths are limited to 108 bytes; containerd adds `.ttrpc` to this one.
const MAX_SOCKET_PATH: usize = 100;
/// Linux interface names hold at most 15 bytes (IFNAMSIZ less the terminating NUL).
const MAX_INTERFACE_NAME: usize = 15;

/// How to start a [`super::PrivateContainerd`].
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The instance directory: config, root, state, sockets, log, CNI config and IPAM state.
    /// Keep it short: the socket path in it must stay under 100 bytes. It must be absent or
    /// empty; it is removed when the instance stops.
    pub dir: PathBuf,
    /// A directory put first in containerd's PATH, where it finds shims such as
    /// `containerd-shim-lightpod-v2`; `None` leaves only the system directories.
    pub shim_dir: Option<PathBuf>,
    /// The CNI bridge pods are attached to; it must not exist yet.
    pub bridge: String,
    /// The pod subnet; no route of the host may overlap it.
    pub subnet: Subnet,
    /// containerd's log level.
    pub log_level: LogLevel,
    /// Images imported into the CRI plugin's namespace (`k8s.io`) once containerd answers.
    /// Pods need [`crate::image::PAUSE_IMAGE`] among them: it is the sandbox image.
    pub images: Vec<ImageArchive>,
}

impl ContainerdOptions {
    /// Options for an instance in `dir` with the default bridge and subnet, log level `info`,
    /// no shim directory and no images.
    pub fn new(dir: impl Into<PathBuf>) -> ContainerdOptions {
        ContainerdOptions {
            dir: dir.into(),
            shim_dir: None,
            bridge: DEFAULT_BRIDGE.into(),
            subnet: DEFAULT_SUBNET,
            log_level: LogLevel::Info,
            images: Vec::new(),
        }
    }

    /// Checks the options on their own, before the host is looked at, and returns the
    /// instance directory as an absolute path.
    ///
    /// # Errors
    ///
    /// The first option that cannot work.
    pub fn validate(&self) -> Result<PathBuf, OptionsError> {
        check_bridge_name(&self.bridge)?;
        let dir = absolute(&self.dir)?;
        check_config_text(&dir)?;
        let socket = dir.join(SOCKET);
        if socket.as_os_str().len() >= MAX_SOCKET_PATH {
            return Err(OptionsError::SocketPathTooLong { socket });
        }
        if let Some(shim_dir) = &self.shim_dir {
            if !shim_dir.is_dir() {
                return Err(OptionsError::ShimDirMissing {
                    path: shim_dir.clone(),
                });
            }
        }
        Ok(dir)
    }
}

/// An option that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The bridge name is not a usable interface name.
    #[error("bridge name {0:?} is not 1 to 15 letters, digits, '-', '_' or '.' (and not . or ..)")]
    BridgeName(String),
    /// The instance directory could not be made absolute.
    #[error("make {} absolute", path.display())]
    AbsoluteDir {
        /// The directory as given.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The instance directory holds a character the configuration files cannot carry.
    #[error("{} holds a quote, backslash or control character; use a plain path", path.display())]
    DirCharacters {
        /// The directory.
        path: PathBuf,
    },
    /// The socket path would not fit a unix socket address.
    #[error("{} is too long for a unix socket; use a shorter directory", socket.display())]
    SocketPathTooLong {
        /// The socket path.
        socket: PathBuf,
    },
    /// The shim directory is not a directory.
    #[error("shim directory {} does not exist", path.display())]
    ShimDirMissing {
        /// The directory.
        path: PathBuf,
    },
}

/// An IPv4 network in CIDR form, such as `10.250.87.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    network: Ipv4Addr,
    prefix: u8,
}

impl Subnet {
    /// The network address.
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether the route to `destination`/`mask` covers part of this subnet, or this subnet
    /// covers part of it.
    pub fn overlaps(&self, destination: Ipv4Addr, mask: Ipv4Addr) -> bool {
        let common = u32::from(mask) & mask_of(self.prefix);
        u32::from(destination) & common == u32::from(self.network) & common
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Why a text is not a [`Subnet`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    /// Not `a.b.c.d/n`.
    #[error("{0:?} is not an IPv4 network such as 10.250.87.0/24")]
    Syntax(String),
    /// A prefix that leaves no room for a gateway and pods, or none at all.
    #[error("prefix /{0} is not between /8 and /30")]
    Prefix(u8),
    /// Host bits set: the address is not the network's.
    #[error("{given} has host bits set; the network is {network}")]
    HostBits {
        /// The text given.
        given: String,
        /// The network it lies in.
        network: String,
    },
}

impl FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(text: &str) -> Result<Subnet, SubnetError> {
        let syntax = || SubnetError::Syntax(text.to_string());
        let (address, prefix) = text.split_once('/').ok_or_else(syntax)?;
        let address: Ipv4Addr = address.parse().map_err(|_| syntax())?;
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let prefix: u8 = prefix.parse().map_err(|_| syntax())?;
        if !(8..=30).contains(&prefix) {
            return Err(SubnetError::Prefix(prefix));
        }
        let network = Ipv4Addr::from(u32::from(address) & mask_of(prefix));
        if network != address {
            return Err(SubnetError::HostBits {
                given: text.to_string(),
                network: format!("{network}/{prefix}"),
            });
        }
        Ok(Subnet { network, prefix })
    }
}

fn mask_of(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// containerd's log levels (`[debug] level` of its configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// containerd's default.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
    /// Fatal errors only.
    Fatal,
    /// Panics only.
    Panic,
}

impl LogLevel {
    const ALL: [LogLevel; 7] = [
        LogLevel::Trace,
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
        LogLevel::Panic,
    ];

    /// The name containerd's configuration uses.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
            LogLevel::Panic => "panic",
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not a [`LogLevel`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log level {0:?} is not one of trace, debug, info, warn, error, fatal, panic")]
pub struct LogLevelError(String);

impl FromStr for LogLevel {
    type Err = LogLevelError;

    fn from_str(text: &str) -> Result<LogLevel, LogLevelError> {
        let wanted = if text == "warning" { "warn" } else { text };
        LogLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == wanted)
            .ok_or_else(|| LogLevelError(text.to_string()))
    }
}

/// Interface names go into JSON and iptables rules: only a conservative set of characters.
fn check_bridge_name(name: &str) -> Result<(), OptionsError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    let fits = (1..=MAX_INTERFACE_NAME).contains(&name.len())
        && name.bytes().all(allowed)
        && name != "."
        && name != "..";
    if fits {
        Ok(())
    } else {
        Err(OptionsError::BridgeName(name.to_string()))
    }
}

/// The directory goes into TOML and JSON strings unescaped.
fn check_config_text(dir: &Path) -> Result<(), OptionsError> {
    let text = dir.to_str().ok_or_else(|| OptionsError::DirCharacters {
        path: dir.to_path_buf(),
    })?;
    if text
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err(OptionsError::DirCharacters {
            path: dir.to_path_buf(),
        });
    }
    Ok(())
}

fn absolute(dir: &Path) -> Result<PathBuf, OptionsError> {
    std::path::absolute(dir).map_err(|source| OptionsError::AbsoluteDir {
        path: dir.to_path_buf(),
        source,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_or_say_why_not() {
        let ok = [
            ("10.250.87.0/24", "10.250.87.0", 24),
            ("10.0.0.0/8", "10.0.0.0", 8),
        ];
        for (text, network, prefix) in ok {
            let subnet: Subnet = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(subnet.network().to_string(), network, "{text}");
            assert_eq!(subnet.prefix(), prefix, "{text}");
            assert_eq!(subnet.to_string(), text, "{text} displays as given");
        }
        let bad = [
            (
                "no prefix",
                "10.250.87.0",
                SubnetError::Syntax("10.250.87.0".into()),
            ),
            ("ipv6", "fd00::/64", SubnetError::Syntax("fd00::/64".into())),
            (
                "sign",
                "10.0.0.0/+8",
                SubnetError::Syntax("10.0.0.0/+8".into()),
            ),
            (
                "huge prefix",
                "10.0.0.0/300",
                SubnetError::Syntax("10.0.0.0/300".into()),
            ),
            ("too small", "10.0.0.0/31", SubnetError::Prefix(31)),
            ("too large", "10.0.0.0/4", SubnetError::Prefix(4)),
            (
                "host bits",
                "10.250.87.1/24",
                SubnetError::HostBits {
                    given: "10.250.87.1/24".into(),
                    network: "10.250.87.0/24".into(),
                },
            ),
        ];
        for (name, text, want) in bad {
            assert_eq!(text.parse::<Subnet>(), Err(want), "case {name}");
        }
    }

    #[test]
    fn overlap_is_checked_both_ways() {
        let subnet: Subnet = "10.250.87.0/24".parse().unwrap();
        let route = |d: &str, m: &str| subnet.overlaps(d.parse().unwrap(), m.parse().unwrap());
        assert!(route("10.250.87.0", "255.255.255.0"), "the same network");
        assert!(route("10.0.0.0", "255.0.0.0"), "a wider route covering it");
        assert!(
            route("10.250.87.128", "255.255.255.128"),
            "a route inside it"
        );
        assert!(!route("10.250.91.0", "255.255.255.0"), "a neighbour");
        assert!(!route("192.168.0.0", "255.255.0.0"), "elsewhere");
    }

    #[test]
    fn log_levels_round_trip() {
        for level in LogLevel::ALL {
            assert_eq!(level.as_str().parse::<LogLevel>(), Ok(level), "{level}");
        }
        assert_eq!("warning".parse::<LogLevel>(), Ok(LogLevel::Warn));
        assert!("loud".parse::<LogLevel>().is_err());
    }

    #[test]
    fn the_default_subnet_is_a_valid_one() {
        assert_eq!("10.250.87.0/24".parse::<Subnet>(), Ok(DEFAULT_SUBNET));
    }

    #[test]
    fn options_are_checked_before_the_host() {
        let shim_dir = tempfile::tempdir().unwrap();
        let base = || {
            let mut options = ContainerdOptions::new("/tmp/lpe2e");
            options.shim_dir = Some(shim_dir.path().to_path_buf());
            options
        };
        let dir = base().validate().unwrap();
        assert_eq!(dir, Path::new("/tmp/lpe2e"));

        type Change = fn(&mut ContainerdOptions);
        let cases: [(&str, Change, &str); 7] = [
            ("empty bridge", |o| o.bridge = String::new(), "bridge name"),
            ("long bridge", |o| o.bridge = "a".repeat(16), "bridge name"),
            (
                "slash in bridge",
                |o| o.bridge = "a/b".into(),
                "bridge name",
            ),
            ("dot bridge", |o| o.bridge = "..".into(), "bridge name"),
            ("quote in dir", |o| o.dir = "/tmp/a\"b".into(), "quote"),
            (
                "long dir",
                |o| o.dir = PathBuf::from("/tmp").join("d".repeat(90)),
                "too long for a unix socket",
            ),
            (
                "missing shim dir",
                |o| o.shim_dir = Some("/nonexistent/lightpod".into()),
                "does not exist",
            ),
        ];
        for (name, change, message) in cases {
            let mut options = base();
            change(&mut options);
            let err = options.validate().expect_err(name);
            assert!(
                err.to_string().contains(message),
                "case {name}: {err} should say {message:?}"
            );
        }

        let mut relative = base();
        relative.dir = "lpe2e".into();
        let dir = relative.validate().unwrap();
        assert!(
            dir.is_absolute() && dir.ends_with("lpe2e"),
            "{}",
            dir.display()
        );
    }
}
