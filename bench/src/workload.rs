//! What the benchmark runs: the two runtimes side by side, and the container each pod runs.

use lightpod_harness::{
    cri::{api::ContainerConfig, ContainerConfigBuilder},
    image::BUSYBOX_IMAGE,
};
use serde::Serialize;

/// The line every benchmark container prints first, at once.
pub const READY_LINE: &str = "ready";
/// The line a [`Workload::Touch`] container prints once it holds its 64 MiB.
pub const TOUCHED_LINE: &str = "touched";
/// How much anonymous memory a [`Workload::Touch`] container touches.
pub const TOUCH_BYTES: u64 = 64 << 20;
/// Where a [`Workload::Touch`] container waits for the word to touch its memory.
const TOUCH_FIFO: &str = "/tmp/lightpod-bench-touch";

/// A CRI runtime handler of the private containerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// containerd's runc shim: the baseline.
    Runc,
    /// lightpod's shim: the pod in a VM.
    Lightpod,
}

impl Runtime {
    /// Both, baseline first.
    pub const BOTH: [Runtime; 2] = [Runtime::Runc, Runtime::Lightpod];

    /// The CRI runtime handler (RuntimeClass handler).
    pub fn handler(self) -> &'static str {
        self.name()
    }

    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Runc => "runc",
            Runtime::Lightpod => "lightpod",
        }
    }
}

impl std::fmt::Display for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The container of a benchmark pod (busybox from Debian's `busybox-static`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Prints [`READY_LINE`] at once, then sleeps: start latency, density.
    Ready,
    /// Prints [`READY_LINE`], waits idle until [`touch_command`] is executed in it, then has
    /// busybox `awk` build a string of [`TOUCH_BYTES`] spaces (anonymous memory, inside the
    /// container, not a host tmpfs), prints [`TOUCHED_LINE`] and sleeps holding it.
    Touch,
}

impl Workload {
    /// The container config, named `name`.
    pub fn container(self, name: &str) -> ContainerConfig {
        let script = match self {
            Workload::Ready => format!("echo {READY_LINE}; exec sleep infinity"),
            Workload::Touch => format!(
                "mkfifo {TOUCH_FIFO} && echo {READY_LINE} && read go < {TOUCH_FIFO} && \
                 exec awk 'BEGIN {{ s = sprintf(\"%{TOUCH_BYTES}s\", \"\"); \
                 print \"{TOUCHED_LINE}\"; fflush(); system(\"exec sleep infinity\") }}'"
            ),
        };
        ContainerConfigBuilder::new(name, BUSYBOX_IMAGE)
            .command(&["sh", "-c", &script])
            .build()
    }
}

/// The command that makes a [`Workload::Touch`] container touch its memory (run with
/// ExecSync).
pub fn touch_command() -> Vec<String> {
    let script = format!("echo go > {TOUCH_FIFO}");
    vec!["sh".into(), "-c".into(), script]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_touch_container_builds_a_64_mib_string() {
        let config = Workload::Touch.container("t");
        let script = &config.command[2];
        assert!(script.contains("%67108864s"), "{script}");
        assert!(script.contains(TOUCH_FIFO), "{script}");
        assert!(touch_command()[2].contains(TOUCH_FIFO));
        let ready = Workload::Ready.container("r");
        assert_eq!(ready.command[2], "echo ready; exec sleep infinity");
        assert_eq!(ready.log_path, "r.log");
    }
}
