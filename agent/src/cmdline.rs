//! The agent's parameters on the kernel command line (see ARCHITECTURE.md, "guest boot
//! contract").

use std::path::PathBuf;

use tracing::level_filters::LevelFilter;

/// Name of the virtio-serial port used when the command line names none.
pub const DEFAULT_PORT_NAME: &str = lightpod_proto::AGENT_PORT_NAME;

/// Where the host's end of the agent channel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelSpec {
    /// A virtio-serial port, found by its name under `/sys/class/virtio-ports`.
    VirtioPort(String),
    /// A terminal device such as `/dev/hvc0` (the Xen console), used in raw mode.
    Console(PathBuf),
    /// A unix socket the agent listens on: development outside a guest only.
    Unix(PathBuf),
}

/// The agent's settings taken from the kernel command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentParams {
    /// Where to serve the host.
    pub channel: ChannelSpec,
    /// Most verbose log level to emit.
    pub log_level: LevelFilter,
    /// The kernel's own `page_reporting.page_reporting_order=`, which Linux 6.1 overwrites
    /// when the balloon driver registers; the agent sets it again (see
    /// [`crate::boot::page_reporting`]).
    pub page_reporting_order: Option<u32>,
}

impl Default for AgentParams {
    fn default() -> Self {
        AgentParams {
            channel: ChannelSpec::VirtioPort(DEFAULT_PORT_NAME.to_string()),
            log_level: LevelFilter::INFO,
            page_reporting_order: None,
        }
    }
}

/// A `lightpod.*` parameter the agent could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    /// `lightpod.channel=` names an unknown kind or an empty target.
    #[error("bad lightpod.channel value {0:?} (expected virtio-port:<name> or console:<dev>)")]
    Channel(String),
    /// `lightpod.log=` is not a level name.
    #[error("bad lightpod.log value {0:?} (expected error, warn, info, debug or trace)")]
    LogLevel(String),
}

/// Parses the text of `/proc/cmdline`. Unknown parameters are ignored; the last occurrence of
/// a repeated `lightpod.*` parameter wins, as the kernel does for its own.
///
/// # Errors
///
/// A `lightpod.*` parameter has a value the agent does not understand.
pub fn parse(cmdline: &str) -> Result<AgentParams, CmdlineError> {
    let mut params = AgentParams::default();
    for word in cmdline.split_ascii_whitespace() {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        match key {
            "lightpod.channel" => params.channel = parse_channel(value)?,
            "lightpod.log" => params.log_level = parse_level(value)?,
            // The kernel rejects a value that is not a number; so does the agent, quietly.
            "page_reporting.page_reporting_order" => {
                params.page_reporting_order = value.parse().ok();
            }
            _ => {}
        }
    }
    Ok(params)
}

fn parse_channel(value: &str) -> Result<ChannelSpec, CmdlineError> {
    let bad = || CmdlineError::Channel(value.to_string());
    let (kind, target) = value.split_once(':').ok_or_else(bad)?;
    if target.is_empty() {
        return Err(bad());
    }
    match kind {
        "virtio-port" => Ok(ChannelSpec::VirtioPort(target.to_string())),
        "console" if target.starts_with('/') => Ok(ChannelSpec::Console(target.into())),
        "unix" if target.starts_with('/') => Ok(ChannelSpec::Unix(target.into())),
        _ => Err(bad()),
    }
}

fn parse_level(value: &str) -> Result<LevelFilter, CmdlineError> {
    match value.to_ascii_lowercase().as_str() {
        "off" => Ok(LevelFilter::OFF),
        "error" => Ok(LevelFilter::ERROR),
        "warn" | "warning" => Ok(LevelFilter::WARN),
        "info" => Ok(LevelFilter::INFO),
        "debug" => Ok(LevelFilter::DEBUG),
        "trace" => Ok(LevelFilter::TRACE),
        _ => Err(CmdlineError::LogLevel(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let port = |n: &str| ChannelSpec::VirtioPort(n.to_string());
        let cases: &[(&str, &str, ChannelSpec, LevelFilter)] = &[
            ("empty", "", port(DEFAULT_PORT_NAME), LevelFilter::INFO),
            (
                "unrelated only",
                "console=ttyS0 quiet tsc_early_khz=2596094",
                port(DEFAULT_PORT_NAME),
                LevelFilter::INFO,
            ),
            (
                "named port",
                "console=ttyS0 lightpod.channel=virtio-port:other lightpod.log=debug",
                port("other"),
                LevelFilter::DEBUG,
            ),
            (
                "xen console",
                "lightpod.channel=console:/dev/hvc0",
                ChannelSpec::Console("/dev/hvc0".into()),
                LevelFilter::INFO,
            ),
            (
                "last wins",
                "lightpod.log=trace lightpod.log=WARN",
                port(DEFAULT_PORT_NAME),
                LevelFilter::WARN,
            ),
            (
                "unix for development",
                "lightpod.channel=unix:/tmp/a.sock",
                ChannelSpec::Unix("/tmp/a.sock".into()),
                LevelFilter::INFO,
            ),
        ];
        let params = parse("console=ttyS0 page_reporting.page_reporting_order=5")
            .expect("a reporting order parses");
        assert_eq!(params.page_reporting_order, Some(5));
        let params = parse("page_reporting.page_reporting_order=x")
            .expect("a bad reporting order is ignored, not an error");
        assert_eq!(params.page_reporting_order, None);
        for (name, line, channel, level) in cases {
            let params = parse(line).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&params.channel, channel, "{name}");
            assert_eq!(params.log_level, *level, "{name}");
        }
    }

    #[test]
    fn rejects_bad_values() {
        let cases = [
            ("no kind", "lightpod.channel=lightpod.agent"),
            ("unknown kind", "lightpod.channel=vsock:3"),
            ("empty port", "lightpod.channel=virtio-port:"),
            ("relative console", "lightpod.channel=console:hvc0"),
            ("bad level", "lightpod.log=loud"),
        ];
        for (name, line) in cases {
            assert!(parse(line).is_err(), "{name}: {line:?} was accepted");
        }
    }
}
