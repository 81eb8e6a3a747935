//! The pod's network, carried into its VM.
//!
//! CNI configures a pod's network namespace for a container that never runs there: the
//! guest owns the pod's IP. For each interface CNI made (a veth end, `eth0`), the sandbox
//! creates a tap device in the same namespace and joins the two with tc `mirred` redirects
//! on both ingress hooks, so every frame that reaches the veth leaves through the tap into
//! the guest and back. The guest's virtio-net device gets the veth's MAC address, the
//! addresses and the routes CNI gave, so to the rest of the network nothing changed. The
//! veth keeps its configuration: CNI's DEL finds what its ADD made.
//!
//! Port forwarding: containerd's CRI dials `localhost:<port>` inside the pod's namespace
//! (`PortForward`), where nothing listens. An iptables `REDIRECT` in that namespace sends
//! every such TCP connection to one listener of the sandbox, which reads the original port
//! (`SO_ORIGINAL_DST`) and relays the bytes to `127.0.0.1:<port>` in the guest through the
//! agent ([`forward`]).
//!
//! Everything that touches the namespace runs on a thread of its own that enters it
//! ([`netns`]): `setns` changes only the calling thread, and a thread of the async runtime
//! must never be left in a pod's namespace.

mod discover;
mod error;
pub mod forward;
mod netns;
mod redirect;
mod tap;

use std::{os::fd::OwnedFd, path::PathBuf};

use lightpod_proto::agent as pb;

pub use self::error::NetworkError;
use self::netns::in_netns;

/// One interface CNI made in the pod's namespace, as the guest will have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInterface {
    /// Its name in the namespace, and in the guest (`eth0`).
    pub name: String,
    /// Its index in the namespace.
    pub index: u32,
    /// MAC address, `aa:bb:cc:dd:ee:ff`; the guest's device takes it over.
    pub mac: String,
    /// MTU.
    pub mtu: u32,
    /// Addresses in CIDR form (`10.88.0.5/16`), link-local IPv6 left out.
    pub addresses: Vec<String>,
}

/// One route of the pod's namespace, for the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRoute {
    /// CIDR destination; empty for the default route.
    pub destination: String,
    /// Next hop; empty for an on-link route.
    pub gateway: String,
    /// Interface name.
    pub device: String,
}

/// What the pod's namespace holds: its interfaces and routes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodNetwork {
    /// The interfaces to carry into the guest.
    pub interfaces: Vec<PodInterface>,
    /// Routes over them.
    pub routes: Vec<PodRoute>,
}

impl PodNetwork {
    /// The agent's `ConfigureNetwork` request for this network.
    pub fn to_request(&self) -> pb::ConfigureNetworkRequest {
        let mut req = pb::ConfigureNetworkRequest::new();
        req.interfaces = self
            .interfaces
            .iter()
            .map(|i| {
                let mut iface = pb::Interface::new();
                iface.mac = i.mac.clone();
                iface.name = i.name.clone();
                iface.mtu = i.mtu;
                iface.addresses = i.addresses.clone();
                iface
            })
            .collect();
        req.routes = self
            .routes
            .iter()
            .map(|r| {
                let mut route = pb::Route::new();
                route.destination = r.destination.clone();
                route.gateway = r.gateway.clone();
                route.device = r.device.clone();
                route
            })
            .collect();
        req
    }
}

/// A tap device joined to one pod interface, handed to the VM.
#[derive(Debug)]
pub struct PodTap {
    /// The interface it stands in for.
    pub interface: PodInterface,
    /// The tap device's name in the namespace.
    pub tap_name: String,
    /// The open `/dev/net/tun` file of the tap; the device lives as long as it is open.
    pub fd: OwnedFd,
}

/// The pod network attached to a sandbox: undone by [`NetworkAttachment::detach`].
#[derive(Debug)]
pub struct NetworkAttachment {
    netns: PathBuf,
    /// Indexes of the pod interfaces whose ingress now redirects to a tap.
    redirected: Vec<u32>,
}

/// Attaches the pod network of the namespace at `netns`: finds its interfaces and routes,
/// creates a tap per interface and joins the two. On error nothing is left in the
/// namespace.
///
/// # Errors
///
/// The namespace cannot be entered, an interface cannot be read, or a tap or redirect
/// cannot be created.
pub async fn attach(
    netns: PathBuf,
) -> Result<(PodNetwork, Vec<PodTap>, NetworkAttachment), NetworkError> {
    let path = netns.clone();
    let (network, taps) = in_netns(&netns, move || {
        let network = discover::pod_network()?;
        let taps = redirect::join_taps(&network.interfaces)?;
        Ok((network, taps))
    })
    .await
    .map_err(|e| e.in_namespace(&path))?;
    let attachment = NetworkAttachment {
        netns,
        redirected: taps.iter().map(|t| t.interface.index).collect(),
    };
    Ok((network, taps, attachment))
}

impl NetworkAttachment {
    /// The pod's network namespace.
    pub fn netns(&self) -> &std::path::Path {
        &self.netns
    }

    /// Removes the redirects from the pod's interfaces (their taps go with the VM). A
    /// namespace that is gone already (CNI tore it down) has nothing left to undo.
    pub async fn detach(&self) {
        if !self.netns.exists() {
            return;
        }
        let indexes = self.redirected.clone();
        let result = in_netns(&self.netns, move || {
            redirect::remove(&indexes);
            Ok(())
        })
        .await;
        if let Err(e) = result {
            tracing::debug!(netns = %self.netns.display(), error = %crate::chain(&e),
                "remove the tap redirects");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_request_carries_interfaces_and_routes() {
        let network = PodNetwork {
            interfaces: vec![PodInterface {
                name: "eth0".into(),
                index: 3,
                mac: "02:42:0a:00:00:05".into(),
                mtu: 1450,
                addresses: vec!["10.0.0.5/24".into()],
            }],
            routes: vec![PodRoute {
                destination: String::new(),
                gateway: "10.0.0.1".into(),
                device: "eth0".into(),
            }],
        };
        let req = network.to_request();
        assert_eq!(req.interfaces.len(), 1);
        assert_eq!(req.interfaces[0].mac, "02:42:0a:00:00:05");
        assert_eq!(req.interfaces[0].mtu, 1450);
        assert_eq!(req.interfaces[0].addresses, ["10.0.0.5/24"]);
        assert_eq!(req.routes[0].gateway, "10.0.0.1");
        assert_eq!(req.routes[0].device, "eth0");
    }
}
