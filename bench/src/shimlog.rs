//! The lines of lightpod's shim in containerd's log, where containerd copies what its shims
//! write: logfmt (`time="…" level=info msg="sandbox ready" sandbox=… total_ms=…`).
//!
//! Two lines carry the phases of a lightpod start: `sandbox ready` (one per pod, with the
//! host-clock phases of the VM boot in ms since the shim began the sandbox, and two guest
//! uptimes) and `process started` (one per container process, its time is when the guest
//! had started it). Their `time` field places them on the benchmark's clock.

use std::{
    collections::HashMap,
    time::{Duration, SystemTime},
};

/// One logfmt line: its fields by key (the message is `msg`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogfmtLine {
    fields: HashMap<String, String>,
}

impl LogfmtLine {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }

    /// The value of `key` as a number of milliseconds.
    pub fn millis(&self, key: &str) -> Option<Duration> {
        self.get(key)?
            .parse::<u64>()
            .ok()
            .map(Duration::from_millis)
    }

    /// The `time` field.
    pub fn time(&self) -> Option<SystemTime> {
        parse_rfc3339(self.get("time")?)
    }
}

/// Parses one logfmt line: `key=value` pairs separated by spaces, a value bare or in double
/// quotes with `\"`, `\\`, `\n`, `\t` escapes. `None` when the line has no `msg`.
pub fn parse_logfmt(line: &str) -> Option<LogfmtLine> {
    let mut fields = HashMap::new();
    let mut chars = line.trim_end().chars().peekable();
    loop {
        while chars.next_if(|c| *c == ' ').is_some() {}
        let key: String =
            std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ' ')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next_if_eq(&'=').is_none() {
            fields.insert(key, String::new());
            continue;
        }
        let value = if chars.next_if_eq(&'"').is_some() {
            let mut value = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next() {
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        Some(other) => value.push(other),
                        None => break,
                    },
                    c => value.push(c),
                }
            }
            value
        } else {
            std::iter::from_fn(|| chars.next_if(|c| *c != ' ')).collect()
        };
        fields.insert(key, value);
    }
    fields.contains_key("msg").then_some(LogfmtLine { fields })
}

/// The `sandbox ready` line of one lightpod sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxReady {
    /// When the line was written: the sandbox was ready.
    pub time: SystemTime,
    /// The accelerator the guest ran under (`kvm`, `tcg`).
    pub accelerator: Option<String>,
    /// Host-clock phases since the shim began the sandbox, by field name without `_ms`.
    pub phases: HashMap<String, Duration>,
}

impl SandboxReady {
    /// When the shim began the sandbox: the line's time less its `total`.
    pub fn began(&self) -> Option<SystemTime> {
        self.time.checked_sub(*self.phases.get("total")?)
    }
}

/// What containerd's log says about lightpod's starts.
#[derive(Debug, Clone, Default)]
pub struct ShimLog {
    /// `sandbox ready`, by sandbox id.
    pub ready: HashMap<String, SandboxReady>,
    /// The time of the `process started` line of each container's init process.
    pub started: HashMap<String, SystemTime>,
}

impl ShimLog {
    /// Reads the lines of interest from the text of containerd's log; other lines, and lines
    /// cut or mixed by concurrent writers, are skipped.
    pub fn parse(text: &str) -> ShimLog {
        let mut log = ShimLog::default();
        for line in text.lines() {
            if !line.contains("msg=\"sandbox ready\"") && !line.contains("msg=\"process started\"")
            {
                continue;
            }
            let Some(fields) = parse_logfmt(line) else {
                continue;
            };
            let Some(time) = fields.time() else {
                continue;
            };
            match fields.get("msg") {
                Some("sandbox ready") => {
                    let Some(id) = fields.get("sandbox") else {
                        continue;
                    };
                    let phases = fields
                        .fields
                        .keys()
                        .filter_map(|k| {
                            let name = k.strip_suffix("_ms")?;
                            Some((name.to_string(), fields.millis(k)?))
                        })
                        .collect();
                    let ready = SandboxReady {
                        time,
                        accelerator: fields.get("accelerator").map(String::from),
                        phases,
                    };
                    log.ready.insert(id.to_string(), ready);
                }
                Some("process started") if fields.get("exec").unwrap_or_default().is_empty() => {
                    if let Some(id) = fields.get("container") {
                        log.started.insert(id.to_string(), time);
                    }
                }
                _ => {}
            }
        }
        log
    }
}

