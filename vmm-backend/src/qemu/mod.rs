//! The QEMU backend: Debian's `qemu-system-x86_64` with `-M microvm` or `q35`, controlled
//! over QMP, guest RAM in a shared memfd so virtiofsd can serve shared directories.
