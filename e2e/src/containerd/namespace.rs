//! A containerd namespace of one test, emptied and removed when the test ends.

use std::sync::atomic::{AtomicU32, Ordering};

use super::Containerd;

/// A namespace private to one test, with the busybox image imported. Dropping it kills and
/// deletes its tasks, deletes its containers and images, and removes the namespace.
pub struct TestNamespace {
    /// The containerd it lives in.
    pub containerd: Containerd,
    /// `e2e-<test>-<pid>-<n>`.
    pub name: String,
}

impl TestNamespace {
    /// A fresh namespace for the test `test` in the run's containerd, holding
    /// [`lightpod_harness::image::BUSYBOX_IMAGE`].
    pub fn new(test: &str) -> TestNamespace {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let containerd = Containerd::from_env();
        let name = format!(
            "e2e-{}-{}-{}",
            test.replace(|c: char| !c.is_ascii_alphanumeric(), "-"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = TestNamespace { containerd, name };
        namespace
            .containerd
            .ctr_ok("default", &["namespaces", "create", &namespace.name]);
        namespace
            .containerd
            .import(&namespace.name, &crate::images().busybox.path);
        namespace
    }

    /// Runs `ctr` in this namespace.
    pub fn ctr(&self, args: &[&str]) -> std::process::Output {
        self.containerd.ctr(&self.name, args)
    }

    /// Runs `ctr` in this namespace; its stdout, failing the test if it fails.
    pub fn ctr_ok(&self, args: &[&str]) -> String {
        self.containerd.ctr_ok(&self.name, args)
    }

    /// Tasks of this namespace.
    pub fn tasks(&self) -> Vec<super::TaskInfo> {
        self.containerd.tasks(&self.name)
    }

    /// Containers of this namespace.
    pub fn containers(&self) -> Vec<String> {
        self.containerd.containers(&self.name)
    }

    /// Snapshots of this namespace (image layers included).
    pub fn snapshots(&self) -> Vec<String> {
        self.containerd.snapshots(&self.name)
    }

    /// Kills and deletes every task, then deletes every container; returns what could not be
    /// deleted (empty when all went well).
    pub fn clean_up_containers(&self) -> Vec<String> {
        for task in self.tasks() {
            let _ = self.ctr(&["tasks", "kill", "--all", "--signal", "SIGKILL", &task.id]);
        }
        let mut failed = Vec::new();
        for task in self.tasks() {
            let out = self.ctr(&["tasks", "delete", "--force", &task.id]);
            if !out.status.success() {
                failed.push(format!(
                    "task {}: {}",
                    task.id,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        for container in self.containers() {
            let out = self.ctr(&["containers", "delete", &container]);
            if !out.status.success() {
                failed.push(format!(
                    "container {container}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        failed
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let failed = self.clean_up_containers();
        if !failed.is_empty() {
            eprintln!("namespace {}: clean-up failed: {failed:#?}", self.name);
            return;
        }
        let images = self.containerd.images(&self.name);
        if !images.is_empty() {
            let mut args = vec!["images", "rm", "--sync"];
            args.extend(images.iter().map(String::as_str));
            let _ = self.ctr(&args);
        }
        let out = self
            .containerd
            .ctr("default", &["namespaces", "remove", &self.name]);
        if !out.status.success() {
            eprintln!(
                "namespace {}: remove failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
