//! Task events to containerd: each [`TaskEvent`] of the registry becomes the shim v2 event
//! containerd expects, published on its topic in the order the registry produced them.

use containerd_shim::{
    event::Event,
    protos::{
        events::task::{
            TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskOOM,
            TaskPaused, TaskResumed, TaskStart,
        },
        protobuf::MessageField,
        topics,
    },
    publisher::RemotePublisher,
    Context,
};
use lightpod_sandbox::{chain, TaskEvent};
use tokio::sync::mpsc;

use crate::convert::timestamp;

/// Publishes the registry's events until the registry is dropped.
pub fn spawn_publisher(
    publisher: RemotePublisher,
    namespace: String,
    mut events: mpsc::UnboundedReceiver<TaskEvent>,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let (topic, message) = to_message(event);
            if let Err(e) = publisher
                .publish(Context::default(), topic, &namespace, message)
                .await
            {
                tracing::warn!(topic, error = %chain(&e), "publish a task event");
            }
        }
    });
}

/// The topic and message of an event.
pub fn to_message(event: TaskEvent) -> (&'static str, Box<dyn Event>) {
    match event {
        TaskEvent::Created {
            id,
            bundle,
            stdio,
            pid,
        } => {
            let mut io = TaskIO::new();
            let path = |p: Option<std::path::PathBuf>| {
                p.map(|p| p.display().to_string()).unwrap_or_default()
            };
            io.stdin = path(stdio.stdin);
            io.stdout = path(stdio.stdout);
            io.stderr = path(stdio.stderr);
            io.terminal = stdio.terminal;
            let mut message = TaskCreate::new();
            message.container_id = id;
            message.bundle = bundle.display().to_string();
            message.io = MessageField::some(io);
            message.pid = pid;
            (topics::TASK_CREATE_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Started { id, pid } => {
            let mut message = TaskStart::new();
            message.container_id = id;
            message.pid = pid;
            (topics::TASK_START_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Exited {
            id,
            exec_id,
            pid,
            status,
        } => {
            let mut message = TaskExit::new();
            // containerd names the init process by the container id.
            message.id = if exec_id.is_empty() {
                id.clone()
            } else {
                exec_id
            };
            message.container_id = id;
            message.pid = pid;
            message.exit_status = status.code;
            message.exited_at = timestamp(status.exited_at);
            (topics::TASK_EXIT_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Oom { id } => {
            let mut message = TaskOOM::new();
            message.container_id = id;
            (topics::TASK_OOM_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::ExecAdded { id, exec_id } => {
            let mut message = TaskExecAdded::new();
            message.container_id = id;
            message.exec_id = exec_id;
            (topics::TASK_EXEC_ADDED_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::ExecStarted { id, exec_id, pid } => {
            let mut message = TaskExecStarted::new();
            message.container_id = id;
            message.exec_id = exec_id;
            message.pid = pid;
            (topics::TASK_EXEC_STARTED_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Paused { id } => {
            let mut message = TaskPaused::new();
            message.container_id = id;
            (topics::TASK_PAUSED_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Resumed { id } => {
            let mut message = TaskResumed::new();
            message.container_id = id;
            (topics::TASK_RESUMED_EVENT_TOPIC, Box::new(message))
        }
        TaskEvent::Deleted { id, pid, status } => {
            let mut message = TaskDelete::new();
            message.id = id.clone();
            message.container_id = id;
            message.pid = pid;
            message.exit_status = status.code;
            message.exited_at = timestamp(status.exited_at);
            (topics::TASK_DELETE_EVENT_TOPIC, Box::new(message))
        }
    }
}
