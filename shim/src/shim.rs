//! The shim's process-level life as containerd drives it: `start` (find or spawn the pod's
//! shim server), serving, and `delete` (clean up after a shim server that died).

use std::{path::Path, sync::Arc, time::SystemTime};

use async_trait::async_trait;
use containerd_shim::{
    asynchronous::{publisher::RemotePublisher, spawn, ExitSignal, Shim},
    util::write_str_to_file,
    Config as ShimConfig, DeleteResponse, Error as ShimError, Flags, StartOpts,
};
use lightpod_sandbox::{
    cleanup,
    task::{layout, rootfs, PodRole, SANDBOX_ID_ANNOTATION},
    Config, TaskRegistry,
};
use oci_spec::runtime::Spec;
use tokio::sync::mpsc;

use crate::{convert::timestamp, events, logging, service::TaskService};

/// How the shim crate runs this shim: our own logger (tracing, logfmt), and no reaper nor
/// subreaper: the crate's SIGCHLD handler reaps any child with waitpid(-1), which steals
/// QEMU's exit from tokio and the exit of commands such as iptables from `Command::output`
/// (it then fails with ECHILD). `run` must be given it: the crate installs its signal
/// handlers before [`Shim::new`] sees the configuration.
pub fn shim_config() -> ShimConfig {
    ShimConfig {
        no_setup_logger: true,
        no_reaper: true,
        no_sub_reaper: true,
        ..ShimConfig::default()
    }
}

/// One shim process.
pub struct LightpodShim {
    namespace: String,
    id: String,
    debug: bool,
    exit: Arc<ExitSignal>,
}

#[async_trait]
impl Shim for LightpodShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, config: &mut ShimConfig) -> Self {
        *config = shim_config();
        LightpodShim {
            namespace: flags.namespace.clone(),
            id: flags.id.clone(),
            debug: flags.debug,
            exit: Arc::new(ExitSignal::default()),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> Result<String, ShimError> {
        // The containers of a pod share the shim of their sandbox: containerd finds it at the
        // socket address derived from the grouping id.
        let grouping = match Spec::load("config.json") {
            Ok(spec) => spec
                .annotations()
                .as_ref()
                .and_then(|a| a.get(SANDBOX_ID_ANNOTATION).cloned())
                .unwrap_or_else(|| opts.id.clone()),
            Err(_) => opts.id.clone(),
        };
        let address = spawn(opts, &grouping, Vec::new()).await?;
        write_str_to_file("address", &address).await?;
        Ok(address)
    }

    async fn delete_shim(&mut self) -> Result<DeleteResponse, ShimError> {
        logging::init(Path::new("log"), self.debug);
        let bundle = std::env::current_dir().unwrap_or_default();
        clean_up_after_shim(&self.namespace, &self.id, &bundle);
        let mut response = DeleteResponse::new();
        // The processes died with the VM or were killed now: as runc's shim reports it.
        response.exit_status = 128 + libc::SIGKILL as u32;
        response.exited_at = timestamp(SystemTime::now());
        Ok(response)
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        logging::init(Path::new("log"), self.debug);
        let (sender, receiver) = mpsc::unbounded_channel();
        let namespace = self.namespace.clone();
        let config = Config::load(None);
        if let Err(e) = &config {
            tracing::error!(error = %lightpod_sandbox::chain(e),
                "the lightpod configuration is invalid; every task create will fail");
        }
        let registry = TaskRegistry::new(
            &namespace,
            config.as_ref().unwrap_or(&Config::default()),
            sender,
        );
        events::spawn_publisher(publisher, namespace.clone(), receiver);
        tracing::info!(namespace = %namespace, id = %self.id, "shim serving");
        TaskService::new(registry, config.err(), self.exit.clone())
    }
}

/// What `containerd-shim-lightpod-v2 delete` does when the shim server of task `id` died:
/// kill what is left of the task's VM (if the task started one), remove its state and
/// unmount its rootfs. Everything is tried; failures are logged.
fn clean_up_after_shim(namespace: &str, id: &str, bundle: &Path) {
    let role = Spec::load(bundle.join("config.json"))
        .ok()
        .and_then(|spec| spec.annotations().clone())
        .map(|annotations| PodRole::from_annotations(&annotations));
    let starts_vm = match role {
        Some(Ok(role)) => role.starts_vm(),
        // No readable spec: the VM, if there is one, is named after the task.
        _ => true,
    };
    if starts_vm {
        match Config::load(None) {
            Ok(config) => {
                let config = layout::namespace_config(&config, namespace);
                match cleanup::abandoned_sandbox(&config, id) {
                    Ok(killed) => tracing::info!(sandbox = %id, killed = ?killed,
                        "cleaned up after a shim that died"),
                    Err(e) => tracing::error!(sandbox = %id, error = %e,
                        "clean up the VM of a shim that died"),
                }
            }
            Err(e) => tracing::error!(sandbox = %id, error = %lightpod_sandbox::chain(&e),
                "cannot clean up: the lightpod configuration is invalid"),
        }
    }
    rootfs::unmount_all(&layout::rootfs_dir(bundle));
}
