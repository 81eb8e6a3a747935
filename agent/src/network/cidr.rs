//! Addresses and prefixes in CIDR form, and MAC addresses, as the host sends them.

use std::net::IpAddr;

/// An address with its prefix length: `10.88.0.5/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

/// Parses `addr/prefix`; a bare address gets the full-length prefix.
pub fn parse_cidr(text: &str) -> Option<Cidr> {
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (
            addr.parse::<IpAddr>().ok()?,
            Some(prefix.parse::<u8>().ok()?),
        ),
        None => (text.parse::<IpAddr>().ok()?, None),
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(max);
    (prefix <= max).then_some(Cidr { addr, prefix })
}

/// Parses `aa:bb:cc:dd:ee:ff` (either case, `-` also accepted).
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        let cases = [
            ("10.88.0.5/16", Some(("10.88.0.5", 16))),
            ("10.0.0.1", Some(("10.0.0.1", 32))),
            ("fd00::5/64", Some(("fd00::5", 64))),
            ("0.0.0.0/0", Some(("0.0.0.0", 0))),
            ("10.0.0.1/33", None),
            ("fd00::1/129", None),
            ("10.0.0/8", None),
            ("x/8", None),
            ("10.0.0.1/", None),
        ];
        for (text, want) in cases {
            let want = want.map(|(a, p)| Cidr {
                addr: a.parse().expect("test address"),
                prefix: p,
            });
            assert_eq!(parse_cidr(text), want, "{text}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("02:00:0A:58:00:05"), Some([2, 0, 10, 0x58, 0, 5]));
        assert_eq!(parse_mac("02-00-0a-58-00-05"), Some([2, 0, 10, 0x58, 0, 5]));
        assert_eq!(parse_mac("02:00:0a:58:00"), None, "too short");
        assert_eq!(parse_mac("02:00:0a:58:00:05:06"), None, "too long");
        assert_eq!(parse_mac("2:0:a:58:0:5"), None, "single digits");
        assert_eq!(parse_mac("zz:00:0a:58:00:05"), None, "not hex");
    }
}
