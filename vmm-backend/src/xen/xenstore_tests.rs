#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use tokio::net::UnixListener;

use super::*;

/// A xenstored stand-in that answers reads and directory listings from a map, and counts
/// the requests it served.
async fn fake_xenstored(
    socket: &Path,
    nodes: HashMap<&'static str, &'static str>,
) -> tokio::task::JoinHandle<usize> {
    let listener = UnixListener::bind(socket).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut served = 0;
        loop {
            let mut header = [0u8; 16];
            if stream.read_exact(&mut header).await.is_err() {
                return served;
            }
            let field = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().unwrap());
            let mut payload = vec![0u8; field(12) as usize];
            stream.read_exact(&mut payload).await.unwrap();
            let key = String::from_utf8(payload[..payload.len() - 1].to_vec()).unwrap();
            let (kind, body): (u32, Vec<u8>) = match (field(0), nodes.get(key.as_str())) {
                (XS_READ, Some(value)) => (XS_READ, value.as_bytes().to_vec()),
                (XS_DIRECTORY, Some(value)) => (
                    XS_DIRECTORY,
                    value
                        .split(' ')
                        .flat_map(|n| [n.as_bytes(), b"\0"].concat())
                        .collect(),
                ),
                (_, None) if key.starts_with("/secret") => (XS_ERROR, b"EACCES\0".to_vec()),
                (_, None) => (XS_ERROR, b"ENOENT\0".to_vec()),
                _ => unreachable!(),
            };
            let mut reply = Vec::new();
            for f in [kind, field(4), 0, body.len() as u32] {
                reply.extend_from_slice(&f.to_le_bytes());
            }
            reply.extend_from_slice(&body);
            stream.write_all(&reply).await.unwrap();
            served += 1;
        }
    })
}

#[tokio::test]
async fn reads_lists_and_reports_missing_and_refused_keys() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let nodes = HashMap::from([
        ("/local/domain/7/console/tty", "/dev/pts/3"),
        ("/local/domain/7/device/vbd", "51728 51744"),
    ]);
    let server = fake_xenstored(&socket, nodes).await;
    let mut xs = Xenstore::connect(&socket).await.unwrap();

    assert_eq!(
        xs.read("/local/domain/7/console/tty").await.unwrap(),
        Some("/dev/pts/3".to_string())
    );
    assert_eq!(xs.read("/local/domain/7/name").await.unwrap(), None);
    assert_eq!(
        xs.directory("/local/domain/7/device/vbd").await.unwrap(),
        Some(vec!["51728".to_string(), "51744".to_string()])
    );
    match xs.read("/secret/key").await {
        Err(XenstoreError::Refused { errno, .. }) => assert_eq!(errno, "EACCES"),
        other => panic!("{other:?}"),
    }
    drop(xs);
    assert_eq!(server.await.unwrap(), 4, "one round trip per request");
}

#[tokio::test]
async fn waits_for_a_key_and_gives_up_at_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("socket");
    let nodes = HashMap::from([("/present", "yes")]);
    let _server = fake_xenstored(&socket, nodes).await;
    let mut xs = Xenstore::connect(&socket).await.unwrap();
    let step = Duration::from_millis(5);
    assert_eq!(
        xs.wait_for("/present", step, Duration::ZERO).await.unwrap(),
        Some("yes".to_string())
    );
    assert_eq!(
        xs.wait_for("/absent", step, Duration::from_millis(30))
            .await
            .unwrap(),
        None
    );
}

#[test]
fn requests_follow_the_wire_format() {
    let message = encode(XS_READ, 9, "/a");
    assert_eq!(
        message,
        [2, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, b'/', b'a', 0]
    );
}
