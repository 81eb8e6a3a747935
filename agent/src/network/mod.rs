//! The guest's network identity (`ConfigureNetwork`): interfaces found by MAC, renamed,
//! addressed and brought up, and routes, all over rtnetlink (the guest has no `ip` binary).

pub mod cidr;
pub mod connections;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use rtnetlink::{
    packet_route::{link::LinkAttribute, route::RouteScope},
    Handle, LinkUnspec, RouteMessageBuilder,
};

use crate::network::cidr::{parse_cidr, parse_mac, Cidr};

/// One interface to configure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceSpec {
    /// MAC address that identifies it.
    pub mac: String,
    /// Name to give it; empty keeps the kernel's.
    pub name: String,
    /// MTU; 0 keeps the kernel's.
    pub mtu: u32,
    /// Addresses in CIDR form.
    pub addresses: Vec<String>,
}

/// One route to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// CIDR destination; "" or "default" for the default route.
    pub destination: String,
    /// Next hop; "" for on-link.
    pub gateway: String,
    /// Interface name (after renaming); "" lets the kernel choose.
    pub device: String,
    /// Preferred source address; "" for none.
    pub source: String,
}

/// Configuring the network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The rtnetlink socket could not be opened.
    #[error("open rtnetlink socket")]
    Open(#[source] std::io::Error),
    /// No interface has the MAC address or name the request gives.
    #[error("no interface with {what} {value}")]
    InterfaceNotFound {
        /// `MAC address` or `name`.
        what: &'static str,
        /// The value looked for.
        value: String,
    },
    /// An address, prefix or MAC in the request does not parse.
    #[error("invalid {what} {value:?}")]
    InvalidAddress {
        /// Which kind of value.
        what: &'static str,
        /// The text given.
        value: String,
    },
    /// A netlink request failed.
    #[error("{step}")]
    Netlink {
        /// What was being done.
        step: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
}

fn netlink(step: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let step = step.into();
    move |source| NetworkError::Netlink { step, source }
}

/// Whether the kernel answered EEXIST: the address or route is there already.
fn already_exists(err: &rtnetlink::Error) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(msg) if msg.raw_code() == -libc::EEXIST)
}

/// A connection to the kernel's routing socket, driven by a task of the current runtime.
async fn connect() -> Result<Handle, NetworkError> {
    let (connection, handle, _) = rtnetlink::new_connection().map_err(NetworkError::Open)?;
    tokio::spawn(connection);
    Ok(handle)
}

/// Brings the loopback interface up, as every userland expects.
///
/// # Errors
///
/// `lo` is missing or cannot be set up.
pub async fn loopback_up() -> Result<(), NetworkError> {
    let handle = connect().await?;
    let index = link_index(&handle, |attrs| has_name(attrs, "lo"), "name", "lo").await?;
    set_link(
        &handle,
        LinkUnspec::new_with_index(index).up().build(),
        "bring lo up",
    )
    .await
}

/// Applies interfaces, then routes.
///
/// # Errors
///
/// An interface is missing, a value does not parse, or the kernel refused a change.
pub async fn configure(
    interfaces: &[InterfaceSpec],
    routes: &[RouteSpec],
) -> Result<(), NetworkError> {
    let handle = connect().await?;
    for iface in interfaces {
        configure_interface(&handle, iface).await?;
    }
    for route in routes {
        add_route(&handle, route).await?;
    }
    Ok(())
}

fn has_name(attrs: &[LinkAttribute], name: &str) -> bool {
    attrs
        .iter()
        .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
}

async fn link_index(
    handle: &Handle,
    matches: impl Fn(&[LinkAttribute]) -> bool,
    what: &'static str,
    value: &str,
) -> Result<u32, NetworkError> {
    let mut links = handle.link().get().execute();
    while let Some(link) = links.try_next().await.map_err(netlink("list interfaces"))? {
        if matches(&link.attributes) {
            return Ok(link.header.index);
        }
    }
    Err(NetworkError::InterfaceNotFound {
        what,
        value: value.to_string(),
    })
}

