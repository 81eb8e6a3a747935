//! Reading what CNI put in a pod's network namespace: interfaces, addresses, routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::{
    packet_route::{
        address::{AddressAttribute, AddressScope},
        link::{LinkAttribute, LinkFlags, LinkMessage},
        route::{
            RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
        },
    },
    Handle, RouteMessageBuilder,
};

use super::{
    error::{request, NetworkError},
    netns::with_netlink,
    PodInterface, PodNetwork, PodRoute,
};

/// The interfaces (all but loopback) and routes of the calling thread's namespace.
pub(super) fn pod_network() -> Result<PodNetwork, NetworkError> {
    with_netlink(|handle| async move {
        let links: Vec<LinkMessage> = handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(request("list interfaces"))?;
        let mut interfaces = Vec::new();
        for link in links
            .iter()
            .filter(|l| !l.header.flags.contains(LinkFlags::Loopback))
        {
            interfaces.push(interface(&handle, link).await?);
        }
        if interfaces.is_empty() {
            return Err(NetworkError::NoInterface);
        }
        let mut messages: Vec<RouteMessage> = handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(request("list IPv4 routes"))?;
        let v6: Vec<RouteMessage> = handle
            .route()
            .get(RouteMessageBuilder::<Ipv6Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(request("list IPv6 routes"))?;
        messages.extend(v6);
        let routes = messages
            .iter()
            .filter_map(|m| route(m, &interfaces))
            .collect();
        Ok(PodNetwork { interfaces, routes })
    })
}

async fn interface(handle: &Handle, link: &LinkMessage) -> Result<PodInterface, NetworkError> {
    let index = link.header.index;
    let mut iface = PodInterface {
        name: String::new(),
        index,
        mac: String::new(),
        mtu: 0,
        addresses: Vec::new(),
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(name) => iface.name = name.clone(),
            LinkAttribute::Address(bytes) => iface.mac = format_mac(bytes),
            LinkAttribute::Mtu(mtu) => iface.mtu = *mtu,
            _ => {}
        }
    }
    let addresses: Vec<_> = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_collect()
        .await
        .map_err(request(format!("list the addresses of {}", iface.name)))?;
    for message in addresses {
        // The guest makes its own IPv6 link-local address.
        if message.header.scope != AddressScope::Universe {
            continue;
        }
        let address = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        });
        if let Some(ip) = address {
            iface
                .addresses
                .push(format!("{ip}/{}", message.header.prefix_len));
        }
    }
    Ok(iface)
}

/// The route of the main table that the guest needs, if `message` is one: routes the kernel
/// made for an address come back by themselves when the guest adds the address.
fn route(message: &RouteMessage, interfaces: &[PodInterface]) -> Option<PodRoute> {
    let header = &message.header;
    let main = header.table == RouteHeader::RT_TABLE_MAIN
        || message
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Table(t) if *t == u32::from(RouteHeader::RT_TABLE_MAIN)));
    if !main || header.protocol == RouteProtocol::Kernel || header.kind != RouteType::Unicast {
        return None;
    }
    let mut destination = None;
    let mut gateway = None;
    let mut device = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => destination = ip(address),
            RouteAttribute::Gateway(address) => gateway = ip(address),
            RouteAttribute::Oif(index) => {
                device = interfaces.iter().find(|i| i.index == *index);
            }
            _ => {}
        }
    }
    let device = device?;
    Some(PodRoute {
        destination: match destination {
            Some(ip) => format!("{ip}/{}", header.destination_prefix_length),
            None if header.destination_prefix_length == 0 => String::new(),
            None => return None,
        },
        gateway: gateway.map(|g| g.to_string()).unwrap_or_default(),
        device: device.name.clone(),
    })
}

fn ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> PodInterface {
        PodInterface {
            name: "eth0".into(),
            index: 2,
            mac: "02:00:00:00:00:01".into(),
            mtu: 1500,
            addresses: vec!["10.0.0.5/24".into()],
        }
    }

    fn message(
        protocol: RouteProtocol,
        attributes: Vec<RouteAttribute>,
        prefix: u8,
    ) -> RouteMessage {
        let mut m = RouteMessage::default();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = protocol;
        m.header.kind = RouteType::Unicast;
        m.header.destination_prefix_length = prefix;
        m.attributes = attributes;
        m
    }

    #[test]
    fn routes_the_guest_needs_are_kept() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let cases = [
            (
                "default route via the gateway",
                message(
                    RouteProtocol::Boot,
                    vec![
                        RouteAttribute::Gateway(RouteAddress::Inet(gw)),
                        RouteAttribute::Oif(2),
                    ],
                    0,
                ),
                Some(PodRoute {
                    destination: String::new(),
                    gateway: "10.0.0.1".into(),
                    device: "eth0".into(),
                }),
            ),
            (
                "a prefix via the gateway",
                message(
                    RouteProtocol::Static,
                    vec![
                        RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(
                            192, 168, 0, 0,
                        ))),
                        RouteAttribute::Gateway(RouteAddress::Inet(gw)),
                        RouteAttribute::Oif(2),
                    ],
                    16,
                ),
                Some(PodRoute {
                    destination: "192.168.0.0/16".into(),
                    gateway: "10.0.0.1".into(),
                    device: "eth0".into(),
                }),
            ),
            (
                "the kernel's route of an address",
                message(
                    RouteProtocol::Kernel,
                    vec![
                        RouteAttribute::Destination(RouteAddress::Inet(Ipv4Addr::new(10, 0, 0, 0))),
                        RouteAttribute::Oif(2),
                    ],
                    24,
                ),
                None,
            ),
            (
                "a route over an interface that is not carried",
                message(
                    RouteProtocol::Boot,
                    vec![
                        RouteAttribute::Gateway(RouteAddress::Inet(gw)),
                        RouteAttribute::Oif(9),
                    ],
                    0,
                ),
                None,
            ),
        ];
        for (name, m, expected) in cases {
            assert_eq!(route(&m, &[eth0()]), expected, "{name}");
        }
    }

    #[test]
    fn macs_are_lower_case_and_colon_separated() {
        assert_eq!(
            format_mac(&[0x02, 0x42, 0xAC, 0, 0, 0x0f]),
            "02:42:ac:00:00:0f"
        );
    }
}
