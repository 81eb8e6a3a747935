#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};

use super::*;

/// One parsed entry: name, mode, rdev, data.
#[derive(Debug, PartialEq)]
struct Parsed {
    name: String,
    mode: u32,
    rdev: (u32, u32),
    data: Vec<u8>,
}

fn hex(bytes: &[u8]) -> u32 {
    u32::from_str_radix(std::str::from_utf8(bytes).unwrap(), 16).unwrap()
}

fn pad4(n: usize) -> usize {
    (n + 3) & !3
}

/// An independent reader of the format, to check the writer against.
fn parse(archive: &[u8]) -> Vec<Parsed> {
    let mut entries = Vec::new();
    let mut at = 0;
    loop {
        let head = &archive[at..at + 110];
        assert_eq!(&head[..6], b"070701", "magic at offset {at}");
        let field = |i: usize| hex(&head[6 + i * 8..14 + i * 8]);
        let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
        let name_start = at + 110;
        let name = std::str::from_utf8(&archive[name_start..name_start + namesize - 1]).unwrap();
        assert_eq!(
            archive[name_start + namesize - 1],
            0,
            "name is NUL-terminated"
        );
        let data_start = pad4(name_start + namesize);
        let data = archive[data_start..data_start + size].to_vec();
        at = pad4(data_start + size);
        if name == "TRAILER!!!" {
            assert_eq!(at, archive.len(), "nothing after the trailer");
            return entries;
        }
        entries.push(Parsed {
            name: name.to_string(),
            mode,
            rdev: (field(9), field(10)),
            data,
        });
    }
}

fn sample() -> Vec<u8> {
    let mut w = CpioWriter::new(Vec::new());
    w.file("/init", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
    w.file("lib/modules/6.1/kernel/a.ko", 0o644, &[1, 2, 3, 4, 5])
        .unwrap();
    w.file("lib/modules/6.1/kernel/b.ko", 0o644, &[]).unwrap();
    w.dir("/proc", 0o555).unwrap();
    w.symlink("bin/sh", "busybox").unwrap();
    w.char_device("dev/console", 0o600, 5, 1).unwrap();
    w.finish().unwrap()
}

#[test]
fn round_trips_through_an_independent_parser() {
    let entries = parse(&sample());
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "init",
            "lib",
            "lib/modules",
            "lib/modules/6.1",
            "lib/modules/6.1/kernel",
            "lib/modules/6.1/kernel/a.ko",
            "lib/modules/6.1/kernel/b.ko",
            "proc",
            "bin",
            "bin/sh",
            "dev",
            "dev/console",
        ],
        "parents come before children, each directory once"
    );
    let find = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
    assert_eq!(find("init").mode, 0o100755);
    assert_eq!(find("init").data, b"#!/bin/sh\necho hi\n");
    assert_eq!(find("lib/modules/6.1/kernel/a.ko").data, [1, 2, 3, 4, 5]);
    assert_eq!(find("proc").mode, 0o040555);
    assert_eq!(find("bin/sh").mode, 0o120777);
    assert_eq!(find("bin/sh").data, b"busybox");
    assert_eq!(find("dev/console").mode, 0o020600);
    assert_eq!(find("dev/console").rdev, (5, 1));
}

#[test]
fn is_reproducible() {
    assert_eq!(sample(), sample(), "same entries give the same bytes");
}

#[test]
fn gnu_cpio_reads_it() {
    let Ok(mut child) = Command::new("cpio")
        .args(["-t", "-v", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    else {
        eprintln!("SKIP gnu_cpio_reads_it: no cpio binary (apt-get install cpio)");
        return;
    };
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &sample()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio -t failed");
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(listing.contains("lib/modules/6.1/kernel/a.ko"), "{listing}");
    assert!(listing.contains("bin/sh -> busybox"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("crw") && l.contains("dev/console")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with(" init")),
        "{listing}"
    );
}