async fn set_link(
    handle: &Handle,
    message: rtnetlink::packet_route::link::LinkMessage,
    step: &str,
) -> Result<(), NetworkError> {
    handle
        .link()
        .set(message)
        .execute()
        .await
        .map_err(netlink(step))
}

async fn configure_interface(handle: &Handle, iface: &InterfaceSpec) -> Result<(), NetworkError> {
    let mac = parse_mac(&iface.mac).ok_or_else(|| NetworkError::InvalidAddress {
        what: "MAC address",
        value: iface.mac.clone(),
    })?;
    let addresses = iface
        .addresses
        .iter()
        .map(|a| {
            parse_cidr(a).ok_or_else(|| NetworkError::InvalidAddress {
                what: "address",
                value: a.clone(),
            })
        })
        .collect::<Result<Vec<Cidr>, _>>()?;
    let by_mac = |attrs: &[LinkAttribute]| {
        attrs
            .iter()
            .any(|a| matches!(a, LinkAttribute::Address(bytes) if bytes.as_slice() == mac))
    };
    let index = link_index(handle, by_mac, "MAC address", &iface.mac).await?;

    // The kernel renames only interfaces that are down.
    set_link(
        handle,
        LinkUnspec::new_with_index(index).down().build(),
        "bring interface down",
    )
    .await?;
    let mut change = LinkUnspec::new_with_index(index);
    if !iface.name.is_empty() {
        change = change.name(iface.name.clone());
    }
    if iface.mtu > 0 {
        change = change.mtu(iface.mtu);
    }
    set_link(
        handle,
        change.build(),
        &format!("rename {} / set MTU", iface.mac),
    )
    .await?;

    for cidr in &addresses {
        let result = handle
            .address()
            .add(index, cidr.addr, cidr.prefix)
            .execute()
            .await;
        match result {
            Err(e) if !already_exists(&e) => {
                return Err(netlink(format!(
                    "add address {}/{}",
                    cidr.addr, cidr.prefix
                ))(e));
            }
            _ => {}
        }
    }
    set_link(
        handle,
        LinkUnspec::new_with_index(index).up().build(),
        "bring interface up",
    )
    .await?;
    tracing::info!(mac = %iface.mac, name = %iface.name, addresses = ?iface.addresses, "interface configured");
    Ok(())
}

async fn add_route(handle: &Handle, route: &RouteSpec) -> Result<(), NetworkError> {
    let invalid = |what, value: &str| NetworkError::InvalidAddress {
        what,
        value: value.to_string(),
    };
    let gateway = match route.gateway.as_str() {
        "" => None,
        g => Some(g.parse::<IpAddr>().map_err(|_| invalid("gateway", g))?),
    };
    let destination = match route.destination.as_str() {
        "" | "default" => {
            let any = match gateway {
                Some(IpAddr::V6(_)) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            };
            Cidr {
                addr: any,
                prefix: 0,
            }
        }
        d => parse_cidr(d).ok_or_else(|| invalid("route destination", d))?,
    };
    let bad_route = |_| invalid("route", &format!("{route:?}"));
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(destination.addr, destination.prefix)
        .map_err(bad_route)?;
    builder = match gateway {
        Some(gw) => builder.gateway(gw).map_err(bad_route)?,
        // As `ip route add … dev X` does for a route without next hop.
        None => builder.scope(RouteScope::Link),
    };
    if !route.source.is_empty() {
        let source = route
            .source
            .parse::<IpAddr>()
            .map_err(|_| invalid("route source", &route.source))?;
        builder = builder.pref_source(source).map_err(bad_route)?;
    }
    if !route.device.is_empty() {
        let index = link_index(
            handle,
            |a| has_name(a, &route.device),
            "name",
            &route.device,
        )
        .await?;
        builder = builder.output_interface(index);
    }
    let step = format!("add route to {}/{}", destination.addr, destination.prefix);
    match handle.route().add(builder.build()).execute().await {
        Err(e) if !already_exists(&e) => Err(netlink(step)(e)),
        _ => Ok(()),
    }
}
