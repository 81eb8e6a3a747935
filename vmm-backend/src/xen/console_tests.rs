#![allow(clippy::unwrap_used)]

use std::os::fd::AsFd;

use nix::pty::openpty;
use tokio::io::AsyncWriteExt;

use super::*;

#[test]
fn finds_the_marker_across_pieces() {
    let text = [
        b"[ 0.1] booting\n".as_slice(),
        AGENT_READY_MARKER,
        b"\x00\x00\x00\x10ttrpc",
    ]
    .concat();
    for split in [0, 5, 16, 20, 30, text.len() - 3] {
        let mut scanner = MarkerScanner::default();
        let first = scanner.feed(&text[..split]);
        let (before, after) = match first.after {
            // Whatever follows the piece with the marker is channel data too.
            Some(after) => (first.before.to_vec(), [after, &text[split..]].concat()),
            None => {
                let second = scanner.feed(&text[split..]);
                let mut before = first.before.to_vec();
                before.extend_from_slice(second.before);
                (
                    before,
                    second.after.expect("marker in second piece").to_vec(),
                )
            }
        };
        assert_eq!(after, b"\x00\x00\x00\x10ttrpc", "split at {split}");
        assert!(
            before.starts_with(b"[ 0.1] booting"),
            "split at {split}: {before:?}"
        );
    }
}

#[test]
fn near_misses_are_not_the_marker() {
    let mut scanner = MarkerScanner::default();
    let step = scanner.feed(b"\n[lightpod-agent: channel read\n[lightpod-agent: other]\n");
    assert_eq!(step.after, None);
    let step = scanner.feed(&AGENT_READY_MARKER[1..]);
    assert_eq!(step.after, Some(&[][..]), "a marker right after a newline");
}

/// A pty pair standing in for xenconsoled's: the test writes the guest's side on the master.
fn pty() -> (OwnedFd, PathBuf) {
    let pair = openpty(None, None).unwrap();
    let path = std::fs::read_link(format!("/proc/self/fd/{}", pair.slave.as_raw_fd())).unwrap();
    (pair.master, path)
}

#[tokio::test]
async fn boot_log_goes_to_the_file_and_the_channel_follows_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("console.log");
    let (master, path) = pty();
    let guest = [
        b"Linux version 6.1\r\nRun /init as init process\n".as_slice(),
        AGENT_READY_MARKER,
        b"frame",
    ]
    .concat();
    // xenconsoled's pty is raw before the guest writes; so is this one, once opened.
    let mut stream = ConsoleStream::open(&path).unwrap();
    nix::unistd::write(master.as_fd(), &guest).unwrap();
    stream
        .wait_for_agent(&path, &log, Duration::from_secs(5))
        .await
        .unwrap();
    let mut first = [0u8; 5];
    stream.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"frame", "bytes after the marker reach the channel");
    let boot = std::fs::read_to_string(&log).unwrap();
    assert!(boot.contains("Run /init"), "{boot:?}");
    assert!(!boot.contains("channel ready"), "{boot:?}");

    stream.write_all(b"\x00\x01\x02\r\n\x03").await.unwrap();
    let mut echoed = [0u8; 6];
    let mut master_file = std::fs::File::from(master);
    std::io::Read::read_exact(&mut master_file, &mut echoed).unwrap();
    assert_eq!(
        &echoed, b"\x00\x01\x02\r\n\x03",
        "raw mode: no byte is translated"
    );
}

#[tokio::test]
async fn a_console_without_marker_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let (master, path) = pty();
    let mut stream = ConsoleStream::open(&path).unwrap();
    nix::unistd::write(master.as_fd(), b"Kernel panic - not syncing\n").unwrap();
    let err = stream
        .wait_for_agent(&path, &dir.path().join("log"), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(err, ConsoleError::Timeout(_)), "{err}");
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert!(log.contains("Kernel panic"), "{log:?}");
}
