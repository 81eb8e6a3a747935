//! What a front end needs to drive lightpod through a real containerd: the OCI images built
//! locally from Debian's `busybox-static` ([`image`]), a blocking CRI client that calls
//! containerd's CRI plugin as kubelet does ([`cri`]), and a private containerd instance with
//! its own root, state, socket and CNI bridge, never the system one ([`containerd`]).
//!
//! Three front ends share it: the operator's `lightpod demo`, the benchmarks, and the
//! end-to-end tests of `lightpod-e2e`. Everything here drives real parts (containerd, runc,
//! the CNI plugins, the lightpod shim); nothing is mocked.
//!
//! # Example
//!
//! A pod in a VM through containerd's CRI plugin, as kubelet would run it (as root, with the
//! lightpod shim built into `target/release`):
//!
//! ```no_run
//! use lightpod_harness::{
//!     containerd::{ContainerdOptions, PrivateContainerd},
//!     cri::{ContainerConfigBuilder, CriPod, PodSandboxConfigBuilder},
//!     image::{Images, BUSYBOX_IMAGE},
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let images = Images::build("/var/lib/lightpod/demo".as_ref())?;
//! let mut options = ContainerdOptions::new("/run/lightpod-demo");
//! options.shim_dir = Some("target/release".into());
//! options.images = images.all().into_iter().cloned().collect();
//! let containerd = PrivateContainerd::start(&options)?;
//!
//! let mut cri = containerd.cri()?;
//! let pod = CriPod::run(
//!     &mut cri,
//!     containerd.address(),
//!     PodSandboxConfigBuilder::new("hello"),
//!     "lightpod",
//! )?;
//! let hello = ContainerConfigBuilder::new("hello", BUSYBOX_IMAGE)
//!     .command(&["echo", "hello from a VM"])
//!     .build();
//! pod.run_container(&mut cri, &hello)?;
//! pod.remove(&mut cri)?;
//! containerd.stop()?;
//! # Ok(())
//! # }
//! ```

pub mod containerd;
pub mod cri;
pub mod image;
