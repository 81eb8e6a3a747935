//! Host networking an instance touches: its CNI bridge and the veths on it, the host's routes,
//! the iptables chains of the `portmap` plugin, and `net.ipv4.ip_forward`, which the bridge
//! plugin turns on.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use super::{options::Subnet, process::output_within};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// How long one `ip` or `iptables` call may take (`-w` waits for the xtables lock).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// The chain portmap jumps to from PREROUTING and OUTPUT; it exists once any portmap ran.
const HOSTPORT_DNAT: &str = "CNI-HOSTPORT-DNAT";
/// The built-in nat chains portmap adds its jumps to.
const HOOKED_CHAINS: [&str; 3] = ["PREROUTING", "OUTPUT", "POSTROUTING"];

/// Whether a network interface named `name` exists.
pub(super) fn interface_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// A route of the main table that overlaps `subnet`, described as `ip route` would, if any.
/// Default routes do not count: every subnet lies in them.
pub(super) fn overlapping_route(subnet: Subnet) -> std::io::Result<Option<String>> {
    let table = std::fs::read_to_string("/proc/net/route")?;
    Ok(parse_routes(&table)
        .into_iter()
        .find(|route| {
            route.mask != Ipv4Addr::UNSPECIFIED && subnet.overlaps(route.destination, route.mask)
        })
        .map(|route| {
            let prefix = u32::from(route.mask).count_ones();
            format!("{}/{prefix} dev {}", route.destination, route.interface)
        }))
}

struct Route {
    interface: String,
    destination: Ipv4Addr,
    mask: Ipv4Addr,
}

/// `/proc/net/route`: a header, then `Iface Destination Gateway Flags RefCnt Use Metric Mask
/// ...` with addresses as hexadecimal numbers whose native-endian bytes are network order.
fn parse_routes(table: &str) -> Vec<Route> {
    let address = |hex: &str| {
        u32::from_str_radix(hex, 16)
            .ok()
            .map(|n| Ipv4Addr::from(n.to_ne_bytes()))
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            Some(Route {
                interface: fields.first()?.to_string(),
                destination: address(fields.get(1)?)?,
                mask: address(fields.get(7)?)?,
            })
        })
        .collect()
}

/// Deletes the veths attached to `bridge`, then `bridge`; what could not be deleted.
pub(super) fn delete_bridge(bridge: &str) -> Vec<String> {
    let mut failed = Vec::new();
    if !interface_exists(bridge) {
        return failed;
    }
    let ports: Vec<PathBuf> =
        std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
    for port in ports {
        let Some(name) = port.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if let Err(why) = run("ip", &["link", "del", name]) {
            tracing::debug!(interface = name, %why, "deleting a veth failed");
        }
    }
    if let Err(why) = run("ip", &["link", "del", bridge]) {
        failed.push(format!("bridge {bridge}: {why}"));
    }
    failed
}

/// Whether portmap's chains are in the nat table.
pub(super) fn portmap_chains_exist() -> bool {
    run("iptables", &["-w", "-t", "nat", "-S", HOSTPORT_DNAT]).is_ok()
}

/// Removes portmap's jumps from the built-in chains and its own chains (`CNI-HOSTPORT-*`,
/// `CNI-DN-*`), unless a pod of another instance still maps a port through them.
pub(super) fn remove_portmap_chains() -> Vec<String> {
    let mut failed = Vec::new();
    match run("iptables", &["-w", "-t", "nat", "-S", HOSTPORT_DNAT]) {
        Ok(rules) => {
            let in_use: Vec<&str> = rules.lines().filter(|l| l.starts_with("-A ")).collect();
            if !in_use.is_empty() {
                tracing::warn!(
                    rules = in_use.len(),
                    "portmap chains still forward ports of running pods; left in place"
                );
                return failed;
            }
        }
        // Already gone.
        Err(_) => return failed,
    }
    for chain in HOOKED_CHAINS {
        let Ok(rules) = run("iptables", &["-w", "-t", "nat", "-S", chain]) else {
            continue;
        };
        for rule in rules.lines().filter(|r| r.contains("-j CNI-HOSTPORT-")) {
            let Some(spec) = rule.strip_prefix("-A ") else {
                continue;
            };
            let mut args = vec!["-w".to_string(), "-t".into(), "nat".into(), "-D".into()];
            args.extend(split_rule(spec));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            if let Err(why) = run("iptables", &args) {
                failed.push(format!("iptables rule {rule}: {why}"));
            }
        }
    }
    let chains: Vec<String> = run("iptables", &["-w", "-t", "nat", "-S"])
        .map(|all| portmap_chains(&all))
        .unwrap_or_default();
    for flag in ["-F", "-X"] {
        for chain in &chains {
            if let Err(why) = run("iptables", &["-w", "-t", "nat", flag, chain]) {
                failed.push(format!("iptables {flag} {chain}: {why}"));
            }
        }
    }
    failed
}

