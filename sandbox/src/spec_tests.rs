use serde_json::json;

use super::*;

/// A minimal valid spec, as `runc spec` would write it, with `patch` merged in.
fn spec_with(patch: serde_json::Value) -> Spec {
    let mut base = json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "process": {
            "args": ["sh", "-c", "echo hi"],
            "env": ["PATH=/bin:/usr/bin", "TERM=xterm"],
            "cwd": "/",
            "user": {"uid": 0, "gid": 0}
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ]
    });
    merge(&mut base, patch);
    serde_json::from_value(base).expect("test spec parses")
}

fn merge(base: &mut serde_json::Value, patch: serde_json::Value) {
    match (base, patch) {
        (serde_json::Value::Object(b), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

#[test]
fn translates_a_full_spec() {
    let host_dir = tempfile::tempdir().expect("tempdir");
    let source = host_dir.path().to_string_lossy().into_owned();
    let spec = spec_with(json!({
        "hostname": "web",
        "root": {"readonly": true},
        "process": {
            "terminal": true,
            "consoleSize": {"height": 40, "width": 120},
            "cwd": "/srv",
            "user": {"uid": 1000, "gid": 100, "additionalGids": [10, 20], "umask": 18},
            "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
            "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"]}
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": source, "options": ["rbind", "ro"]}
        ],
        "linux": {
            "resources": {
                "memory": {"limit": 134217728},
                "cpu": {"quota": 50000, "period": 100000, "shares": 512},
                "pids": {"limit": 64}
            },
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        }
    }));

    let c = ContainerSpec::from_oci("web-1", &spec, Some("/host/rootfs".into())).expect("valid");

    assert_eq!(c.rootfs, PathBuf::from("/host/rootfs"));
    assert!(c.readonly_rootfs);
    assert_eq!(c.hostname, "web");
    assert_eq!(c.process.cwd, "/srv");
    assert_eq!((c.process.uid, c.process.gid), (1000, 100));
    assert_eq!(c.process.additional_gids, vec![10, 20]);
    assert_eq!(c.process.umask, Some(18));
    assert!(c.process.terminal);
    assert_eq!(c.process.console_size, Some((120, 40)));
    assert_eq!(
        c.process.rlimits,
        vec![("RLIMIT_NOFILE".to_string(), 1024, 4096)]
    );
    assert!(c.process.no_new_privileges);
    assert_eq!(
        c.process.capabilities,
        Some(vec!["CAP_CHOWN".to_string(), "CAP_KILL".to_string()])
    );
    assert_eq!(c.mounts.len(), 2);
    assert_eq!(c.mounts[0].source, MountSource::Guest("proc".into()));
    assert_eq!(c.mounts[1].fs_type, "bind");
    assert_eq!(
        c.mounts[1].source,
        MountSource::Host(host_dir.path().to_path_buf())
    );
    assert_eq!(
        c.resources,
        ResourceSpec {
            memory_limit_bytes: 134_217_728,
            cpu_quota_us: 50_000,
            cpu_period_us: 100_000,
            cpu_shares: 512,
            pids_limit: 64,
        }
    );
    assert_eq!(
        c.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
    assert_eq!(c.masked_paths, vec!["/proc/kcore".to_string()]);
    assert_eq!(c.readonly_paths, vec!["/proc/sys".to_string()]);
}

#[test]
fn root_path_is_used_when_no_rootfs_is_given() {
    let c = ContainerSpec::from_oci("a", &spec_with(json!({})), None).expect("valid");
    assert_eq!(c.rootfs, PathBuf::from("rootfs"));
    assert!(!c.readonly_rootfs);
    assert_eq!(
        c.resources,
        ResourceSpec::default(),
        "no linux section means no limits"
    );
}

#[test]
fn bad_specs_are_rejected_with_the_field_named() {
    let cases: Vec<(&str, &str, serde_json::Value, &str)> = vec![
        (
            "empty args",
            "a",
            json!({"process": {"args": []}}),
            "process.args",
        ),
        (
            "relative cwd",
            "a",
            json!({"process": {"cwd": "srv"}}),
            "process.cwd",
        ),
        (
            "env without =",
            "a",
            json!({"process": {"env": ["PATH"]}}),
            "process.env[0]",
        ),
        (
            "bind source missing",
            "a",
            json!({"mounts": [{"destination": "/x", "type": "bind",
                               "source": "/nonexistent/lightpod-test", "options": ["rbind"]}]}),
            "mounts[0].source",
        ),
        (
            "relative bind source",
            "a",
            json!({"mounts": [{"destination": "/x", "source": "rel", "options": ["bind"]}]}),
            "mounts[0].source",
        ),
        (
            "bidirectional propagation",
            "a",
            json!({"mounts": [{"destination": "/x", "type": "bind", "source": "/tmp",
                               "options": ["rbind", "rshared"]}]}),
            "mounts[0].options",
        ),
        (
            "relative destination",
            "a",
            json!({"mounts": [{"destination": "x", "type": "tmpfs", "source": "tmpfs"}]}),
            "mounts[0].destination",
        ),
        (
            "unsupported fs type",
            "a",
            json!({"mounts": [{"destination": "/x", "type": "nfs", "source": "srv:/x"}]}),
            "mounts[0].type",
        ),
        ("empty id", "", json!({}), "id"),
        ("id with slash", "a/b", json!({}), "id"),
        ("id starting with dot", ".a", json!({}), "id"),
    ];
    for (name, id, patch, field) in cases {
        match ContainerSpec::from_oci(id, &spec_with(patch), None) {
            Err(SpecError::Invalid { field: got, .. }) => {
                assert_eq!(got, field, "case {name}: wrong field named")
            }
            other => panic!("case {name}: expected an invalid-field error, got {other:?}"),
        }
    }
}

#[test]
fn missing_process_is_reported() {
    let mut spec = spec_with(json!({}));
    spec.set_process(None);
    assert_eq!(
        ContainerSpec::from_oci("a", &spec, None),
        Err(SpecError::Missing("process"))
    );
}

#[test]
fn the_network_namespace_to_join_is_taken_from_the_spec() {
    let cases = [
        (
            "a CRI pod sandbox joins CNI's namespace",
            json!({"linux": {"namespaces": [
                {"type": "pid"},
                {"type": "network", "path": "/var/run/netns/cni-1"}
            ]}}),
            Some(PathBuf::from("/var/run/netns/cni-1")),
        ),
        (
            "a new namespace (ctr run)",
            json!({"linux": {"namespaces": [{"type": "network"}]}}),
            None,
        ),
        (
            "the host's network",
            json!({"linux": {"namespaces": []}}),
            None,
        ),
    ];
    for (name, patch, expected) in cases {
        let c = ContainerSpec::from_oci("a", &spec_with(patch), None).expect(name);
        assert_eq!(c.network_namespace, expected, "{name}");
    }
}
