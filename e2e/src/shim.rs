//! Fixtures of the shim tests: `ctr` against the private containerd with the lightpod
//! runtime, an event recorder, and the checks that a test's tasks left nothing behind.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use lightpod_harness::image::BUSYBOX_IMAGE;

use crate::{
    containerd::{mounts_mentioning, TestNamespace, LIGHTPOD_RUNTIME},
    leaks::{assert_no_leaks, processes_mentioning},
};

/// Where the shims of the run keep their state (`e2e/run.sh` writes their configuration).
pub const STATE_DIR_ENV: &str = "LIGHTPOD_E2E_STATE_DIR";

/// One shim test: a containerd namespace of its own and the lightpod state directory of it.
pub struct ShimTest {
    /// The test's namespace (cleaned up when dropped).
    pub ns: TestNamespace,
    /// `<state dir>/<namespace>`: where this test's sandboxes live.
    pub state_dir: PathBuf,
}

impl ShimTest {
    /// A fresh namespace with the busybox image.
    pub fn new(test: &str) -> ShimTest {
        let base = std::env::var_os(STATE_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!("{STATE_DIR_ENV} is not set: run the shim tests with e2e/run.sh")
            });
        let ns = TestNamespace::new(test);
        let state_dir = base.join(&ns.name);
        ShimTest { ns, state_dir }
    }

    /// `ctr run --runtime io.containerd.lightpod.v2 <flags> busybox <id> <command…>`.
    pub fn run(&self, flags: &[&str], id: &str, command: &[&str]) -> Output {
        self.run_with_stdin(flags, id, command, None)
    }

    /// As [`ShimTest::run`], with `stdin` fed to ctr (and so to the process).
    pub fn run_with_stdin(
        &self,
        flags: &[&str],
        id: &str,
        command: &[&str],
        stdin: Option<&[u8]>,
    ) -> Output {
        let mut args = vec!["run", "--runtime", LIGHTPOD_RUNTIME];
        args.extend_from_slice(flags);
        args.push(BUSYBOX_IMAGE);
        args.push(id);
        args.extend_from_slice(command);
        let mut child = Command::new("ctr")
            .arg("--address")
            .arg(self.ns.containerd.address())
            .args(["--namespace", &self.ns.name])
            .args(&args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ctr");
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let data = data.to_vec();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = pipe.write_all(&data);
            });
        }
        child.wait_with_output().expect("wait for ctr")
    }

    /// Starts a detached task running `command` and waits until it is RUNNING.
    pub fn run_detached(&self, flags: &[&str], id: &str, command: &[&str]) {
        let mut all = vec!["-d"];
        all.extend_from_slice(flags);
        let out = self.run(&all, id, command);
        assert!(
            out.status.success(),
            "ctr run -d {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.wait_status(id, "RUNNING");
    }

    /// Waits (up to a minute) until task `id` is gone or STOPPED: containerd 1.6 deletes the
    /// task of a shim that died once `delete` cleaned up after it, later releases keep it
    /// as STOPPED.
    pub fn wait_stopped_or_gone(&self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = self.ns.tasks();
            if !tasks.iter().any(|t| t.id == id && t.status != "STOPPED") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never stopped: {tasks:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (up to a minute) until `path` exists in task `id`'s container (a command's
    /// signal that it got past its set-up).
    pub fn wait_for_file(&self, id: &str, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for attempt in 0.. {
            let exec_id = format!("probe-{attempt}");
            let out = self.ns.ctr(&[
                "tasks",
                "exec",
                "--exec-id",
                &exec_id,
                id,
                "test",
                "-e",
                path,
            ]);
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "{path} never appeared in {id}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (up to a minute) until task `id` has `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let tasks = self.ns.tasks();
            if tasks.iter().any(|t| t.id == id && t.status == status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never became {status}: {tasks:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Deletes every task and container of the test, then checks that nothing of them is
    /// left: no process or mount of their sandboxes, no state, no rootfs mount.
    pub fn assert_clean(&self) {
        let failed = self.ns.clean_up_containers();
        assert!(failed.is_empty(), "clean-up failed: {failed:#?}");
        self.assert_nothing_left();
    }

    /// Checks that no process, mount or state of the test's sandboxes is left.
    pub fn assert_nothing_left(&self) {
        // After a shim died, containerd runs `<shim> delete` for it, which may still be
        // finishing on a loaded host when the task is already gone.
        let needle = format!("-namespace {} ", self.ns.name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut shims = processes_mentioning(&needle);
        while !shims.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
            shims = processes_mentioning(&needle);
        }
        assert_no_leaks(&self.state_dir);
        let mounts = mounts_mentioning(&self.ns.name);
        assert!(mounts.is_empty(), "mounts left behind: {mounts:#?}");
        assert!(shims.is_empty(), "shims left behind: {shims:#?}");
    }
}

/// The events containerd publishes for one namespace, recorded by `ctr events`.
pub struct EventRecorder {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

/// One recorded event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// `/tasks/create`, `/tasks/exit`, ….
    pub topic: String,
    /// The event as JSON.
    pub body: serde_json::Value,
}

impl EventRecorder {
    /// Starts recording the events of `test`'s namespace.
    pub fn start(test: &ShimTest) -> EventRecorder {
        let mut child = Command::new("ctr")
            .arg("--address")
            .arg(test.ns.containerd.address())
            .args(["events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let namespace = test.ns.name.clone();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(&format!(" {namespace} ")) {
                    sink.lock().unwrap().push(line);
                }
            }
        });
        // ctr subscribes asynchronously; give it a moment before the test acts.
        std::thread::sleep(Duration::from_millis(300));
        EventRecorder { child, lines }
    }

    /// The task events recorded so far, in order.
    pub fn task_events(&self) -> Vec<RecordedEvent> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                // `<date> <time> <zone> <zone name> <namespace> <topic> <json>`
                let start = line.find(" /tasks/")?;
                let rest = &line[start + 1..];
                let (topic, json) = rest.split_once(' ')?;
                Some(RecordedEvent {
                    topic: topic.to_string(),
                    body: serde_json::from_str(json).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Waits (up to a minute) until an event on `topic` for container `id` was recorded.
    pub fn wait_for(&self, topic: &str, id: &str) -> RecordedEvent {
        self.wait_until(&format!("{topic} for {id}"), |e| {
            e.topic == topic && e.body["container_id"] == id
        })
    }

    /// Waits (up to a minute) until the exit of task `id`'s init process was recorded (the
    /// exits of its exec processes carry the same container id but their own `id`).
    pub fn wait_for_init_exit(&self, id: &str) -> RecordedEvent {
        self.wait_until(&format!("/tasks/exit of {id}'s init"), |e| {
            e.topic == "/tasks/exit" && e.body["container_id"] == id && e.body["id"] == id
        })
    }

    fn wait_until(&self, what: &str, found: impl Fn(&RecordedEvent) -> bool) -> RecordedEvent {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(event) = self.task_events().into_iter().find(&found) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no event {what}; got {:#?}",
                self.task_events()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for EventRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pids of processes whose command line contains every one of `needles`.
pub fn pids_matching(needles: &[&str]) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if needles.iter().all(|n| text.contains(n)) {
            found.push(pid);
        }
    }
    found
}

/// Stdout of a command output, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stderr of a command output, as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