/// The chains portmap made, from `iptables -S` of the nat table.
fn portmap_chains(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|line| line.strip_prefix("-N "))
        .filter(|chain| chain.starts_with("CNI-HOSTPORT-") || chain.starts_with("CNI-DN-"))
        .map(str::to_string)
        .collect()
}

/// Splits a rule as `iptables -S` prints it into arguments: words separated by spaces, a
/// double-quoted word may hold spaces, and a backslash escapes the next character in it.
fn split_rule(rule: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = rule.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The current value of `net.ipv4.ip_forward` (`0` or `1`).
pub(super) fn ip_forward() -> std::io::Result<String> {
    std::fs::read_to_string(IP_FORWARD).map(|value| value.trim().to_string())
}

/// Sets `net.ipv4.ip_forward`.
pub(super) fn set_ip_forward(value: &str) -> std::io::Result<()> {
    std::fs::write(IP_FORWARD, value)
}

/// Runs `program args`; its stdout, or why it failed.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = output_within(Command::new(program).args(args), COMMAND_LIMIT)
        .map_err(|e| format!("run {program}: {e}"))?
        .ok_or_else(|| format!("{program} did not finish within {COMMAND_LIMIT:?}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_read_in_network_order() {
        let table = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
lpdev0\t0063FA0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
";
        let routes = parse_routes(table);
        let seen: Vec<(String, String, String)> = routes
            .iter()
            .map(|r| {
                (
                    r.interface.clone(),
                    r.destination.to_string(),
                    r.mask.to_string(),
                )
            })
            .collect();
        let want = |i: &str, d: &str, m: &str| (i.to_string(), d.to_string(), m.to_string());
        if cfg!(target_endian = "little") {
            assert_eq!(
                seen,
                [
                    want("eth0", "0.0.0.0", "0.0.0.0"),
                    want("lpdev0", "10.250.99.0", "255.255.255.0"),
                ]
            );
        }
    }

    #[test]
    fn iptables_rules_split_like_a_shell_would() {
        let cases = [
            (
                "PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
                vec!["PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT"],
            ),
            (
                "POSTROUTING -m comment --comment \"CNI portfwd requiring masquerade\" -j CNI-HOSTPORT-MASQ",
                vec![
                    "POSTROUTING",
                    "-m",
                    "comment",
                    "--comment",
                    "CNI portfwd requiring masquerade",
                    "-j",
                    "CNI-HOSTPORT-MASQ",
                ],
            ),
            (
                "X --comment \"dnat name: \\\"lightpod-e2e\\\" id: \\\"abc\\\"\" -j Y",
                vec!["X", "--comment", "dnat name: \"lightpod-e2e\" id: \"abc\"", "-j", "Y"],
            ),
            ("X --comment \"\" -j Y", vec!["X", "--comment", "", "-j", "Y"]),
        ];
        for (rule, want) in cases {
            assert_eq!(split_rule(rule), want, "{rule}");
        }
    }

    #[test]
    fn only_portmap_chains_are_picked() {
        let rules = "-P PREROUTING ACCEPT\n-N CNI-HOSTPORT-DNAT\n-N CNI-HOSTPORT-MASQ\n\
                     -N CNI-DN-1234\n-N CNI-abcd\n-N DOCKER\n-A PREROUTING -j CNI-HOSTPORT-DNAT\n";
        assert_eq!(
            portmap_chains(rules),
            ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-DN-1234"],
            "CNI-<hash> chains belong to the bridge plugin's masquerading, not to portmap"
        );
    }
}
