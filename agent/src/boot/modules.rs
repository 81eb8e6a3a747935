//! Kernel modules listed by the initramfs in `/etc/lightpod/modules.load`: one absolute path
//! per line, dependencies first.

use std::{fs::File, path::Path};

use nix::kmod::{finit_module, ModuleInitFlags};

/// The list the guest image writes.
pub const MODULES_LOAD: &str = "/etc/lightpod/modules.load";

/// Module paths of a `modules.load` file: trimmed, blank lines and `#` comments skipped.
pub fn parse_list(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Loads every listed module, in order. A module that is built in or loaded already is fine;
/// other failures are logged and the rest still load (the channel reports what is missing).
/// Returns how many modules were loaded.
pub fn load_all(list: &Path) -> usize {
    let text = match std::fs::read_to_string(list) {
        Ok(text) => text,
        Err(err) => {
            tracing::debug!(list = %list.display(), %err, "no module list");
            return 0;
        }
    };
    let mut loaded = 0;
    for path in parse_list(&text) {
        let file = match File::open(path) {
            Ok(file) => file,
            Err(err) => {
                tracing::error!(module = path, %err, "opening kernel module failed");
                continue;
            }
        };
        match finit_module(&file, c"", ModuleInitFlags::empty()) {
            Ok(()) => loaded += 1,
            Err(nix::Error::EEXIST) => tracing::debug!(module = path, "already loaded"),
            // The file was opened, so ENOENT is the kernel's "unknown symbol".
            Err(nix::Error::ENOENT) => tracing::error!(
                module = path,
                "loading kernel module failed: unknown symbol (is a dependency listed after it?)"
            ),
            Err(err) => tracing::error!(module = path, %err, "loading kernel module failed"),
        }
    }
    loaded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_skips_blanks_and_comments() {
        let text =
            "# virtio first\n/lib/modules/x/virtio.ko\n\n  /lib/modules/x/virtio_ring.ko  \n";
        assert_eq!(
            parse_list(text),
            ["/lib/modules/x/virtio.ko", "/lib/modules/x/virtio_ring.ko"]
        );
    }
}
