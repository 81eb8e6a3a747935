//! Port forwarding into the guest: containerd's CRI `PortForward` dials `localhost:<port>`
//! inside the pod's network namespace; a `REDIRECT` rule there sends that connection to a
//! listener of the sandbox, which relays it to `127.0.0.1:<port>` in the guest through the
//! agent's connection calls.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener as StdListener},
    path::Path,
    process::Command,
    time::Duration,
};

use lightpod_proto::agent as pb;
use nix::sys::socket::{getsockopt, sockopt::OriginalDst};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use super::{error::NetworkError, netns::in_netns};
use crate::{agent::AgentClient, error::chain};

/// Bytes one relay step moves.
const CHUNK: usize = 64 * 1024;

/// How long the other direction may finish after the guest closed its side.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The forwarder of one pod: its listener in the pod's namespace and the redirect to it.
#[derive(Debug)]
pub struct PortForwarder {
    port: u16,
    accept: JoinHandle<()>,
}

/// The iptables arguments of the redirect to `port`; `action` is `-A` or `-D`.
fn redirect_rule(action: &str, port: u16) -> Vec<String> {
    [
        "-w",
        "-t",
        "nat",
        action,
        "OUTPUT",
        "-p",
        "tcp",
        "-d",
        "127.0.0.1/32",
        "-m",
        "comment",
        "--comment",
        "lightpod port-forward",
        "-j",
        "REDIRECT",
        "--to-ports",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([port.to_string()])
    .collect()
}

/// Runs iptables with `args` in the calling thread's network namespace.
fn iptables(args: &[String]) -> Result<(), NetworkError> {
    let fail = |detail: String| NetworkError::Iptables {
        command: format!("iptables {}", args.join(" ")),
        detail,
    };
    let out = Command::new("iptables")
        .args(args)
        .output()
        .map_err(|e| fail(format!("{e} (apt-get install iptables)")))?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}

impl PortForwarder {
    /// Starts forwarding the loopback TCP connections of the namespace at `netns` to the
    /// guest behind `agent`.
    ///
    /// # Errors
    ///
    /// The namespace cannot be entered, the listener cannot be bound, or iptables failed.
    pub async fn start(
        netns: &Path,
        agent: AgentClient,
        sandbox: &str,
    ) -> Result<PortForwarder, NetworkError> {
        let listener = in_netns(netns, || {
            let listener = StdListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .map_err(NetworkError::Listen)?;
            listener
                .set_nonblocking(true)
                .map_err(NetworkError::Listen)?;
            let port = listener.local_addr().map_err(NetworkError::Listen)?.port();
            iptables(&redirect_rule("-A", port))?;
            Ok(listener)
        })
        .await
        .map_err(|e| e.in_namespace(netns))?;
        let port = listener.local_addr().map_err(NetworkError::Listen)?.port();
        let listener = TcpListener::from_std(listener).map_err(NetworkError::Listen)?;
        let sandbox = sandbox.to_string();
        let accept = tokio::spawn(async move { accept_loop(listener, agent, sandbox).await });
        Ok(PortForwarder { port, accept })
    }

    /// Stops accepting and removes the redirect, if the namespace is still there.
    pub async fn stop(self, netns: &Path) {
        self.accept.abort();
        if !netns.exists() {
            return;
        }
        let rule = redirect_rule("-D", self.port);
        if let Err(e) = in_netns(netns, move || iptables(&rule)).await {
            tracing::debug!(netns = %netns.display(), error = %chain(&e),
                "remove the port-forward redirect");
        }
    }
}

async fn accept_loop(listener: TcpListener, agent: AgentClient, sandbox: String) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(sandbox = %sandbox, error = %e, "accept a port-forward connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let port = match getsockopt(&stream, OriginalDst) {
            Ok(addr) => u16::from_be(addr.sin_port),
            Err(e) => {
                tracing::warn!(sandbox = %sandbox, error = %e,
                    "a port-forward connection without an original destination");
                continue;
            }
        };
        let (agent, sandbox) = (agent.clone(), sandbox.clone());
        tokio::spawn(async move {
            if let Err(e) = relay(&agent, stream, port).await {
                tracing::debug!(sandbox = %sandbox, port, error = %e, "port-forward ended");
            }
        });
    }
}

/// Relays one connection to `127.0.0.1:port` in the guest until both sides are done.
async fn relay(agent: &AgentClient, stream: TcpStream, port: u16) -> Result<(), String> {
    let mut open = pb::OpenConnectionRequest::new();
    open.port = u32::from(port);
    let id = agent
        .open_connection(&open)
        .await
        .map_err(|e| chain(&e))?
        .connection_id;
    tracing::debug!(port, connection = id, "port-forward connection opened");
    let (mut from_host, mut to_host) = stream.into_split();

    let upstream = async {
        let mut buffer = vec![0u8; CHUNK];
        loop {
            let n = from_host
                .read(&mut buffer)
                .await
                .map_err(|e| e.to_string())?;
            let mut write = pb::WriteConnectionRequest::new();
            write.connection_id = id;
            write.data = buffer[..n].to_vec();
            write.close_write = n == 0;
            agent
                .write_connection(&write)
                .await
                .map_err(|e| chain(&e))?;
            if n == 0 {
                return Ok::<(), String>(());
            }
        }
    };
    let downstream = async {
        loop {
            let mut read = pb::ReadConnectionRequest::new();
            read.connection_id = id;
            read.max_bytes = CHUNK as u32;
            let chunk = agent.read_connection(&read).await.map_err(|e| chain(&e))?;
            if !chunk.data.is_empty() {
                to_host
                    .write_all(&chunk.data)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if chunk.eof {
                let _ = to_host.shutdown().await;
                return Ok::<(), String>(());
            }
        }
    };
    tokio::pin!(upstream, downstream);
    let result = tokio::select! {
        up = &mut upstream => match up {
            // The host finished sending: the guest's answer may still be coming.
            Ok(()) => downstream.await,
            Err(e) => Err(e),
        },
        down = &mut downstream => {
            let _ = tokio::time::timeout(CLOSE_GRACE, &mut upstream).await;
            down
        }
    };
    let mut close = pb::CloseConnectionRequest::new();
    close.connection_id = id;
    if let Err(e) = agent.close_connection(&close).await {
        tracing::debug!(connection = id, error = %chain(&e), "close a port-forward connection");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_redirects_loopback_tcp_to_the_listener() {
        let rule = redirect_rule("-A", 40123).join(" ");
        assert_eq!(
            rule,
            "-w -t nat -A OUTPUT -p tcp -d 127.0.0.1/32 -m comment --comment lightpod \
             port-forward -j REDIRECT --to-ports 40123"
        );
        assert!(redirect_rule("-D", 1).contains(&"-D".to_string()));
    }
}
