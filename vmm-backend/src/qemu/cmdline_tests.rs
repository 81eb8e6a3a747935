#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use super::*;

fn sample(machine: MachineType, accel: Accelerator) -> QemuCommandLine {
    let dir = PathBuf::from("/run/vm");
    QemuCommandLine {
        machine: MachineOpts {
            machine,
            accel,
            tcg_tb_mib: 16,
        },
        cpu: CpuOpts { accel, vcpus: 2 },
        memory: MemoryOpts { mib: 256 },
        boot: KernelBootOpts {
            kernel: "/boot/vmlinuz".into(),
            initrd: "/img/initrd.img".into(),
            cmdline: "console=ttyS0 panic=-1".into(),
        },
        console: ConsoleOpts {
            log: dir.join("console.log"),
        },
        agent: AgentChannelOpts {
            socket: dir.join("agent.sock"),
            port_name: "lightpod.agent".into(),
        },
        filesystems: vec![VirtioFsOpts {
            socket: dir.join("vfs-lightpod.sock"),
            tag: "lightpod".into(),
        }],
        nets: vec![NetOpts {
            fd: 7,
            mac: "02:00:00:00:00:01".into(),
            mtu: 1450,
        }],
        blocks: vec![BlockOpts {
            path: "/img/disk,1.raw".into(),
            readonly: true,
        }],
        balloon: Some(BalloonOpts),
        control: ControlOpts {
            qmp_socket: dir.join("qmp.sock"),
            pid_file: dir.join("qemu.pid"),
            name: "lightpod-vm1".into(),
        },
    }
}

/// The value that follows `flag` each time it appears.
fn values(args: &[String], flag: &str) -> Vec<String> {
    args.windows(2)
        .filter(|w| w[0] == flag)
        .map(|w| w[1].clone())
        .collect()
}

#[test]
fn options_per_machine_and_accelerator() {
    struct Case {
        name: &'static str,
        machine: MachineType,
        accel: Accelerator,
        machine_opt: &'static str,
        accel_opt: &'static str,
        cpu: &'static str,
        device_suffix: &'static str,
    }
    let cases = [
        Case {
            name: "microvm/tcg",
            machine: MachineType::Microvm,
            accel: Accelerator::Tcg,
            machine_opt: "microvm,memory-backend=ram,isa-serial=on,acpi=on,x-option-roms=off",
            accel_opt: "tcg,tb-size=16",
            cpu: "max",
            device_suffix: "-device",
        },
        Case {
            name: "microvm/kvm",
            machine: MachineType::Microvm,
            accel: Accelerator::Kvm,
            machine_opt: "microvm,memory-backend=ram,isa-serial=on,acpi=on,x-option-roms=off",
            accel_opt: "kvm",
            cpu: "host",
            device_suffix: "-device",
        },
        Case {
            name: "q35/tcg",
            machine: MachineType::Q35,
            accel: Accelerator::Tcg,
            machine_opt: "q35,memory-backend=ram",
            accel_opt: "tcg,tb-size=16",
            cpu: "max",
            device_suffix: "-pci",
        },
        Case {
            name: "q35/kvm",
            machine: MachineType::Q35,
            accel: Accelerator::Kvm,
            machine_opt: "q35,memory-backend=ram",
            accel_opt: "kvm",
            cpu: "host",
            device_suffix: "-pci",
        },
    ];
    for case in cases {
        let args = sample(case.machine, case.accel).args();
        assert_eq!(
            values(&args, "-machine"),
            [case.machine_opt],
            "{}: -machine",
            case.name
        );
        assert_eq!(
            values(&args, "-accel"),
            [case.accel_opt],
            "{}: -accel",
            case.name
        );
        assert_eq!(values(&args, "-cpu"), [case.cpu], "{}: -cpu", case.name);
        let devices = values(&args, "-device");
        let expected = [
            format!("virtio-serial{},id=vserial", case.device_suffix),
            "virtserialport,bus=vserial.0,chardev=agent,name=lightpod.agent".to_string(),
            format!(
                "vhost-user-fs{},chardev=vfs0,tag=lightpod",
                case.device_suffix
            ),
            format!(
                "virtio-net{},netdev=net0,mac=02:00:00:00:00:01,host_mtu=1450",
                case.device_suffix
            ),
            format!("virtio-blk{},drive=blk0", case.device_suffix),
            format!(
                "virtio-balloon{},id=balloon,free-page-reporting=on",
                case.device_suffix
            ),
        ];
        assert_eq!(devices, expected, "{}: devices", case.name);
        for flag in ["-S", "-nodefaults", "-no-user-config", "-no-reboot"] {
            assert!(
                args.iter().any(|a| a == flag),
                "{}: {flag} missing",
                case.name
            );
        }
    }
}

