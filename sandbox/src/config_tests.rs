use super::*;

#[test]
fn empty_text_gives_working_defaults() {
    let config = Config::parse("", Path::new("test.toml")).expect("defaults are valid");
    assert_eq!(config.vm, VmConfig::default());
    assert_eq!(config.runtime.state_dir, PathBuf::from("/run/lightpod"));
    assert_eq!(config.runtime.backend, BackendKind::Qemu);
    assert_eq!(config.guest.kernel, None);
}

#[test]
fn values_from_the_file_override_defaults() {
    let text = r#"
        [runtime]
        state_dir = "/tmp/lp"
        [vm]
        vcpus = 1
        memory_mib = 512
        kernel_params = ["quiet"]
        [guest]
        kernel = "/boot/k"
    "#;
    let config = Config::parse(text, Path::new("test.toml")).expect("valid");
    assert_eq!(config.runtime.state_dir, PathBuf::from("/tmp/lp"));
    assert_eq!(config.vm.memory_mib, 512);
    assert_eq!(config.vm.kernel_params, vec!["quiet".to_string()]);
    assert_eq!(config.guest.kernel, Some(PathBuf::from("/boot/k")));
}

#[test]
fn bad_files_are_rejected_naming_the_problem() {
    let cases = [
        ("unknown key", "[vm]\nvcpu = 2\n", "vcpu"),
        ("unknown section", "[vmm]\n", "vmm"),
        ("wrong type", "[vm]\nmemory_mib = \"lots\"\n", "memory_mib"),
        ("zero vcpus", "[vm]\nvcpus = 0\n", "vm.vcpus"),
        ("tiny memory", "[vm]\nmemory_mib = 16\n", "vm.memory_mib"),
        (
            "unknown backend",
            "[runtime]\nbackend = \"vbox\"\n",
            "backend",
        ),
    ];
    for (name, text, needle) in cases {
        let err = Config::parse(text, Path::new("test.toml")).expect_err(name);
        let message = crate::error::chain(&err);
        assert!(
            message.contains(needle),
            "case {name}: {message:?} should name {needle:?}"
        );
    }
}

#[test]
fn annotations_override_the_vm_and_bad_ones_are_named() {
    let base = VmConfig::default();
    let annotations = HashMap::from([
        ("lightpod.io/memory-mib".to_string(), "128".to_string()),
        (
            "lightpod.io/kernel-params".to_string(),
            "quiet loglevel=1".to_string(),
        ),
        (
            "io.kubernetes.cri.container-type".to_string(),
            "sandbox".to_string(),
        ),
    ]);
    let vm = base
        .with_annotations(&annotations)
        .expect("valid annotations");
    assert_eq!(vm.memory_mib, 128);
    assert_eq!(
        vm.kernel_params,
        vec!["quiet".to_string(), "loglevel=1".to_string()]
    );

    let cases = [
        ("lightpod.io/vcpus", "two", "lightpod.io/vcpus"),
        ("lightpod.io/vcpus", "100000", "lightpod.io/vcpus"),
        (
            "lightpod.io/memory-mib",
            "999999999",
            "lightpod.io/memory-mib",
        ),
        ("lightpod.io/turbo", "on", "lightpod.io/turbo"),
    ];
    for (key, value, needle) in cases {
        let one = HashMap::from([(key.to_string(), value.to_string())]);
        let err = base.with_annotations(&one).expect_err(key);
        assert!(
            err.to_string().contains(needle),
            "{key}={value}: {err} should name {needle}"
        );
    }
}
