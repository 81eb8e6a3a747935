//! A client for containerd's CRI streaming server: what kubelet (via the API server) does with
//! the URL that Exec, Attach and PortForward return.
//!
//! The server (a copy of kubelet's streaming server inside containerd) speaks SPDY/3.1 and
//! WebSocket. This client uses WebSocket with the `v4.channel.k8s.io` subprotocol: every
//! binary message starts with one byte naming a channel. For exec and attach the channels are
//! 0 stdin, 1 stdout, 2 stderr, 3 error (a JSON `metav1.Status` when the command ends) and
//! 4 resize (JSON `{"Width":w,"Height":h}`); v4 has no way to close stdin alone. For port
//! forwarding each requested port has a data channel (2i) and an error channel (2i+1), and the
//! first message on each carries the port as a little-endian u16.

use std::{net::TcpStream, time::Duration};

use anyhow::{bail, Context};
use tungstenite::{
    client::IntoClientRequest, http::HeaderValue, protocol::WebSocket, stream::MaybeTlsStream,
    Message,
};

/// The subprotocol requested from the streaming server.
pub const PROTOCOL: &str = "v4.channel.k8s.io";
/// Exec/attach channel numbers.
pub const STDIN: u8 = 0;
/// Output of the process.
pub const STDOUT: u8 = 1;
/// Error output of the process (absent with a terminal).
pub const STDERR: u8 = 2;
/// Where the final status of the command arrives.
pub const ERROR: u8 = 3;
/// Terminal size changes from the client.
pub const RESIZE: u8 = 4;

/// How long a read may block before the test gives up on the server.
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// How a remote command ended, from the error channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandStatus {
    /// Exit code 0.
    Success,
    /// A non-zero exit code.
    ExitCode(i32),
    /// Another failure (the server's message).
    Failure(String),
    /// The connection closed without a status.
    Unknown,
}

/// What a finished remote command wrote and how it ended.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Bytes of channel 1.
    pub stdout: Vec<u8>,
    /// Bytes of channel 2.
    pub stderr: Vec<u8>,
    /// From channel 3.
    pub status: CommandStatus,
}

/// An open exec or attach session.
pub struct RemoteCommand {
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
}

impl RemoteCommand {
    /// Opens the session at `url` (as returned by Exec or Attach).
    pub fn connect(url: &str) -> anyhow::Result<RemoteCommand> {
        Ok(RemoteCommand {
            socket: connect(url)?,
        })
    }

    /// Sends bytes to the process's stdin.
    pub fn write_stdin(&mut self, data: &[u8]) -> anyhow::Result<()> {
        self.send(STDIN, data)
    }

    /// Tells the terminal its new size.
    pub fn resize(&mut self, width: u16, height: u16) -> anyhow::Result<()> {
        let size = serde_json::json!({ "Width": width, "Height": height }).to_string();
        self.send(RESIZE, size.as_bytes())
    }

    /// The next message: its channel and bytes; `None` once the server closed the session.
    pub fn read_frame(&mut self) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
        read_frame(&mut self.socket)
    }

    /// Reads until `channel` has carried `needle` (for interactive sessions); what the
    /// channel carried so far.
    pub fn read_until(&mut self, channel: u8, needle: &str) -> anyhow::Result<Vec<u8>> {
        let mut seen = Vec::new();
        while !String::from_utf8_lossy(&seen).contains(needle) {
            match self.read_frame()? {
                Some((c, data)) if c == channel => seen.extend_from_slice(&data),
                Some(_) => {}
                None => bail!(
                    "session closed before {needle:?} on channel {channel}; got {:?}",
                    String::from_utf8_lossy(&seen)
                ),
            }
        }
        Ok(seen)
    }

    /// Reads everything until the server ends the session.
    pub fn finish(mut self) -> anyhow::Result<CommandOutput> {
        let mut output = CommandOutput {
            stdout: Vec::new(),
            stderr: Vec::new(),
            status: CommandStatus::Unknown,
        };
        while let Some((channel, data)) = self.read_frame()? {
            match channel {
                STDOUT => output.stdout.extend_from_slice(&data),
                STDERR => output.stderr.extend_from_slice(&data),
                ERROR if !data.is_empty() => output.status = parse_status(&data)?,
                _ => {}
            }
        }
        Ok(output)
    }

    fn send(&mut self, channel: u8, data: &[u8]) -> anyhow::Result<()> {
        let mut message = Vec::with_capacity(data.len() + 1);
        message.push(channel);
        message.extend_from_slice(data);
        self.socket
            .send(Message::Binary(message.into()))
            .context("send to the streaming server")
    }
}

