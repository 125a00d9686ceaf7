//! The demo's child processes: started with their output in a log file, each in its own process
//! group (so a Ctrl-C in the terminal reaches only the demo, which then stops them in order:
//! agents and node daemons, the member clusters, the hub, etcd), watched for unexpected exits,
//! and killed on drop should the demo itself fail.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};
use tokio::process::{Child, Command};
use tracing::{debug, warn};

use super::DemoError;

/// How long a child gets to exit after SIGINT before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// What a child is, which decides when it is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// `kruise-agent` or `kruise-daemon`: stopped first, while their API servers still answer.
    Agent,
    /// `kruise-local run`.
    Cluster,
    /// `kruise-hub serve`: stopped after the clusters.
    Hub,
    /// The hub's etcd: stopped last.
    Etcd,
}

struct Proc {
    role: Role,
    what: String,
    log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

/// A process that exited on its own.
#[derive(Debug)]
pub struct Exit {
    pub what: String,
    pub status: ExitStatus,
    pub log: PathBuf,
}

impl From<Exit> for DemoError {
    fn from(e: Exit) -> Self {
        DemoError::Exited {
            what: e.what,
            status: e.status,
            log: e.log,
        }
    }
}

/// The running children.
#[derive(Default)]
pub struct Procs {
    procs: Vec<Proc>,
}

/// The binary `name` next to the running `kruise-local`.
pub fn sibling_binary(name: &'static str) -> Result<PathBuf, DemoError> {
    let exe = std::env::current_exe().map_err(|source| DemoError::Spawn {
        what: "locating the kruise-local executable".into(),
        source,
    })?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(DemoError::MissingBinary { name, dir })
    }
}

impl Procs {
    /// Starts `program args..` with `envs`, stdout and stderr appended to `log`.
    pub fn spawn<I, S>(
        &mut self,
        role: Role,
        what: impl Into<String>,
        program: &Path,
        args: I,
        envs: &[(&str, &str)],
        log: &Path,
    ) -> Result<u32, DemoError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let what = what.into();
        let spawn_error = |source| DemoError::Spawn {
            what: what.clone(),
            source,
        };
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(spawn_error)?;
        let err = out.try_clone().map_err(spawn_error)?;
        let child = Command::new(program)
            .args(args)
            // Logs go to files: no colour codes in them.
            .env("NO_COLOR", "1")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_error)?;
        let pid = child.id().unwrap_or_default();
        debug!(what, pid, log = %log.display(), "started");
        self.procs.push(Proc {
            role,
            what,
            log: log.to_path_buf(),
            child,
            exited: None,
        });
        Ok(pid)
    }

    /// Processes that exited since the last call (each is reported once).
    pub fn newly_exited(&mut self) -> Vec<Exit> {
        let mut out = Vec::new();
        for p in &mut self.procs {
            if p.exited.is_some() {
                continue;
            }
            if let Ok(Some(status)) = p.child.try_wait() {
                p.exited = Some(status);
                out.push(Exit {
                    what: p.what.clone(),
                    status,
                    log: p.log.clone(),
                });
            }
        }
        out
    }

    /// Fails with the first process that exited; during start-up every child is needed.
    pub fn check_alive(&mut self) -> Result<(), DemoError> {
        match self.newly_exited().into_iter().next() {
            Some(exit) => Err(exit.into()),
            None => Ok(()),
        }
    }

    /// Number of children still running.
    pub fn running(&mut self) -> usize {
        let mut running = 0;
        for p in self.procs.iter_mut().filter(|p| p.exited.is_none()) {
            if matches!(p.child.try_wait(), Ok(None)) {
                running += 1;
            }
        }
        running
    }

    /// Stops every child: SIGINT by role (agents, clusters, hub), then waits for each, killing any
    /// that is still running after the grace period. Returns what had to be killed.
    pub async fn stop(mut self) -> Vec<String> {
        let mut killed = Vec::new();
        for role in [Role::Agent, Role::Cluster, Role::Hub, Role::Etcd] {
            let group: Vec<&mut Proc> = self
                .procs
                .iter_mut()
                .filter(|p| p.role == role && p.exited.is_none())
                .collect();
            for p in &group {
                interrupt(&p.child);
            }
            let waits = group.into_iter().map(|p| async move {
                match tokio::time::timeout(STOP_GRACE, p.child.wait()).await {
                    Ok(Ok(status)) => {
                        debug!(what = p.what, %status, "stopped");
                        None
                    }
                    Ok(Err(e)) => {
                        warn!(what = p.what, error = %e, "waiting for the process failed");
                        None
                    }
                    Err(_) => {
                        let _ = p.child.kill().await;
                        Some(p.what.clone())
                    }
                }
            });
            killed.extend(futures::future::join_all(waits).await.into_iter().flatten());
        }
        killed
    }
}

fn interrupt(child: &Child) {
    let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) else {
        return;
    };
    if let Err(e) = kill_process(pid, Signal::INT) {
        debug!(pid = pid.as_raw_nonzero().get(), error = %e, "SIGINT failed");
    }
}
