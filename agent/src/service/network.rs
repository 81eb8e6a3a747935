//! `ConfigureNetwork` and the port-forward connection calls.

use lightpod_proto::agent as pb;

use crate::{
    convert::SpecError,
    error::AgentResult,
    network::{self, connections::Connections, InterfaceSpec, RouteSpec},
};

/// `ConfigureNetwork`.
pub async fn configure(req: &pb::ConfigureNetworkRequest) -> AgentResult<pb::Empty> {
    let interfaces: Vec<InterfaceSpec> = req
        .interfaces
        .iter()
        .map(|i| InterfaceSpec {
            mac: i.mac.clone(),
            name: i.name.clone(),
            mtu: i.mtu,
            addresses: i.addresses.clone(),
        })
        .collect();
    let routes: Vec<RouteSpec> = req
        .routes
        .iter()
        .map(|r| RouteSpec {
            destination: r.destination.clone(),
            gateway: r.gateway.clone(),
            device: r.device.clone(),
            source: r.source.clone(),
        })
        .collect();
    network::configure(&interfaces, &routes).await?;
    Ok(pb::Empty::new())
}

/// `OpenConnection`.
pub async fn open_connection(
    connections: &Connections,
    req: &pb::OpenConnectionRequest,
) -> AgentResult<pb::OpenConnectionResponse> {
    let port = u16::try_from(req.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(SpecError::OutOfRange {
            field: "port",
            value: i64::from(req.port),
        })?;
    let mut out = pb::OpenConnectionResponse::new();
    out.connection_id = connections.open(port).await?;
    Ok(out)
}

/// `ReadConnection`.
pub async fn read_connection(
    connections: &Connections,
    req: &pb::ReadConnectionRequest,
) -> AgentResult<pb::ReadConnectionResponse> {
    let (data, eof) = connections
        .read(req.connection_id, req.max_bytes as usize)
        .await?;
    let mut out = pb::ReadConnectionResponse::new();
    out.data = data;
    out.eof = eof;
    Ok(out)
}

/// `WriteConnection`.
pub async fn write_connection(
    connections: &Connections,
    req: &pb::WriteConnectionRequest,
) -> AgentResult<pb::Empty> {
    connections
        .write(req.connection_id, &req.data, req.close_write)
        .await?;
    Ok(pb::Empty::new())
}

/// `CloseConnection`.
pub fn close_connection(
    connections: &Connections,
    req: &pb::CloseConnectionRequest,
) -> AgentResult<pb::Empty> {
    connections.close(req.connection_id)?;
    Ok(pb::Empty::new())
}
