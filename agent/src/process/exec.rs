//! The process half of a container init: session and terminal, limits, credentials,
//! capabilities, working directory, then `execve`. Runs in the single-threaded container
//! init, after `container::setup`.

use std::{
    ffi::CString,
    fs,
    os::unix::{ffi::OsStrExt, fs::PermissionsExt, net::UnixStream},
    path::{Path, PathBuf},
};

use nix::{
    sys::{
        resource::setrlimit,
        signal::{sigprocmask, SigHandler, SigSet, SigmaskHow, Signal},
        stat::{umask, Mode},
    },
    unistd::{self, Gid, Uid},
};

use crate::{
    container::caps::{self, Capability},
    init::SetupFailure,
    process::pty,
    spec::ProcessSpec,
};

/// `PATH` used when the process's environment has none (the OCI runtimes' default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applies the process settings and runs it. Returns only on failure.
pub fn finish_and_exec(control: &mut UnixStream, p: &ProcessSpec) -> SetupFailure {
    match prepare(control, p) {
        Ok(exec) => exec.run(),
        Err(failure) => failure,
    }
}

/// A process ready to `execve`.
struct Exec {
    path: CString,
    args: Vec<CString>,
    env: Vec<CString>,
}

fn prepare(control: &mut UnixStream, p: &ProcessSpec) -> Result<Exec, SetupFailure> {
    let errno = |step: &'static str| move |e: nix::Error| SetupFailure::io(step)(e.into());

    // Its own session: signals for the agent's session never reach it, and it can own a tty.
    unistd::setsid().map_err(errno("setsid"))?;
    if p.terminal {
        pty::attach_new_terminal(control, p.console_size)?;
    }

    for limit in &p.rlimits {
        setrlimit(limit.kind.resource(), limit.soft, limit.hard)
            .map_err(|e| SetupFailure::io(format!("set {}", limit.kind.name()))(e.into()))?;
    }

    set_credentials(p)?;
    umask(Mode::from_bits_truncate(p.umask.unwrap_or(0o022)));
    unistd::chdir(&p.cwd)
        .map_err(|e| SetupFailure::io(format!("chdir {}", p.cwd.display()))(e.into()))?;

    let path = resolve_executable(&p.args[0], &p.env, &p.cwd)?;
    let cstring = |s: &[u8], what: &str| {
        CString::new(s).map_err(|_| SetupFailure::Step {
            step: format!("prepare {what}"),
            detail: "contains a NUL byte".into(),
        })
    };
    Ok(Exec {
        path: cstring(path.as_os_str().as_bytes(), "executable path")?,
        args: p
            .args
            .iter()
            .map(|a| cstring(a.as_bytes(), "args"))
            .collect::<Result<_, _>>()?,
        env: p
            .env
            .iter()
            .map(|e| cstring(e.as_bytes(), "env"))
            .collect::<Result<_, _>>()?,
    })
}

impl Exec {
    fn run(self) -> SetupFailure {
        reset_signals();
        let Err(err) = unistd::execve(&self.path, &self.args, &self.env);
        let hint = match err {
            nix::Error::ENOENT => " (its interpreter or dynamic loader is missing)",
            _ => "",
        };
        SetupFailure::Step {
            step: format!("exec {}", self.path.to_string_lossy()),
            detail: format!("{}{hint}", std::io::Error::from(err)),
        }
    }
}