/// Runs a whole exec or attach session: sends `stdin` (if any) and collects the output.
pub fn run(url: &str, stdin: &[u8]) -> anyhow::Result<CommandOutput> {
    let mut session = RemoteCommand::connect(url)?;
    if !stdin.is_empty() {
        session.write_stdin(stdin)?;
    }
    session.finish()
}

/// Forwards one connection to `port` of the pod through the PortForward URL `url`: sends
/// `request`, returns everything the pod answered until it closed the connection.
pub fn port_forward(url: &str, port: u16, request: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut socket = connect(url)?;
    let mut message = vec![0u8];
    message.extend_from_slice(request);
    socket
        .send(Message::Binary(message.into()))
        .context("send to the forwarded port")?;

    let (mut data, mut errors) = (Vec::new(), Vec::new());
    while let Some((channel, bytes)) = read_frame(&mut socket)? {
        match channel {
            0 => data.extend_from_slice(&bytes),
            1 => errors.extend_from_slice(&bytes),
            other => bail!("port-forward message on unexpected channel {other}"),
        }
    }
    // Each channel starts with the port it belongs to.
    let prefix = port.to_le_bytes();
    if !data.starts_with(&prefix) {
        bail!(
            "data channel does not start with port {port}: {:?}",
            &data[..data.len().min(2)]
        );
    }
    if errors.len() > 2 {
        bail!(
            "port-forward error: {}",
            String::from_utf8_lossy(&errors[2..])
        );
    }
    Ok(data.split_off(2))
}

fn connect(url: &str) -> anyhow::Result<WebSocket<MaybeTlsStream<TcpStream>>> {
    // The server is plain HTTP; WebSocket clients name it ws://.
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut request = ws_url
        .as_str()
        .into_client_request()
        .context("streaming URL")?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(PROTOCOL));
    let authority = request
        .uri()
        .authority()
        .context("streaming URL without host")?
        .to_string();
    let stream =
        TcpStream::connect(&authority).with_context(|| format!("connect to {authority}"))?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let (socket, response) = tungstenite::client::client(request, MaybeTlsStream::Plain(stream))
        .map_err(|e| anyhow::anyhow!("WebSocket handshake with {url}: {e}"))?;
    let protocol = response.headers().get("Sec-WebSocket-Protocol");
    if protocol.and_then(|p| p.to_str().ok()) != Some(PROTOCOL) {
        bail!("streaming server did not accept {PROTOCOL}: {protocol:?}");
    }
    Ok(socket)
}

fn read_frame(
    socket: &mut WebSocket<MaybeTlsStream<TcpStream>>,
) -> anyhow::Result<Option<(u8, Vec<u8>)>> {
    loop {
        let message = match socket.read() {
            Ok(message) => message,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Ok(None)
            }
            // The server may drop the TCP connection without a close handshake.
            Err(tungstenite::Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => return Ok(None),
            Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Ok(None)
            }
            Err(e) => return Err(e).context("read from the streaming server"),
        };
        match message {
            Message::Binary(bytes) => {
                let Some((&channel, data)) = bytes.split_first() else {
                    continue;
                };
                return Ok(Some((channel, data.to_vec())));
            }
            Message::Close(_) => return Ok(None),
            _ => continue,
        }
    }
}

/// Reads the `metav1.Status` JSON of the error channel.
fn parse_status(data: &[u8]) -> anyhow::Result<CommandStatus> {
    let status: serde_json::Value = serde_json::from_slice(data)
        .with_context(|| format!("status is not JSON: {:?}", String::from_utf8_lossy(data)))?;
    if status["status"] == "Success" {
        return Ok(CommandStatus::Success);
    }
    let exit_code = status["details"]["causes"].as_array().and_then(|causes| {
        causes
            .iter()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str())
            .and_then(|m| m.parse().ok())
    });
    Ok(match exit_code {
        Some(code) => CommandStatus::ExitCode(code),
        None => CommandStatus::Failure(status["message"].as_str().unwrap_or_default().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_of_the_error_channel() {
        let cases = [
            (
                "success",
                r#"{"metadata":{},"status":"Success"}"#,
                CommandStatus::Success,
            ),
            (
                "exit code",
                r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}"#,
                CommandStatus::ExitCode(42),
            ),
            (
                "other failure",
                r#"{"status":"Failure","message":"no such container"}"#,
                CommandStatus::Failure("no such container".into()),
            ),
        ];
        for (name, json, want) in cases {
            assert_eq!(parse_status(json.as_bytes()).unwrap(), want, "case {name}");
        }
        assert!(parse_status(b"not json").is_err());
    }
}
