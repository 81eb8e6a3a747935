//! Logging of the shim server: logfmt lines, in containerd's style, into the `log` FIFO that
//! containerd opens in the bundle and copies into its own log.
//!
//! The FIFO is opened read-write and non-blocking: the shim then never gets `EPIPE` when
//! containerd goes away (it holds a reader itself), and once the pipe is full a line is
//! dropped instead of blocking the shim. Lines written while containerd was away are read
//! when it comes back and reopens the FIFO.

use std::{
    fmt::Write as _,
    fs::File,
    io::Write as _,
    os::unix::fs::OpenOptionsExt,
    path::Path,
    sync::{Arc, Mutex},
};

use tracing::{
    field::{Field, Visit},
    Event, Level, Subscriber,
};
use tracing_subscriber::{
    filter::LevelFilter,
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields, MakeWriter},
    registry::LookupSpan,
};

/// Environment variable with the shim's log level (`error` … `trace`).
const LEVEL_ENV: &str = "LIGHTPOD_SHIM_LOG";

/// Sends the shim's `tracing` output to `fifo` (containerd's `log` FIFO in the bundle).
/// Without the FIFO (a shim started by hand) it logs to stderr. `debug` is containerd's
/// `-debug` flag.
pub fn init(fifo: &Path, debug: bool) {
    let level = std::env::var(LEVEL_ENV)
        .ok()
        .and_then(|v| v.parse::<LevelFilter>().ok())
        .unwrap_or(if debug {
            LevelFilter::DEBUG
        } else {
            LevelFilter::INFO
        });
    let sink = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(fifo)
        .ok();
    let writer = LogSink(Arc::new(Mutex::new(sink)));
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .event_format(Logfmt)
        .with_writer(writer)
        .try_init();
}

/// Where lines go: the FIFO, or stderr.
#[derive(Clone)]
struct LogSink(Arc<Mutex<Option<File>>>);

/// One line, written whole when dropped.
struct LogLine {
    sink: LogSink,
    buffer: Vec<u8>,
}

impl std::io::Write for LogLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let mut sink = self.sink.0.lock().unwrap_or_else(|p| p.into_inner());
        // A full pipe (EAGAIN) or a failed write drops the line: logging never stops the shim.
        match sink.as_mut() {
            Some(file) => {
                let _ = file.write_all(&self.buffer);
            }
            None => {
                let _ = std::io::stderr().write_all(&self.buffer);
            }
        }
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            sink: self.clone(),
            buffer: Vec::with_capacity(256),
        }
    }
}

/// `time="…" level=info msg="…" key=value …`, as containerd (logrus) writes its own lines.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = match *event.metadata().level() {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        writeln!(
            writer,
            "time=\"{}\" level={level} msg={}{}",
            now_rfc3339(),
            quote(&fields.message),
            fields.pairs
        )
    }
}

/// The message and the other fields of an event, the latter as ` key=value` text.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            let _ = write!(
                self.pairs,
                " {}={}",
                field.name(),
                quote(&format!("{value:?}"))
            );
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            let _ = write!(self.pairs, " {}={}", field.name(), quote(value));
        }
    }
}

/// A logfmt value: bare when it is a plain word, else double-quoted with escapes.
fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@+".contains(c));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The current UTC time as RFC 3339 with nanoseconds, as logrus writes it.
fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_nanos()
    )
}

/// Year, month and day of a count of days since 1970-01-01 (the proleptic Gregorian
/// calendar; the algorithm of H. Hinnant's "chrono-compatible low-level date algorithms").
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_only_when_needed() {
        let cases = [
            ("abc-1.2", "abc-1.2"),
            ("", "\"\""),
            ("two words", "\"two words\""),
            ("say \"hi\"\n", "\"say \\\"hi\\\"\\n\""),
        ];
        for (value, expected) in cases {
            assert_eq!(quote(value), expected, "{value:?}");
        }
    }

    #[test]
    fn days_map_to_calendar_dates() {
        let cases = [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (20_791, (2026, 12, 4)),
        ];
        for (days, date) in cases {
            assert_eq!(civil_from_days(days), date, "day {days}");
        }
    }

    #[test]
    fn a_full_fifo_drops_lines_instead_of_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("log");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .expect("open the FIFO without a reader");
        let sink = LogSink(Arc::new(Mutex::new(Some(file))));
        // Far more than a pipe holds; every write must return.
        for _ in 0..2000 {
            let mut line = sink.make_writer();
            line.write_all(&[b'x'; 200]).expect("buffered");
        }
    }
}
