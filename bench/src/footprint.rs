//! What a running pod costs the host: the processes it owns (its shim and all the shim's
//! descendants: for lightpod the VMM and its helpers, for runc the pause and container
//! processes), their memory (PSS) and their CPU time.

use std::{collections::BTreeMap, path::Path};

use serde::Serialize;

use crate::procfs::{self, Memory, ProcessTable};

/// The name a pod's own shim goes by in a breakdown (its `comm` is cut to 15 bytes).
pub const SHIM: &str = "shim";

/// The processes of one pod and their memory.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PodFootprint {
    /// The pod's processes, shim first.
    pub pids: Vec<u32>,
    /// Their memory, summed.
    pub total: Memory,
    /// Their memory by process name ([`SHIM`] for the shim, else `comm`), summed per name.
    pub by_process: BTreeMap<String, Memory>,
}

impl PodFootprint {
    /// The footprint of the pod whose sandbox is `sandbox_id`, from a process table of the
    /// host; `None` when its shim is not running.
    pub fn of(table: &ProcessTable, sandbox_id: &str, address: &Path) -> Option<PodFootprint> {
        let shim = table.shim_of(sandbox_id, address)?;
        Some(PodFootprint::of_tree(table, shim, procfs::memory_of))
    }

    /// The footprint of the tree under `root`, reading each process's memory with `memory`.
    pub fn of_tree(
        table: &ProcessTable,
        root: u32,
        memory: impl Fn(u32) -> Option<Memory>,
    ) -> PodFootprint {
        let mut footprint = PodFootprint::default();
        for pid in table.subtree(root) {
            // A process that exited meanwhile owns no memory any more.
            let Some(used) = memory(pid) else {
                continue;
            };
            let name = match table.get(pid) {
                Some(_) if pid == root => SHIM.to_string(),
                Some(p) => p.comm.clone(),
                None => continue,
            };
            footprint.pids.push(pid);
            footprint.total += used;
            *footprint.by_process.entry(name).or_default() += used;
        }
        footprint
    }

    /// The CPU time of the pod's processes now, in clock ticks (those that exited are
    /// left out).
    pub fn cpu_ticks(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|p| procfs::cpu_ticks_of(*p))
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::procfs::ProcessInfo;

    #[test]
    fn memory_is_summed_over_the_tree_and_named_by_process() {
        let p = |pid, ppid, comm: &str| ProcessInfo {
            pid,
            ppid,
            comm: comm.into(),
            args: Vec::new(),
        };
        let table = ProcessTable::from_processes([
            p(10, 1, "containerd-shim"),
            p(11, 10, "qemu-system-x86"),
            p(12, 10, "virtiofsd"),
            p(13, 12, "virtiofsd"),
            p(14, 10, "gone"),
            p(20, 1, "other"),
        ]);
        let memory = |pid: u32| {
            (pid != 14).then_some(Memory {
                rss_kib: u64::from(pid) * 10,
                pss_kib: u64::from(pid),
                pss_anon_kib: 1,
                pss_file_kib: 0,
                pss_shmem_kib: 0,
            })
        };
        let footprint = PodFootprint::of_tree(&table, 10, memory);
        assert_eq!(
            footprint.pids,
            [10, 11, 12, 13],
            "the exited process is left out"
        );
        assert_eq!(footprint.total.pss_kib, 10 + 11 + 12 + 13);
        assert_eq!(footprint.total.pss_anon_kib, 4);
        let names: Vec<&str> = footprint.by_process.keys().map(String::as_str).collect();
        assert_eq!(names, ["qemu-system-x86", "shim", "virtiofsd"]);
        assert_eq!(
            footprint.by_process["virtiofsd"].pss_kib, 25,
            "both virtiofsd"
        );
    }
}
