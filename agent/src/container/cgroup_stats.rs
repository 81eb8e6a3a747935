//! Parsing of cgroup v2 interface files (Documentation/admin-guide/cgroup-v2.rst, "Interface
//! Files"): flat keyed files such as `cpu.stat` and single values such as `memory.max`.

/// Figures of one cgroup, as `ContainerStats` reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// `cpu.stat usage_usec`, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// `cpu.stat user_usec`, in nanoseconds.
    pub cpu_user_ns: u64,
    /// `cpu.stat system_usec`, in nanoseconds.
    pub cpu_system_ns: u64,
    /// `memory.current`.
    pub memory_usage: u64,
    /// `memory.max`; 0 for no limit.
    pub memory_limit: u64,
    /// Usage minus inactive file pages.
    pub memory_working_set: u64,
    /// `memory.stat anon`.
    pub memory_rss: u64,
    /// `memory.stat file`.
    pub memory_cache: u64,
    /// `pids.current`.
    pub pids_current: u64,
    /// `pids.max`; 0 for no limit.
    pub pids_limit: u64,
    /// `memory.events oom_kill`.
    pub oom_kills: u64,
}

/// Reads `key value` lines; lines that do not parse are skipped.
pub fn flat_keyed(text: &str) -> impl Iterator<Item = (&str, u64)> {
    text.lines().filter_map(|line| {
        let (key, value) = line.split_once(' ')?;
        Some((key, value.trim().parse().ok()?))
    })
}

/// The value of `key` in a flat keyed file, 0 when absent.
pub fn keyed_value(text: &str, key: &str) -> u64 {
    flat_keyed(text)
        .find(|(k, _)| *k == key)
        .map_or(0, |(_, v)| v)
}

/// A limit file (`memory.max`, `pids.max`): a number, or `max` for none (returned as 0).
pub fn limit(text: &str) -> Option<u64> {
    match text.trim() {
        "max" => Some(0),
        value => value.parse().ok(),
    }
}

/// Builds the stats from the contents of the interface files.
pub struct StatFiles<'a> {
    /// `cpu.stat`.
    pub cpu_stat: &'a str,
    /// `memory.current`.
    pub memory_current: &'a str,
    /// `memory.max`.
    pub memory_max: &'a str,
    /// `memory.stat`.
    pub memory_stat: &'a str,
    /// `memory.events`.
    pub memory_events: &'a str,
    /// `pids.current`.
    pub pids_current: &'a str,
    /// `pids.max`.
    pub pids_max: &'a str,
}

impl StatFiles<'_> {
    /// Parses every file; missing or malformed values count as 0.
    pub fn parse(&self) -> CgroupStats {
        let usage = self.memory_current.trim().parse().unwrap_or(0);
        let inactive_file = keyed_value(self.memory_stat, "inactive_file");
        CgroupStats {
            cpu_usage_ns: keyed_value(self.cpu_stat, "usage_usec").saturating_mul(1000),
            cpu_user_ns: keyed_value(self.cpu_stat, "user_usec").saturating_mul(1000),
            cpu_system_ns: keyed_value(self.cpu_stat, "system_usec").saturating_mul(1000),
            memory_usage: usage,
            memory_limit: limit(self.memory_max).unwrap_or(0),
            memory_working_set: usage.saturating_sub(inactive_file),
            memory_rss: keyed_value(self.memory_stat, "anon"),
            memory_cache: keyed_value(self.memory_stat, "file"),
            pids_current: self.pids_current.trim().parse().unwrap_or(0),
            pids_limit: limit(self.pids_max).unwrap_or(0),
            oom_kills: keyed_value(self.memory_events, "oom_kill"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU_STAT: &str = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n\
        nr_periods 0\nnr_throttled 0\nthrottled_usec 0\n";
    const MEMORY_STAT: &str = "anon 4096\nfile 8192\nkernel 100\nactive_file 4096\n\
        inactive_file 2048\nbogus line here\n";
    const MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";

    #[test]
    fn parses_a_full_set() {
        let stats = StatFiles {
            cpu_stat: CPU_STAT,
            memory_current: "20480\n",
            memory_max: "67108864\n",
            memory_stat: MEMORY_STAT,
            memory_events: MEMORY_EVENTS,
            pids_current: "3\n",
            pids_max: "max\n",
        }
        .parse();
        assert_eq!(
            stats,
            CgroupStats {
                cpu_usage_ns: 1_500_000,
                cpu_user_ns: 1_000_000,
                cpu_system_ns: 500_000,
                memory_usage: 20480,
                memory_limit: 64 << 20,
                memory_working_set: 20480 - 2048,
                memory_rss: 4096,
                memory_cache: 8192,
                pids_current: 3,
                pids_limit: 0,
                oom_kills: 1,
            }
        );
    }

    #[test]
    fn missing_files_read_as_zero() {
        let empty = StatFiles {
            cpu_stat: "",
            memory_current: "",
            memory_max: "",
            memory_stat: "",
            memory_events: "",
            pids_current: "",
            pids_max: "",
        };
        assert_eq!(empty.parse(), CgroupStats::default());
    }

    #[test]
    fn limits_and_keys() {
        let cases = [("max\n", Some(0)), ("100\n", Some(100)), ("x", None)];
        for (text, want) in cases {
            assert_eq!(limit(text), want, "{text:?}");
        }
        assert_eq!(
            keyed_value(MEMORY_EVENTS, "oom_kill"),
            1,
            "oom_kill, not oom"
        );
        assert_eq!(keyed_value(MEMORY_EVENTS, "oom"), 2);
        assert_eq!(keyed_value(MEMORY_EVENTS, "absent"), 0);
        assert_eq!(
            flat_keyed(MEMORY_STAT).count(),
            5,
            "malformed lines skipped"
        );
    }

    #[test]
    fn working_set_never_underflows() {
        let stats = StatFiles {
            cpu_stat: "",
            memory_current: "10",
            memory_max: "max",
            memory_stat: "inactive_file 50",
            memory_events: "",
            pids_current: "",
            pids_max: "",
        }
        .parse();
        assert_eq!(stats.memory_working_set, 0);
    }
}
