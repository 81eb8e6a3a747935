//! The CRI container log format, as containerd writes it at a container's log_path:
//! `<RFC 3339 time with nanoseconds> <stdout|stderr> <P|F> <content>` per line, where `P`
//! marks a partial line (the runtime split a long line, or the process wrote no newline yet)
//! and `F` the end of one. Partial pieces of a stream join the next pieces of the same stream.

use std::path::{Path, PathBuf};

/// Which output stream a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStream {
    /// The container's stdout.
    Stdout,
    /// The container's stderr.
    Stderr,
}

/// One complete line of a container's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The time of its first piece, as written (RFC 3339 with nanoseconds).
    pub time: String,
    /// The stream it was written to.
    pub stream: LogStream,
    /// The line without its newline, partial pieces joined.
    pub content: String,
    /// Whether the last piece was partial: the file ended before the line was finished.
    pub unfinished: bool,
}

/// A line of the file that is not in the CRI log format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}: {text:?}")]
pub struct LogParseError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: &'static str,
    /// The offending text.
    pub text: String,
}

/// Why [`read`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LogReadError {
    /// The file could not be read.
    #[error("read CRI log {}", path.display())]
    Read {
        /// The log file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not in the CRI log format.
    #[error("parse CRI log {}", path.display())]
    Parse {
        /// The log file.
        path: PathBuf,
        /// The offending line.
        #[source]
        source: LogParseError,
    },
}

/// Parses a whole CRI log, joining partial lines per stream.
///
/// # Errors
///
/// The first line that is not in the CRI log format.
pub fn parse(text: &str) -> Result<Vec<LogLine>, LogParseError> {
    let mut lines: Vec<LogLine> = Vec::new();
    // Index in `lines` of the unfinished line of each stream (stdout, stderr).
    let mut open: [Option<usize>; 2] = [None, None];
    for (number, raw) in text.lines().enumerate() {
        let error = |reason| LogParseError {
            line: number + 1,
            reason,
            text: raw.to_string(),
        };
        let mut fields = raw.splitn(4, ' ');
        let time = fields.next().unwrap_or_default();
        let stream = match fields.next() {
            Some("stdout") => LogStream::Stdout,
            Some("stderr") => LogStream::Stderr,
            _ => return Err(error("stream is neither stdout nor stderr")),
        };
        let partial = match fields.next() {
            Some("P") => true,
            Some("F") => false,
            _ => return Err(error("tag is neither P nor F")),
        };
        if !is_rfc3339_nano(time) {
            return Err(error("time is not RFC 3339"));
        }
        let content = fields.next().unwrap_or_default();

        let slot = &mut open[stream as usize];
        match *slot {
            Some(index) => lines[index].content.push_str(content),
            None => {
                lines.push(LogLine {
                    time: time.to_string(),
                    stream,
                    content: content.to_string(),
                    unfinished: false,
                });
                *slot = Some(lines.len() - 1);
            }
        }
        if let Some(index) = *slot {
            lines[index].unfinished = partial;
        }
        if !partial {
            *slot = None;
        }
    }
    Ok(lines)
}

/// Reads and parses the CRI log at `path`.
///
/// # Errors
///
/// Fails when the file cannot be read or is not in the CRI log format.
pub fn read(path: &Path) -> Result<Vec<LogLine>, LogReadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LogReadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text).map_err(|source| LogReadError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// The content of the complete lines of `stream`, in order.
pub fn contents(lines: &[LogLine], stream: LogStream) -> Vec<&str> {
    lines
        .iter()
        .filter(|l| l.stream == stream && !l.unfinished)
        .map(|l| l.content.as_str())
        .collect()
}

/// `2016-10-06T00:17:09.669794202Z` or with a `+hh:mm` offset; fraction optional.
fn is_rfc3339_nano(time: &str) -> bool {
    let b = time.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return false;
    }
    let mut rest = &time[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest.as_bytes() {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: &str = "2024-05-01T10:00:00.123456789Z";

    #[test]
    fn full_and_partial_lines_join_per_stream() {
        let text = format!(
            "{T} stdout P hel\n{T} stderr F oops\n{T} stdout P lo \n{T} stdout F world\n\
             {T} stdout F \n{T} stderr P cut"
        );
        let lines = parse(&text).unwrap();
        assert_eq!(contents(&lines, LogStream::Stdout), ["hello world", ""]);
        assert_eq!(contents(&lines, LogStream::Stderr), ["oops"]);
        let last = lines.last().unwrap();
        assert!(
            last.unfinished,
            "a trailing P piece is an unfinished line: {last:?}"
        );
        assert_eq!(last.content, "cut");
    }

    #[test]
    fn malformed_lines_are_rejected_with_their_number() {
        let cases = [
            (
                "no stream",
                format!("{T} stdin F x"),
                "stream is neither stdout nor stderr",
            ),
            (
                "bad tag",
                format!("{T} stdout X x"),
                "tag is neither P nor F",
            ),
            (
                "bad time",
                "2024-05-01 stdout F x".to_string(),
                "time is not RFC 3339",
            ),
            (
                "long fraction",
                "2024-05-01T10:00:00.1234567890Z stdout F x".into(),
                "time is not RFC 3339",
            ),
        ];
        for (name, text, reason) in cases {
            let input = format!("{T} stdout F ok\n{text}");
            let err = parse(&input).expect_err(name);
            assert_eq!((err.line, err.reason), (2, reason), "case {name}");
        }
    }

    #[test]
    fn times_with_offsets_or_without_fraction_are_accepted() {
        for time in ["2024-05-01T10:00:00Z", "2024-05-01T10:00:00.5+02:00", T] {
            assert!(is_rfc3339_nano(time), "{time}");
        }
    }
}
