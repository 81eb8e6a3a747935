//! What the host's `/proc` says about processes and memory: the process tree, the
//! proportional set size (PSS) of a process from `/proc/<pid>/smaps_rollup`, CPU time from
//! `/proc/<pid>/stat`, and `/proc/meminfo` and `/proc/stat` for the whole host.
//!
//! The parsers take the text of a file, so the tests feed them samples; the readers around
//! them only open the file. A process that exits while it is read is simply left out.

use std::{collections::HashMap, path::Path};

use serde::Serialize;

/// One process of a [`ProcessTable`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// Its command name (`comm`, at most 15 bytes).
    pub comm: String,
    /// Its arguments (empty for kernel threads and zombies).
    pub args: Vec<String>,
}

/// A snapshot of every process on the host, with its parent.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    processes: HashMap<u32, ProcessInfo>,
}

impl ProcessTable {
    /// Reads `/proc` now.
    pub fn read() -> ProcessTable {
        let entries = match std::fs::read_dir("/proc") {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "cannot list /proc");
                return ProcessTable::default();
            }
        };
        let processes = entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let stat = parse_stat(&stat)?;
                let args = std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|raw| split_cmdline(&raw))
                    .unwrap_or_default();
                Some(ProcessInfo {
                    pid,
                    ppid: stat.ppid,
                    comm: stat.comm,
                    args,
                })
            });
        ProcessTable::from_processes(processes)
    }

    /// A table of the given processes (for tests, and for [`ProcessTable::read`]).
    pub fn from_processes(processes: impl IntoIterator<Item = ProcessInfo>) -> ProcessTable {
        ProcessTable {
            processes: processes.into_iter().map(|p| (p.pid, p)).collect(),
        }
    }

    /// Every pid of the table.
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.processes.keys().copied()
    }

    /// The process `pid`, if it was running.
    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.processes.get(&pid)
    }

    /// The containerd shim serving the task `id` of the containerd at `address`: shims carry
    /// `-id <id>` and `-address <socket>` in their arguments (shim v2's command line).
    pub fn shim_of(&self, id: &str, address: &Path) -> Option<u32> {
        let address = address.to_string_lossy();
        let mut found: Vec<u32> = self
            .processes
            .values()
            .filter(|p| p.comm.starts_with("containerd-shim"))
            .filter(|p| flag_value(&p.args, "-id") == Some(id))
            .filter(|p| flag_value(&p.args, "-address") == Some(address.as_ref()))
            // `… start` is the short-lived launcher; the daemon it spawns has no verb.
            .filter(|p| p.args.last().map(String::as_str) != Some("start"))
            .map(|p| p.pid)
            .collect();
        found.sort_unstable();
        found.first().copied()
    }

    /// `pid` and all its descendants, `pid` first, then breadth first.
    pub fn subtree(&self, pid: u32) -> Vec<u32> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for p in self.processes.values() {
            children.entry(p.ppid).or_default().push(p.pid);
        }
        for list in children.values_mut() {
            list.sort_unstable();
        }
        if !self.processes.contains_key(&pid) {
            return Vec::new();
        }
        let mut order = vec![pid];
        let mut next = 0;
        while next < order.len() {
            if let Some(kids) = children.get(&order[next]) {
                // A pid is a child of exactly one parent, so the walk meets each once; the
                // check guards against a table read while pids were reused.
                for kid in kids {
                    if !order.contains(kid) {
                        order.push(*kid);
                    }
                }
            }
            next += 1;
        }
        order
    }
}

/// The fields of `/proc/<pid>/stat` the benchmark uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    /// The command name, without its parentheses.
    pub comm: String,
    /// The parent's pid.
    pub ppid: u32,
    /// CPU time in user mode, in clock ticks.
    pub utime: u64,
    /// CPU time in kernel mode, in clock ticks.
    pub stime: u64,
}

/// Parses `/proc/<pid>/stat` (proc(5)): the command name sits in parentheses and may hold
/// spaces and parentheses itself, so the fields after it are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    // After ")": state(3) ppid(4) … utime(14) stime(15); index 0 is the state.
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        comm,
        ppid: u32::try_from(field(4)?).ok()?,
        utime: field(14)?,
        stime: field(15)?,
    })
}