/// Parses an RFC 3339 time such as `2024-05-01T10:00:00.123456789Z` or with a `+02:00`
/// offset (fraction optional, up to nanoseconds).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut nanos: i64 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = fraction[..digits].parse::<i64>().ok()? * 10_i64.pow(9 - digits as u32);
        rest = &fraction[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (num_of(&rest[1..3])? * 3600 + num_of(&rest[4..6])? * 60)
        }
    };
    let days = days_from_civil(year, month as u32, day as u32);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos as u32))
}

fn num_of(text: &str) -> Option<i64> {
    text.bytes()
        .all(|c| c.is_ascii_digit())
        .then(|| text.parse().ok())?
}

/// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const READY: &str = "time=\"2024-05-01T10:00:05.500000000Z\" level=info msg=\"sandbox ready\" \
        sandbox=abc123 kernel=6.1.0-lightpod accelerator=tcg image_ready_ms=3 vm_start_ms=40 \
        vmm_spawned_ms=60 vmm_ready_ms=200 guest_started_ms=210 vm_created_ms=212 \
        agent_start_guest_ms=900 agent_ready_guest_ms=950 agent_ready_ms=1300 total_ms=1500";

    #[test]
    fn logfmt_values_are_bare_or_quoted() {
        let line = parse_logfmt(
            "time=\"2024-05-01T10:00:00Z\" level=info msg=\"a \\\"quoted\\\" \\\\ msg\\n\" k=v empty= flag",
        )
        .unwrap();
        assert_eq!(line.get("msg"), Some("a \"quoted\" \\ msg\n"));
        assert_eq!(line.get("level"), Some("info"));
        assert_eq!(line.get("k"), Some("v"));
        assert_eq!(line.get("empty"), Some(""));
        assert_eq!(line.get("flag"), Some(""));
        assert!(parse_logfmt("no message here=1").is_none());
        assert!(parse_logfmt("").is_none());
    }

    #[test]
    fn rfc3339_times_parse_with_fraction_and_offset() {
        let epoch = |secs: u64, nanos: u32| SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
        let cases = [
            ("1970-01-01T00:00:00Z", Some(epoch(0, 0))),
            (
                "2024-05-01T10:00:05.5Z",
                Some(epoch(1_714_557_605, 500_000_000)),
            ),
            (
                "2024-05-01T10:00:05.000000001Z",
                Some(epoch(1_714_557_605, 1)),
            ),
            ("2024-05-01T12:00:05+02:00", Some(epoch(1_714_557_605, 0))),
            ("2024-02-29T00:00:00Z", Some(epoch(1_709_164_800, 0))),
            ("2024-05-01T10:00:05", None),
            ("2024-05-01T10:00:05.Z", None),
            ("2024-13-01T10:00:05Z", None),
            ("yesterday", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
    }

    #[test]
    fn ready_and_started_lines_are_indexed_by_id() {
        let text = format!(
            "time=\"2024-05-01T10:00:00Z\" level=info msg=\"starting containerd\"\n\
             {READY}\n\
             time=\"2024-05-01T10:00:06.25Z\" level=info msg=\"process started\" container=c1 exec=\"\" guest_pid=7\n\
             time=\"2024-05-01T10:00:07Z\" level=info msg=\"process started\" container=c1 exec=e1 guest_pid=9\n\
             time=\"2024-05-01T10:00:0 garbled msg=\"sandbox ready\" sandbox=cut\n"
        );
        let log = ShimLog::parse(&text);
        let ready = &log.ready["abc123"];
        assert_eq!(ready.accelerator.as_deref(), Some("tcg"));
        assert_eq!(ready.phases["vmm_spawned"], Duration::from_millis(60));
        assert_eq!(
            ready.phases["agent_start_guest"],
            Duration::from_millis(900)
        );
        assert_eq!(ready.phases.len(), 10, "{:?}", ready.phases);
        let began = ready.began().unwrap();
        assert_eq!(
            ready.time.duration_since(began).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(log.ready.len(), 1, "the garbled line is skipped");
        let started = log.started["c1"];
        assert_eq!(
            started.duration_since(ready.time).unwrap(),
            Duration::from_millis(750),
            "the init process, not the exec"
        );
    }
}
