//! Running work inside a network namespace, on a thread of its own.

use std::{fs::File, path::Path};

use nix::sched::{setns, CloneFlags};

use super::error::NetworkError;

/// Runs `work` on a new thread that has entered the network namespace at `path`, and
/// returns its result. Sockets and devices `work` creates stay in that namespace after the
/// thread ends; the thread itself ends with `work`, so no thread of the process is left in
/// a pod's namespace.
pub(super) async fn in_netns<T, F>(path: &Path, work: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, NetworkError> + Send + 'static,
{
    let namespace = File::open(path).map_err(|source| NetworkError::OpenNamespace {
        path: path.to_path_buf(),
        source,
    })?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("lightpod-netns".into())
        .spawn(move || {
            let outcome = setns(&namespace, CloneFlags::CLONE_NEWNET)
                .map_err(NetworkError::EnterNamespace)
                .and_then(|()| work());
            let _ = done.send(outcome);
        })
        .map_err(NetworkError::NamespaceThread)?;
    result.await.unwrap_or_else(|_| {
        Err(NetworkError::NamespaceThread(std::io::Error::other(
            "the namespace thread panicked",
        )))
    })
}

/// Runs an rtnetlink conversation on a runtime of the calling (namespace) thread: its
/// socket is created in the thread's namespace.
pub(super) fn with_netlink<T, Fut>(
    talk: impl FnOnce(rtnetlink::Handle) -> Fut,
) -> Result<T, NetworkError>
where
    Fut: std::future::Future<Output = Result<T, NetworkError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(NetworkError::NamespaceThread)?;
    runtime.block_on(async {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetworkError::Netlink)?;
        let driver = tokio::spawn(connection);
        let result = talk(handle).await;
        driver.abort();
        result
    })
}
