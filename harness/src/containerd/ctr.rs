//! `ctr`, containerd's own command-line client, against one instance's socket.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus},
    time::Duration,
};

use super::process::output_within;

/// How long a `ctr` call may take unless [`Ctr::with_limit`] says otherwise.
const DEFAULT_LIMIT: Duration = Duration::from_secs(120);

/// `ctr --address <socket>`: runs containerd's client against one instance.
#[derive(Debug, Clone)]
pub struct Ctr {
    address: PathBuf,
    limit: Duration,
}

/// Why a `ctr` call failed.
#[derive(Debug, thiserror::Error)]
pub enum CtrError {
    /// `ctr` could not be started.
    #[error("run ctr (apt-get install containerd)")]
    Spawn(#[source] std::io::Error),
    /// `ctr` was killed at its time limit.
    #[error("ctr {command} did not finish within {limit:?}")]
    TimedOut {
        /// The arguments after the address.
        command: String,
        /// The limit it ran into.
        limit: Duration,
    },
    /// `ctr` exited with an error.
    #[error("ctr {command} failed ({status}): {stderr}")]
    Failed {
        /// The arguments after the address.
        command: String,
        /// How it exited.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
}

impl Ctr {
    /// `ctr` against the containerd at `address`, each call limited to two minutes.
    pub fn new(address: &Path) -> Ctr {
        Ctr {
            address: address.to_path_buf(),
            limit: DEFAULT_LIMIT,
        }
    }

    /// The same client with each call limited to `limit`.
    pub fn with_limit(mut self, limit: Duration) -> Ctr {
        self.limit = limit;
        self
    }

    /// Runs `ctr --address <socket> --namespace <namespace> <args>`; its stdout.
    ///
    /// # Errors
    ///
    /// Fails when `ctr` cannot run, exits with an error or runs into the time limit.
    pub fn run(&self, namespace: &str, args: &[&str]) -> Result<String, CtrError> {
        let command = format!("-n {namespace} {}", args.join(" "));
        let output = output_within(
            Command::new("ctr")
                .arg("--address")
                .arg(&self.address)
                .args(["--namespace", namespace])
                .args(args),
            self.limit,
        )
        .map_err(CtrError::Spawn)?
        .ok_or_else(|| CtrError::TimedOut {
            command: command.clone(),
            limit: self.limit,
        })?;
        if !output.status.success() {
            return Err(CtrError::Failed {
                command,
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// All namespaces.
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn namespaces(&self) -> Result<Vec<String>, CtrError> {
        self.run("default", &["namespaces", "ls", "-q"])
            .map(|out| quiet_list(&out))
    }

    /// Ids of the tasks of `namespace`.
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn task_ids(&self, namespace: &str) -> Result<Vec<String>, CtrError> {
        self.run(namespace, &["tasks", "ls", "-q"])
            .map(|out| quiet_list(&out))
    }

    /// Ids of the containers of `namespace`.
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn container_ids(&self, namespace: &str) -> Result<Vec<String>, CtrError> {
        self.run(namespace, &["containers", "ls", "-q"])
            .map(|out| quiet_list(&out))
    }

    /// Names of the images of `namespace`.
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn image_names(&self, namespace: &str) -> Result<Vec<String>, CtrError> {
        self.run(namespace, &["images", "ls", "-q"])
            .map(|out| quiet_list(&out))
    }

    /// Imports the OCI image archive `archive` into `namespace` (and unpacks it).
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn import(&self, namespace: &str, archive: &Path) -> Result<(), CtrError> {
        let archive = archive.display().to_string();
        self.run(namespace, &["images", "import", &archive])
            .map(drop)
    }

    /// The status (`ok`, `error`, `skip`) of the plugin `kind`.`id`, from `ctr plugins ls`;
    /// `None` when containerd does not list it.
    ///
    /// # Errors
    ///
    /// As [`Ctr::run`].
    pub fn plugin_status(&self, kind: &str, id: &str) -> Result<Option<String>, CtrError> {
        self.run("default", &["plugins", "ls"])
            .map(|out| parse_plugin_status(&out, kind, id))
    }
}

/// One name per line, as `ls -q` prints them.
fn quiet_list(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// `ctr plugins ls` prints `TYPE ID PLATFORMS STATUS`, one plugin per line.
fn parse_plugin_status(listing: &str, kind: &str, id: &str) -> Option<String> {
    listing.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [k, i, _, status, ..] if *k == kind && *i == id => Some(status.to_string()),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_status_is_read_per_type_and_id() {
        let listing = "\
TYPE                                   ID                       PLATFORMS      STATUS
io.containerd.snapshotter.v1           overlayfs                linux/amd64    ok
io.containerd.service.v1               tasks-service            -              ok
io.containerd.grpc.v1                  tasks                    -              ok
io.containerd.grpc.v1                  cri                      linux/amd64    error
";
        let cases = [
            ("tasks", Some("ok")),
            ("cri", Some("error")),
            ("introspection", None),
        ];
        for (id, want) in cases {
            assert_eq!(
                parse_plugin_status(listing, "io.containerd.grpc.v1", id).as_deref(),
                want,
                "plugin {id}"
            );
        }
        assert_eq!(
            parse_plugin_status(listing, "io.containerd.service.v1", "tasks"),
            None,
            "the id alone does not match"
        );
    }

    #[test]
    fn quiet_lists_skip_blank_lines() {
        assert_eq!(quiet_list("a\n\n b \n"), ["a", "b"]);
    }
}
