//! The kernel modules a guest needs, resolved with their dependencies from `modules.dep`.
//!
//! Modules built into the kernel (`modules.builtin`) are skipped. Compressed modules
//! (`.ko.xz`, `.ko.zst`, `.ko.gz`) are decompressed on the host with the distribution's own
//! tool, so the guest always gets plain `.ko` files (the boot contract in ARCHITECTURE.md): the
//! agent loads them with a plain `finit_module`, whatever the guest kernel's
//! `CONFIG_MODULE_DECOMPRESS`.

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    process::Command,
};

use crate::guest::GuestImageError;

/// Modules the agent needs under QEMU: the virtio transports (mmio for microvm, pci for q35),
/// the console port of its channel, block and network devices, virtio-fs and overlayfs.
pub const GUEST_MODULES: &[&str] = &[
    "virtio_mmio",
    "virtio_pci",
    "virtio_console",
    "virtio_blk",
    "virtio_net",
    "fuse",
    "virtiofs",
    "overlay",
];

/// One module to put into the initramfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedModule {
    /// Module name (`virtio_net`).
    pub name: String,
    /// The file on the host.
    pub host_path: PathBuf,
    /// Its path relative to `/lib/modules/<release>` once decompressed (`kernel/…/x.ko`).
    pub guest_rel_path: String,
}

impl ResolvedModule {
    /// The module's bytes, decompressed.
    ///
    /// # Errors
    ///
    /// Fails when the file cannot be read or the decompressor is missing or fails.
    pub fn read(&self) -> Result<Vec<u8>, GuestImageError> {
        let path = &self.host_path;
        let file_name = path.to_string_lossy();
        let tool = [(".xz", "xz"), (".zst", "zstd"), (".gz", "gzip")]
            .into_iter()
            .find(|(ext, _)| file_name.ends_with(ext))
            .map(|(_, tool)| tool);
        let Some(tool) = tool else {
            return std::fs::read(path).map_err(|source| GuestImageError::MissingInput {
                what: "kernel module",
                path: path.clone(),
                source,
            });
        };
        let decompress_error = |source| GuestImageError::Decompress {
            path: path.clone(),
            tool,
            source,
        };
        let out = Command::new(tool)
            .arg("-dc")
            .arg(path)
            .output()
            .map_err(decompress_error)?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(decompress_error(std::io::Error::other(format!(
                "{}: {text}",
                out.status
            ))));
        }
        Ok(out.stdout)
    }
}

/// `modules.dep` and `modules.builtin` of one kernel.
#[derive(Debug, Clone, Default)]
pub struct ModuleIndex {
    dir: PathBuf,
    /// Module name → (path as listed, dependency paths as listed).
    deps: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
}

impl ModuleIndex {
    /// Reads the index of `/lib/modules/<release>` (`modules_dir`).
    ///
    /// # Errors
    ///
    /// Fails when `modules.dep` cannot be read (`modules.builtin` may be absent).
    pub fn load(modules_dir: &Path) -> Result<Self, GuestImageError> {
        let dep_path = modules_dir.join("modules.dep");
        let dep =
            std::fs::read_to_string(&dep_path).map_err(|source| GuestImageError::MissingInput {
                what: "modules.dep",
                path: dep_path,
                source,
            })?;
        let builtin =
            std::fs::read_to_string(modules_dir.join("modules.builtin")).unwrap_or_default();
        Ok(ModuleIndex::parse(modules_dir, &dep, &builtin))
    }

    /// Builds the index from the text of `modules.dep` and `modules.builtin`.
    pub fn parse(modules_dir: &Path, dep: &str, builtin: &str) -> Self {
        let mut deps = HashMap::new();
        for line in dep.lines() {
            let Some((module, rest)) = line.split_once(':') else {
                continue;
            };
            let listed = rest.split_whitespace().map(str::to_string).collect();
            deps.insert(module_name(module), (module.trim().to_string(), listed));
        }
        let builtin = builtin
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(module_name)
            .collect();
        ModuleIndex {
            dir: modules_dir.to_path_buf(),
            deps,
            builtin,
        }
    }

    /// Whether `name` is built into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalize(name))
    }

    /// The modules to load for `names`, dependencies first, each once; built-in ones left out.
    ///
    /// # Errors
    ///
    /// [`GuestImageError::ModuleNotFound`] when a module is neither built in nor in
    /// `modules.dep`.
    pub fn resolve(&self, names: &[&str]) -> Result<Vec<ResolvedModule>, GuestImageError> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            let name = normalize(name);
            if self.is_builtin(&name) {
                continue;
            }
            if !self.deps.contains_key(&name) {
                return Err(GuestImageError::ModuleNotFound {
                    name,
                    modules_dir: self.dir.clone(),
                });
            }
            self.visit(&name, &mut seen, &mut order);
        }
        Ok(order)
    }

    /// Depth-first, dependencies before the module. `modules.dep` lists a module's whole
    /// dependency closure in reverse load order, so its list is walked backwards.
    fn visit(&self, name: &str, seen: &mut HashSet<String>, order: &mut Vec<ResolvedModule>) {
        if !seen.insert(name.to_string()) {
            return;
        }
        let Some((path, listed)) = self.deps.get(name) else {
            return;
        };
        for dep in listed.iter().rev() {
            self.visit(&module_name(dep), seen, order);
        }
        order.push(ResolvedModule {
            name: name.to_string(),
            host_path: self.dir.join(path),
            guest_rel_path: strip_compression(path).to_string(),
        });
    }
}

/// `kernel/drivers/net/virtio_net.ko.xz` → `virtio_net`.
fn module_name(path: &str) -> String {
    let file = path.trim().rsplit('/').next().unwrap_or_default();
    normalize(file.split(".ko").next().unwrap_or(file))
}

/// Module names treat `-` and `_` alike.
fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

fn strip_compression(path: &str) -> &str {
    [".xz", ".zst", ".gz"]
        .iter()
        .find_map(|ext| path.strip_suffix(ext))
        .unwrap_or(path)
}

#[cfg(test)]
#[path = "modules_tests.rs"]
mod tests;
