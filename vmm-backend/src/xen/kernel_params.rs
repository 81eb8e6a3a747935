//! The guest kernel command line the Xen backend adds before the caller's parameters.

/// The guest's end of the agent channel: its first PV console.
pub const GUEST_CONSOLE: &str = "/dev/hvc0";

/// The guest kernel command line: the backend's parameters, then the caller's.
pub fn guest_cmdline(extra: &[String]) -> String {
    // The console carries the boot log until the agent takes it over (see `console`);
    // `quiet` keeps that log to warnings, which are what a failed boot needs, and keeps the
    // console's hypercalls out of the boot path. A panic needs no `panic=`: Linux on Xen
    // reports it as a crash shutdown, and `on_crash` destroys the domain.
    let mut params = vec![
        "console=hvc0".to_string(),
        "quiet".to_string(),
        format!("lightpod.channel=console:{GUEST_CONSOLE}"),
    ];
    params.extend(extra.iter().cloned());
    params.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_channel_is_the_console_and_callers_come_last() {
        let line = guest_cmdline(&["lightpod.log=debug".to_string()]);
        assert_eq!(
            line,
            "console=hvc0 quiet lightpod.channel=console:/dev/hvc0 lightpod.log=debug"
        );
    }
}
