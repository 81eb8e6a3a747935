//! Running the `lightpod` binary against a private state directory and configuration.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// A private lightpod environment for one test: its own state directory and config file.
pub struct TestEnv {
    /// Temporary directory holding everything of this test.
    pub dir: tempfile::TempDir,
    /// `runtime.state_dir` of the config.
    pub state_dir: PathBuf,
    /// The config file passed to `lightpod --config`.
    pub config: PathBuf,
}

/// `virtiofsd` as installed by `deploy/install.sh`, or the one `cargo install` put in PATH.
pub fn virtiofsd() -> PathBuf {
    if let Some(path) = std::env::var_os("LIGHTPOD_VIRTIOFSD") {
        return PathBuf::from(path);
    }
    let installed = PathBuf::from("/usr/local/lib/lightpod/virtiofsd");
    if installed.exists() {
        return installed;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("virtiofsd"))
                .find(|p| p.exists())
        })
        .unwrap_or(installed)
}

/// The guest kernel the tests boot: `$LIGHTPOD_E2E_KERNEL`, else the configuration default.
pub fn kernel_line() -> String {
    std::env::var("LIGHTPOD_E2E_KERNEL")
        .map(|k| format!("kernel = {k:?}\n"))
        .unwrap_or_default()
}

impl TestEnv {
    /// A fresh environment; `qemu_extra` is appended to the `[qemu]` section of the config.
    pub fn new(qemu_extra: &str) -> TestEnv {
        TestEnv::with_kernel(None, qemu_extra)
    }

    /// A fresh environment that boots `kernel` instead of the default guest kernel.
    pub fn with_kernel(kernel: Option<&Path>, qemu_extra: &str) -> TestEnv {
        crate::require_root();
        let dir = tempfile::Builder::new()
            .prefix("lightpod-e2e-")
            .tempdir()
            .unwrap();
        let state_dir = dir.path().join("state");
        let config = dir.path().join("config.toml");
        let text = format!(
            "[runtime]\nstate_dir = {state:?}\n\n[guest]\nagent = {agent:?}\nimage_cache = {cache:?}\n{kernel}\n[qemu]\nvirtiofsd = {vfsd:?}\n{qemu_extra}\n",
            state = state_dir,
            agent = crate::agent_binary(),
            cache = crate::cache_dir().join("guest"),
            kernel = kernel.map_or_else(kernel_line, |k| format!("kernel = {k:?}\n")),
            vfsd = virtiofsd(),
        );
        std::fs::write(&config, text).unwrap();
        TestEnv {
            dir,
            state_dir,
            config,
        }
    }

    /// Runs `lightpod --config <cfg> <args>` with `stdin` fed to it.
    pub fn lightpod(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut child = Command::new(crate::bin("lightpod"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let output = child.wait_with_output().unwrap();
        let _ = feeder.join();
        output
    }

    /// `lightpod run --rootfs <rootfs> <flags> -- <cmd>`.
    pub fn run(&self, rootfs: &Path, flags: &[&str], cmd: &[&str], stdin: &[u8]) -> Output {
        let rootfs = rootfs.to_string_lossy().into_owned();
        let mut args = vec!["run", "--rootfs", rootfs.as_str()];
        args.extend_from_slice(flags);
        args.push("--");
        args.extend_from_slice(cmd);
        self.lightpod(&args, stdin)
    }
}

/// stdout of an output as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of an output as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
