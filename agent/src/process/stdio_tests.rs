use std::{
    fs::File,
    io::{Read, Write},
    sync::Arc,
    thread,
};

use nix::{fcntl::OFlag, unistd::pipe2};

use super::*;

fn pipe() -> (OwnedFd, File) {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
    (r, File::from(w))
}

async fn read_all(out: &OutputBuffer, chunk: usize) -> Vec<u8> {
    let mut all = Vec::new();
    loop {
        let (data, eof) = out.read(chunk).await;
        assert!(data.len() <= chunk, "read returned more than asked");
        all.extend(data);
        if eof {
            return all;
        }
    }
}

#[tokio::test]
async fn eof_only_after_the_buffer_is_drained() {
    let out = OutputBuffer::new(16);
    out.push(b"abc");
    out.finish();
    assert_eq!(
        out.read(2).await,
        (b"ab".to_vec(), false),
        "data left: not eof yet"
    );
    assert_eq!(
        out.read(10).await,
        (b"c".to_vec(), true),
        "last bytes come with eof"
    );
    assert_eq!(out.read(10).await, (Vec::new(), true), "eof stays");
}

#[tokio::test]
async fn read_waits_for_data() {
    let out = Arc::new(OutputBuffer::new(16));
    let reader = tokio::spawn({
        let out = Arc::clone(&out);
        async move { out.read(16).await }
    });
    tokio::task::yield_now().await;
    assert!(!reader.is_finished(), "read returned before any data");
    out.push(b"late");
    assert_eq!(reader.await.expect("join"), (b"late".to_vec(), false));
}

#[tokio::test]
async fn a_full_buffer_stops_reading_and_loses_nothing() {
    // Far more than the buffer and the pipe hold: the writer is held back, not dropped.
    const TOTAL: usize = 1 << 20;
    let out = Arc::new(OutputBuffer::new(4096));
    let (r, mut w) = pipe();
    let (exited_tx, exited) = watch::channel(false);
    let writer = thread::spawn(move || {
        let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
        w.write_all(&data).expect("write");
        drop(w);
        // The process exits right after its last write.
        exited_tx.send_replace(true);
    });
    let pump_task = tokio::spawn({
        let out = Arc::clone(&out);
        async move { pump(r, &out, exited).await }
    });

    tokio::task::yield_now().await;
    assert!(out.room() <= 4096, "buffer over capacity");
    let all = read_all(&out, 1000).await;
    writer.join().expect("writer");
    pump_task.await.expect("pump");
    assert_eq!(all.len(), TOTAL, "bytes lost or duplicated");
    assert!(
        all.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8),
        "bytes out of order"
    );
}

#[tokio::test(start_paused = true)]
async fn eof_after_grace_when_a_descendant_holds_the_pipe() {
    let out = Arc::new(OutputBuffer::new(4096));
    let (r, mut w) = pipe();
    w.write_all(b"tail").expect("write");
    let (_exited_tx, exited) = watch::channel(true);
    let pump_task = tokio::spawn({
        let out = Arc::clone(&out);
        async move { pump(r, &out, exited).await }
    });
    assert_eq!(
        read_all(&out, 100).await,
        b"tail",
        "data before the grace period is kept"
    );
    pump_task.await.expect("pump");
    assert!(out.is_finished());
    // The write end is still open here, as a daemonized child would keep it.
    drop(w);
}

#[tokio::test]
async fn stdin_reports_a_closed_reader() {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).expect("pipe");
    let stdin = StdinPipe::new(w).expect("stdin");
    assert_eq!(stdin.write_all(b"hello").await.expect("write"), 5);
    let mut got = [0u8; 5];
    File::from(r).read_exact(&mut got).expect("read");
    assert_eq!(&got, b"hello");
    // The reading end is closed now: nothing more can be written, and that is not an error.
    assert_eq!(stdin.write_all(b"more").await.expect("write"), 0);
}
