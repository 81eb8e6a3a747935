//! Joining a pod interface and a tap device with tc: each one's ingress is redirected to
//! the other's egress (`tc filter … u32 match u8 0 0 action mirred egress redirect`), so
//! frames pass between the pod network and the guest untouched, whatever their protocol.

use futures_util::TryStreamExt;
use rtnetlink::{
    packet_route::{link::LinkAttribute, tc::TcHandle},
    Handle, LinkUnspec,
};

use super::{
    error::{request, NetworkError},
    netns::with_netlink,
    tap, PodInterface, PodTap,
};

/// Parent handle of filters on the ingress qdisc (`ffff:`).
const INGRESS_PARENT: u32 = 0xffff_0000;

/// Every ethernet protocol (`ETH_P_ALL`), as `tc filter … protocol all`; the kernel takes
/// the protocol in network byte order.
const ETH_P_ALL: u16 = 0x0003_u16.to_be();

/// Creates a tap per interface in the calling thread's namespace and joins each to its
/// interface. On error, what was made is removed again.
pub(super) fn join_taps(interfaces: &[PodInterface]) -> Result<Vec<PodTap>, NetworkError> {
    let mut taps = Vec::new();
    for iface in interfaces {
        let tap_name = tap::name_for(iface.index);
        let fd = match tap::create(&tap_name) {
            Ok(fd) => fd,
            Err(e) => {
                remove(
                    &taps
                        .iter()
                        .map(|t: &PodTap| t.interface.index)
                        .collect::<Vec<_>>(),
                );
                return Err(e);
            }
        };
        taps.push(PodTap {
            interface: iface.clone(),
            tap_name,
            fd,
        });
    }
    let joined = with_netlink(|handle| async move {
        for tap in &taps {
            join(&handle, &tap.interface, &tap.tap_name).await?;
        }
        Ok(taps)
    });
    if joined.is_err() {
        remove(&interfaces.iter().map(|i| i.index).collect::<Vec<_>>());
    }
    joined
}

async fn join(handle: &Handle, iface: &PodInterface, tap_name: &str) -> Result<(), NetworkError> {
    let tap_index = index_of(handle, tap_name).await?;
    handle
        .link()
        .set(
            LinkUnspec::new_with_index(tap_index)
                .mtu(iface.mtu)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(request(format!("bring {tap_name} up")))?;
    for (from, to, from_name) in [
        (iface.index, tap_index, iface.name.as_str()),
        (tap_index, iface.index, tap_name),
    ] {
        handle
            .qdisc()
            .add(from as i32)
            .ingress()
            .execute()
            .await
            .map_err(request(format!("add the ingress qdisc of {from_name}")))?;
        handle
            .traffic_filter(from as i32)
            .add()
            .parent(INGRESS_PARENT)
            .protocol(ETH_P_ALL)
            .redirect(to)
            .map_err(request(format!("build the redirect of {from_name}")))?
            .execute()
            .await
            .map_err(request(format!("redirect the ingress of {from_name}")))?;
    }
    tracing::debug!(interface = %iface.name, tap = tap_name, "tap joined to the pod interface");
    Ok(())
}

async fn index_of(handle: &Handle, name: &str) -> Result<u32, NetworkError> {
    let links: Vec<_> = handle
        .link()
        .get()
        .match_name(name.to_string())
        .execute()
        .try_collect()
        .await
        .map_err(request(format!("find {name}")))?;
    links
        .iter()
        .find(|l| {
            l.attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name))
        })
        .map(|l| l.header.index)
        .ok_or_else(|| NetworkError::CreateTap {
            name: name.to_string(),
            source: std::io::ErrorKind::NotFound.into(),
        })
}

/// Deletes the ingress qdisc (and with it the redirect) of each interface index; an
/// interface or qdisc that is gone already is fine.
pub(super) fn remove(indexes: &[u32]) {
    let indexes = indexes.to_vec();
    let result = with_netlink(|handle| async move {
        for index in indexes {
            let mut delete = handle.qdisc().del(index as i32);
            let message = delete.message_mut();
            message.header.parent = TcHandle::INGRESS;
            message.header.handle = TcHandle::from(INGRESS_PARENT);
            if let Err(e) = delete.execute().await {
                tracing::debug!(index, error = %e, "remove an ingress qdisc");
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        tracing::debug!(error = %crate::chain(&e), "remove the tap redirects");
    }
}