/// Groups, gid and uid, keeping the requested capabilities across the switch, then
/// `no_new_privs`.
fn set_credentials(p: &ProcessSpec) -> Result<(), SetupFailure> {
    let errno = |step: &'static str| move |e: nix::Error| SetupFailure::io(step)(e.into());
    let last_cap = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(40);
    let keep: Vec<Capability> = match &p.capabilities {
        Some(list) => list.clone(),
        None => caps::all_up_to(last_cap),
    };

    if p.capabilities.is_some() {
        for cap in caps::all_up_to(last_cap)
            .into_iter()
            .filter(|c| !keep.contains(c))
        {
            // SAFETY: PR_CAPBSET_DROP takes the capability number as its only argument.
            let rc = unsafe {
                libc::prctl(
                    libc::PR_CAPBSET_DROP,
                    libc::c_ulong::from(cap.number()),
                    0,
                    0,
                    0,
                )
            };
            if rc < 0 {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINVAL) {
                    return Err(SetupFailure::io(format!("drop {}", cap.name()))(err));
                }
            }
        }
    }

    nix::sys::prctl::set_keepcaps(true).map_err(errno("keep capabilities"))?;
    let groups: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    unistd::setgroups(&groups).map_err(errno("setgroups"))?;
    let gid = Gid::from_raw(p.gid);
    unistd::setresgid(gid, gid, gid).map_err(errno("setgid"))?;
    let uid = Uid::from_raw(p.uid);
    unistd::setresuid(uid, uid, uid).map_err(errno("setuid"))?;
    nix::sys::prctl::set_keepcaps(false).map_err(errno("keep capabilities"))?;

    capset(&keep).map_err(SetupFailure::io("set capabilities"))?;
    if p.no_new_privileges {
        nix::sys::prctl::set_no_new_privs().map_err(errno("set no_new_privs"))?;
    }
    Ok(())
}

/// `capset(2)` with the same set as effective, permitted and inheritable.
fn capset(keep: &[Capability]) -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;

    let words = caps::to_words(keep);
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let data = words.map(|w| Data {
        effective: w,
        permitted: w,
        inheritable: w,
    });
    // SAFETY: version 3 of capset reads one header and two data structs, laid out as the
    // kernel's `__user_cap_header_struct` / `__user_cap_data_struct`; both live across the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Restores default dispositions and an empty mask: ignored signals would survive `execve`
/// (the Rust runtime ignores SIGPIPE).
fn reset_signals() {
    for signal in Signal::iterator() {
        if signal == Signal::SIGKILL || signal == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: single-threaded process about to execve; SIG_DFL installs no handler code.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Finds the executable: a name with `/` is taken as it is (relative to `cwd`); otherwise
/// it is searched in the `PATH` of `env`, or the default PATH.
pub fn resolve_executable(name: &str, env: &[String], cwd: &Path) -> Result<PathBuf, SetupFailure> {
    let runnable = |p: &Path| {
        fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = cwd.join(name);
        return if fs::metadata(&path).is_ok() {
            Ok(path)
        } else {
            Err(SetupFailure::ExecutableNotFound {
                executable: name.into(),
                path: String::new(),
            })
        };
    }
    let search = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in search.split(':') {
        let dir = if dir.is_empty() { cwd } else { Path::new(dir) };
        let candidate = cwd.join(dir).join(name);
        if runnable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(SetupFailure::ExecutableNotFound {
        executable: name.into(),
        path: format!(" (PATH={search})"),
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn finds_executables_in_path_only_when_runnable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).expect("mkdir");
        let tool = bin.join("tool");
        fs::write(&tool, "#!/bin/sh\n").expect("write");
        fs::set_permissions(&tool, fs::Permissions::from_mode(0o755)).expect("chmod");
        let data = bin.join("data");
        fs::write(&data, "").expect("write");

        let env = vec![format!("PATH=/nonexistent:{}", bin.display())];
        let cwd = Path::new("/");
        assert_eq!(
            resolve_executable("tool", &env, cwd),
            Ok(tool.clone()),
            "found in PATH"
        );
        assert!(
            matches!(
                resolve_executable("data", &env, cwd),
                Err(SetupFailure::ExecutableNotFound { .. })
            ),
            "a file without x bits is not runnable"
        );
        match resolve_executable("nope", &env, cwd) {
            Err(SetupFailure::ExecutableNotFound { executable, path }) => {
                assert_eq!(executable, "nope");
                assert!(
                    path.contains("/nonexistent"),
                    "message names the PATH: {path}"
                );
            }
            other => panic!("expected not found, got {other:?}"),
        }
        let abs = tool.to_str().expect("utf-8 path");
        assert_eq!(
            resolve_executable(abs, &[], cwd),
            Ok(tool),
            "absolute path as is"
        );
        assert!(
            resolve_executable("/no/such/file", &[], cwd).is_err(),
            "missing absolute path"
        );
    }
}
