//! `lightpod-agent`: PID 1 of every lightpod guest.
//!
//! It mounts what a Linux userland needs, loads the kernel modules the initramfs lists,
//! opens the channel to the host and serves the `lightpod.agent.v1` API on it: containers,
//! their processes and stdio, signals, stats, and power-off.

fn main() {}
