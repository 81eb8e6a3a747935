//! Our container types turned into agent API messages, with host paths rewritten to the
//! paths the guest sees through the share.

use lightpod_proto::agent as pb;

use crate::{
    share::ShareLayout,
    spec::{ContainerSpec, MountSource, ProcessSpec, ResourceSpec},
};

/// The agent's `Process` for a process spec.
pub fn process(spec: &ProcessSpec) -> pb::Process {
    let mut p = pb::Process::new();
    p.args = spec.args.clone();
    p.env = spec.env.clone();
    p.cwd = spec.cwd.clone();
    p.uid = spec.uid;
    p.gid = spec.gid;
    p.additional_gids = spec.additional_gids.clone();
    p.terminal = spec.terminal;
    p.rlimits = spec
        .rlimits
        .iter()
        .map(|(kind, soft, hard)| {
            let mut r = pb::Rlimit::new();
            r.kind = kind.clone();
            r.soft = *soft;
            r.hard = *hard;
            r
        })
        .collect();
    p.no_new_privileges = spec.no_new_privileges;
    p.capabilities = spec.capabilities.clone().unwrap_or_default();
    if let Some((width, height)) = spec.console_size {
        p.console_width = width;
        p.console_height = height;
    }
    p.stdin = spec.stdin;
    if let Some(umask) = spec.umask {
        p.umask = umask;
        p.has_umask = true;
    }
    p
}

/// The agent's `Resources` for a resource spec.
pub fn resources(spec: &ResourceSpec) -> pb::Resources {
    let mut r = pb::Resources::new();
    r.memory_limit_bytes = spec.memory_limit_bytes;
    r.cpu_quota_us = spec.cpu_quota_us;
    r.cpu_period_us = spec.cpu_period_us;
    r.cpu_shares = spec.cpu_shares;
    r.pids_limit = spec.pids_limit;
    r
}

/// The `CreateContainer` request for a container whose host mounts are laid out in `share`.
/// Host-path mounts become binds of their place in the share, in the order of the spec.
pub fn create_container(spec: &ContainerSpec, share: &ShareLayout) -> pb::CreateContainerRequest {
    let mut req = pb::CreateContainerRequest::new();
    req.container_id = spec.id.clone();
    req.rootfs = share.guest_rootfs(&spec.id);
    req.readonly_rootfs = spec.readonly_rootfs;
    req.hostname = spec.hostname.clone();
    req.pod_sandbox_id = spec.pod_sandbox_id.clone().unwrap_or_default();
    req.mounts = spec
        .mounts
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let mut mount = pb::Mount::new();
            mount.destination = m.destination.clone();
            mount.fs_type = m.fs_type.clone();
            mount.source = match &m.source {
                MountSource::Host(_) => share.guest_volume(&spec.id, index),
                MountSource::Guest(source) => source.clone(),
            };
            mount.options = m.options.clone();
            mount
        })
        .collect();
    req.resources = protobuf::MessageField::some(resources(&spec.resources));
    req.sysctls = spec.sysctls.clone().into_iter().collect();
    req.process = protobuf::MessageField::some(process(&spec.process));
    req.masked_paths = spec.masked_paths.clone();
    req.readonly_paths = spec.readonly_paths.clone();
    req
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::spec::MountSpec;

    fn container() -> ContainerSpec {
        ContainerSpec {
            id: "c1".into(),
            rootfs: "/host/rootfs".into(),
            readonly_rootfs: true,
            hostname: "h".into(),
            process: ProcessSpec {
                args: vec!["sh".into()],
                cwd: "/".into(),
                umask: Some(0o22),
                console_size: Some((80, 24)),
                ..Default::default()
            },
            mounts: vec![
                MountSpec {
                    destination: "/proc".into(),
                    fs_type: "proc".into(),
                    source: MountSource::Guest("proc".into()),
                    options: vec![],
                },
                MountSpec {
                    destination: "/data".into(),
                    fs_type: "bind".into(),
                    source: MountSource::Host("/srv/data".into()),
                    options: vec!["rbind".into(), "ro".into()],
                },
            ],
            resources: ResourceSpec {
                memory_limit_bytes: 1 << 20,
                ..Default::default()
            },
            sysctls: HashMap::from([("kernel.shmmax".into(), "1".into())]),
            masked_paths: vec![],
            readonly_paths: vec![],
            pod_sandbox_id: None,
            network_namespace: None,
        }
    }

    #[test]
    fn host_paths_become_share_paths_and_fields_carry_over() {
        let share = ShareLayout::new("/run/lightpod/sandboxes/p/shared".into());
        let req = create_container(&container(), &share);

        assert_eq!(req.rootfs, "/run/lightpod/shared/c1/rootfs");
        assert!(req.readonly_rootfs);
        assert_eq!(
            req.mounts[0].source, "proc",
            "guest filesystems keep their source"
        );
        assert_eq!(req.mounts[1].source, "/run/lightpod/shared/c1/mounts/1");
        assert_eq!(
            req.mounts[1].options,
            vec!["rbind".to_string(), "ro".to_string()]
        );
        assert_eq!(req.resources.memory_limit_bytes, 1 << 20);
        assert_eq!(
            req.sysctls.get("kernel.shmmax").map(String::as_str),
            Some("1")
        );
        assert_eq!(req.process.args, vec!["sh".to_string()]);
        assert!(req.process.has_umask && req.process.umask == 0o22);
        assert_eq!(
            (req.process.console_width, req.process.console_height),
            (80, 24)
        );
    }
}