/// The memory of one process from `/proc/<pid>/smaps_rollup`, in KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Resident set size.
    pub rss_kib: u64,
    /// Proportional set size: pages shared by k processes count 1/k to each.
    pub pss_kib: u64,
    /// The anonymous part of the PSS (heap, stacks, private guest RAM).
    pub pss_anon_kib: u64,
    /// The file-backed part (binaries, libraries, page cache mappings).
    pub pss_file_kib: u64,
    /// The shared-memory part (tmpfs/memfd: a VM's guest RAM when it is shared with a helper).
    pub pss_shmem_kib: u64,
}

impl std::ops::AddAssign for Memory {
    fn add_assign(&mut self, other: Memory) {
        self.rss_kib += other.rss_kib;
        self.pss_kib += other.pss_kib;
        self.pss_anon_kib += other.pss_anon_kib;
        self.pss_file_kib += other.pss_file_kib;
        self.pss_shmem_kib += other.pss_shmem_kib;
    }
}

/// Parses `/proc/<pid>/smaps_rollup` (proc(5)): `Name:   <n> kB` lines. Kernels before
/// 5.4 have no `Pss_Anon`/`Pss_File`/`Pss_Shmem` lines; those stay 0. `None` without a
/// `Pss:` line.
pub fn parse_smaps_rollup(text: &str) -> Option<Memory> {
    let mut memory = Memory::default();
    let mut has_pss = false;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let Some(kib) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        match name.trim() {
            "Rss" => memory.rss_kib = kib,
            "Pss" => {
                memory.pss_kib = kib;
                has_pss = true;
            }
            "Pss_Anon" => memory.pss_anon_kib = kib,
            "Pss_File" => memory.pss_file_kib = kib,
            "Pss_Shmem" => memory.pss_shmem_kib = kib,
            _ => {}
        }
    }
    has_pss.then_some(memory)
}

/// The memory of `pid`; `None` when it is gone (or a kernel thread).
pub fn memory_of(pid: u32) -> Option<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    parse_smaps_rollup(&text)
}

/// CPU time of `pid` (all its threads), in clock ticks; `None` when it is gone.
pub fn cpu_ticks_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).map(|s| s.utime + s.stime)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `/proc` CPU times.
pub fn ticks_per_second() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// `MemTotal` and `MemAvailable` of `/proc/meminfo`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostMemory {
    /// Physical memory.
    pub total_kib: u64,
    /// What the kernel estimates could be allocated without swapping.
    pub available_kib: u64,
}

/// Parses `/proc/meminfo`.
pub fn parse_meminfo(text: &str) -> Option<HostMemory> {
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    Some(HostMemory {
        total_kib: value("MemTotal")?,
        available_kib: value("MemAvailable")?,
    })
}

/// The host's memory now.
pub fn host_memory() -> Option<HostMemory> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)
}

/// The host's CPU time from the `cpu` line of `/proc/stat`, in clock ticks: busy and total.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostCpu {
    /// Ticks not spent idle or waiting for I/O.
    pub busy: u64,
    /// All ticks.
    pub total: u64,
}

/// Parses the first (`cpu `) line of `/proc/stat`: user nice system idle iowait irq softirq
/// steal …; guest times are already inside user and nice, so they are not added again.
pub fn parse_proc_stat(text: &str) -> Option<HostCpu> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    if values.len() < 5 {
        return None;
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    Some(HostCpu {
        busy: total - idle,
        total,
    })
}

