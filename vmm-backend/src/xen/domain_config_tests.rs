#![allow(clippy::unwrap_used)]

use super::*;

fn domain() -> DomainConfig {
    DomainConfig {
        name: "lightpod-run-1".into(),
        guest_type: XenGuestType::Pv,
        kernel: "/var/lib/lightpod/kernel/vmlinux".into(),
        ramdisk: "/var/lib/lightpod/guest/abc/initrd.img".into(),
        cmdline: "console=hvc0 lightpod.channel=console:/dev/hvc0".into(),
        memory_mib: 256,
        vcpus: 2,
        tsc_mode: None,
        disks: Vec::new(),
        vifs: Vec::new(),
    }
}

#[test]
fn renders_a_minimal_pv_domain() {
    let text = domain().render().unwrap();
    let want = "\
name = \"lightpod-run-1\"
type = \"pv\"
kernel = \"/var/lib/lightpod/kernel/vmlinux\"
ramdisk = \"/var/lib/lightpod/guest/abc/initrd.img\"
cmdline = \"console=hvc0 lightpod.channel=console:/dev/hvc0\"
memory = 256
maxmem = 256
vcpus = 2
on_poweroff = \"destroy\"
on_reboot = \"destroy\"
on_crash = \"destroy\"
";
    assert_eq!(text, want);
}

#[test]
fn renders_pvh_tsc_mode_disks_and_vifs() {
    let config = DomainConfig {
        guest_type: XenGuestType::Pvh,
        tsc_mode: Some(TscMode::Native),
        disks: vec![DiskSpec {
            vdev: "xvdb".into(),
            access: DiskAccess::ReadOnly,
            script: None,
            target: "/run/lightpod/sandboxes/p/blocks/c.img".into(),
        }],
        vifs: vec![VifSpec {
            mac: "02:11:22:33:44:55".into(),
            mtu: 1450,
            vifname: "lp-p-0".into(),
            bridge: Some("xenbr0".into()),
        }],
        ..domain()
    };
    let text = config.render().unwrap();
    for want in [
        "type = \"pvh\"\n",
        "tsc_mode = \"native\"\n",
        "disk = [ 'format=raw,vdev=xvdb,access=ro,target=/run/lightpod/sandboxes/p/blocks/c.img' ]\n",
        "vif = [ 'mac=02:11:22:33:44:55,mtu=1450,vifname=lp-p-0,bridge=xenbr0' ]\n",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn values_that_would_break_the_syntax_are_refused() {
    let cases: Vec<(&str, DomainConfig)> = vec![
        (
            "quote in the command line",
            DomainConfig {
                cmdline: "a=\"b\"".into(),
                ..domain()
            },
        ),
        (
            "newline in the name",
            DomainConfig {
                name: "a\nkernel = \"/evil\"".into(),
                ..domain()
            },
        ),
        (
            "comma in a disk target",
            DomainConfig {
                disks: vec![DiskSpec {
                    vdev: "xvdb".into(),
                    access: DiskAccess::ReadWrite,
                    script: None,
                    target: "/tmp/a,script=/evil".into(),
                }],
                ..domain()
            },
        ),
        (
            "empty bridge",
            DomainConfig {
                vifs: vec![VifSpec {
                    mac: "02:11:22:33:44:55".into(),
                    mtu: 1500,
                    vifname: "v".into(),
                    bridge: Some(String::new()),
                }],
                ..domain()
            },
        ),
    ];
    for (name, config) in cases {
        assert!(config.render().is_err(), "{name}: accepted");
    }
}

#[test]
fn disk_specs_put_the_target_last() {
    let spec = DiskSpec {
        vdev: "xvdc".into(),
        access: DiskAccess::ReadWrite,
        script: None,
        target: "/tmp/rootfs.img".into(),
    };
    assert_eq!(
        spec.render().unwrap(),
        "format=raw,vdev=xvdc,access=rw,target=/tmp/rootfs.img"
    );
    let with_script = DiskSpec {
        script: Some("/usr/local/lib/lightpod/xen-block-hotplug".into()),
        target: "/dev/loop3".into(),
        ..spec
    };
    assert_eq!(
        with_script.render().unwrap(),
        "format=raw,vdev=xvdc,access=rw,script=/usr/local/lib/lightpod/xen-block-hotplug,\
         target=/dev/loop3"
    );
}