#[test]
fn shared_memory_backend_and_boot() {
    let args = sample(MachineType::Microvm, Accelerator::Tcg).args();
    assert_eq!(
        values(&args, "-object"),
        ["memory-backend-memfd,id=ram,size=256M,share=on"]
    );
    assert_eq!(values(&args, "-m"), ["256M"]);
    assert_eq!(values(&args, "-smp"), ["2"]);
    assert_eq!(values(&args, "-kernel"), ["/boot/vmlinuz"]);
    assert_eq!(values(&args, "-initrd"), ["/img/initrd.img"]);
    assert_eq!(values(&args, "-append"), ["console=ttyS0 panic=-1"]);
}

#[test]
fn chardevs_sockets_and_files() {
    let args = sample(MachineType::Q35, Accelerator::Kvm).args();
    assert_eq!(
        values(&args, "-chardev"),
        [
            "file,id=console,path=/run/vm/console.log",
            "socket,id=agent,path=/run/vm/agent.sock,server=on,wait=off",
            "socket,id=vfs0,path=/run/vm/vfs-lightpod.sock",
        ]
    );
    assert_eq!(values(&args, "-serial"), ["chardev:console"]);
    assert_eq!(
        values(&args, "-qmp"),
        ["unix:/run/vm/qmp.sock,server=on,wait=off"]
    );
    assert_eq!(values(&args, "-pidfile"), ["/run/vm/qemu.pid"]);
    assert_eq!(
        values(&args, "-sandbox"),
        ["on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]
    );
    assert_eq!(values(&args, "-netdev"), ["tap,id=net0,fd=7,vhost=off"]);
    // A comma in a path is doubled inside a key=value option.
    assert_eq!(
        values(&args, "-drive"),
        ["file=/img/disk,,1.raw,if=none,id=blk0,format=raw,readonly=on"]
    );
}

#[test]
fn commas_in_the_name_are_escaped() {
    let mut line = sample(MachineType::Microvm, Accelerator::Tcg);
    line.control.name = "lightpod-a,debug-threads=on".into();
    assert_eq!(
        values(&line.args(), "-name"),
        ["lightpod-a,,debug-threads=on"]
    );
}

#[test]
fn devices_are_numbered_per_kind() {
    let mut line = sample(MachineType::Microvm, Accelerator::Tcg);
    line.filesystems.push(VirtioFsOpts {
        socket: "/run/vm/vfs-b.sock".into(),
        tag: "b".into(),
    });
    line.blocks.push(BlockOpts {
        path: "/img/rw.raw".into(),
        readonly: false,
    });
    let args = line.args();
    assert!(
        values(&args, "-device").contains(&"vhost-user-fs-device,chardev=vfs1,tag=b".to_string()),
        "second virtio-fs device gets id vfs1"
    );
    assert!(
        values(&args, "-drive")
            .contains(&"file=/img/rw.raw,if=none,id=blk1,format=raw,readonly=off".to_string()),
        "second drive gets id blk1 and is writable"
    );
}