/// The host's CPU counters now.
pub fn host_cpu() -> Option<HostCpu> {
    parse_proc_stat(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The value following `flag` in `args` (`-id abc` gives `abc`).
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// `/proc/<pid>/cmdline`: NUL-terminated arguments.
fn split_cmdline(raw: &[u8]) -> Vec<String> {
    raw.split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn process(pid: u32, ppid: u32, comm: &str, args: &str) -> ProcessInfo {
        ProcessInfo {
            pid,
            ppid,
            comm: comm.into(),
            args: args.split_whitespace().map(String::from).collect(),
        }
    }

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let text = "4242 (qemu (x) 1) S 17 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 3 0 \
                    1000 1 1 18446744073709551615";
        let stat = parse_stat(text).unwrap();
        assert_eq!(stat.comm, "qemu (x) 1");
        assert_eq!((stat.ppid, stat.utime, stat.stime), (17, 250, 75));
        assert!(parse_stat("12 (short) S 1").is_none(), "truncated stat");
    }

    #[test]
    fn smaps_rollup_gives_pss_and_its_parts() {
        let text = "55d0c0a00000-7ffd1d5fe000 ---p 00000000 00:00 0  [rollup]\n\
                    Rss:              101924 kB\nPss:               98765 kB\n\
                    Pss_Dirty:         90000 kB\nPss_Anon:          30000 kB\n\
                    Pss_File:           3765 kB\nPss_Shmem:         65000 kB\n\
                    Shared_Clean:       4000 kB\n";
        let memory = parse_smaps_rollup(text).unwrap();
        assert_eq!(
            memory,
            Memory {
                rss_kib: 101_924,
                pss_kib: 98_765,
                pss_anon_kib: 30_000,
                pss_file_kib: 3_765,
                pss_shmem_kib: 65_000,
            }
        );
        let old_kernel = parse_smaps_rollup("Rss: 10 kB\nPss: 8 kB\n").unwrap();
        assert_eq!((old_kernel.pss_kib, old_kernel.pss_anon_kib), (8, 0));
        assert!(parse_smaps_rollup("Rss: 10 kB\n").is_none(), "no Pss line");
        let mut sum = memory;
        sum += old_kernel;
        assert_eq!((sum.rss_kib, sum.pss_kib), (101_934, 98_773));
    }

    #[test]
    fn the_pod_is_the_shim_and_its_descendants() {
        let address = "/run/lightpod-bench/containerd/containerd.sock";
        let shim = |pid, id: &str, addr: &str, extra: &str| {
            let args = format!(
                "containerd-shim-lightpod-v2 -namespace k8s.io -id {id} -address {addr} {extra}"
            );
            process(pid, 1, "containerd-shim", &args)
        };
        let table = ProcessTable::from_processes([
            process(1, 0, "init", "/sbin/init"),
            shim(100, "pod-a", address, ""),
            process(101, 100, "qemu-system-x86", "qemu-system-x86_64 -M microvm"),
            process(102, 100, "virtiofsd", "virtiofsd --socket-path x"),
            process(103, 102, "virtiofsd", "virtiofsd --socket-path x"),
            shim(200, "pod-b", address, ""),
            process(201, 200, "sleep", "sleep infinity"),
            shim(300, "pod-a", "/tmp/other/containerd.sock", ""),
            shim(400, "pod-c", address, "start"),
        ]);
        assert_eq!(table.shim_of("pod-a", Path::new(address)), Some(100));
        assert_eq!(table.shim_of("pod-b", Path::new(address)), Some(200));
        assert_eq!(
            table.shim_of("pod-c", Path::new(address)),
            None,
            "the `start` launcher is not the shim"
        );
        assert_eq!(
            table.shim_of("pod-", Path::new(address)),
            None,
            "ids match whole"
        );
        assert_eq!(table.subtree(100), [100, 101, 102, 103]);
        assert_eq!(table.subtree(200), [200, 201]);
        assert!(table.subtree(999).is_empty(), "a gone process has no tree");
    }

    #[test]
    fn meminfo_and_proc_stat_parse() {
        let meminfo = "MemTotal:       24000000 kB\nMemFree:         1000 kB\n\
                       MemAvailable:   18000000 kB\n";
        assert_eq!(
            parse_meminfo(meminfo),
            Some(HostMemory {
                total_kib: 24_000_000,
                available_kib: 18_000_000
            })
        );
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);

        let stat = "cpu  100 5 50 800 40 1 4 0 30 0\ncpu0 50 2 25 400 20 0 2 0 15 0\n";
        assert_eq!(
            parse_proc_stat(stat),
            Some(HostCpu {
                busy: 160,
                total: 1000
            }),
            "guest ticks are inside user"
        );
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(split_cmdline(b"sh\0-c\0echo hi\0"), ["sh", "-c", "echo hi"]);
        assert!(split_cmdline(b"").is_empty());
    }
}
