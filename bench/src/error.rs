//! Why a benchmark run could not be done.

use std::path::PathBuf;

use lightpod_harness::{
    containerd::{StartError, StopError},
    cri::CriConnectError,
    image::ImageError,
};

/// The step of the run that failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The test images could not be built.
    #[error("build the OCI images")]
    BuildImages(#[source] ImageError),
    /// Another run holds the lock of the containerd directory, or it cannot be taken.
    #[error("lock {} (does another lightpod-bench run?)", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A private containerd of an earlier run could not be stopped.
    #[error("stop the containerd an earlier run left in {}", dir.display())]
    StopEarlier {
        /// Its directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: StopError,
    },
    /// The private containerd did not start.
    #[error("start the private containerd")]
    StartContainerd(#[source] StartError),
    /// The private containerd could not be stopped cleanly.
    #[error("stop the private containerd")]
    StopContainerd(#[source] StopError),
    /// CRI could not be reached.
    #[error("connect to CRI")]
    ConnectCri(#[source] CriConnectError),
    /// A result file could not be written.
    #[error("write {}", path.display())]
    WriteResults {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The results could not be encoded as JSON.
    #[error("encode the results")]
    EncodeResults(#[source] serde_json::Error),
}
