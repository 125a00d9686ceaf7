//! Test and benchmark utility: runs a throwaway single-member etcd (Debian `etcd-server`) on free
//! loopback ports with its own data directory, and stops it on drop.
//!
//! Not meant for production use: the data directory lives on tmpfs (`/dev/shm`) when available and
//! is deleted when the process is dropped.

use std::fs::{self, File};
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a fresh etcd gets to start answering.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Failure to start a throwaway etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdProcessError {
    #[error("etcd not installed (apt-get install etcd-server)")]
    NotInstalled,
    #[error("preparing etcd at {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("etcd did not become ready (gave up after {waited:?}); log tail:\n{log_tail}")]
    NotReady { waited: Duration, log_tail: String },
}

/// Why one start attempt failed.
enum Start {
    /// The process exited on its own: worth retrying on other ports.
    Exited(EtcdProcessError),
    Failed(EtcdProcessError),
}

/// A running etcd; killed (and its data removed) on drop.
pub struct EtcdProcess {
    child: Child,
    endpoint: String,
    root: PathBuf,
}

/// The `etcd` binary: on `PATH`, else `/usr/bin/etcd`.
pub fn etcd_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    on_path
        .map(|dir| dir.join("etcd"))
        .chain([PathBuf::from("/usr/bin/etcd")])
        .find(|candidate| candidate.is_file())
}

fn free_port() -> Result<u16, EtcdProcessError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|source| EtcdProcessError::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })?;
    Ok(listener.port())
}

fn scratch_root() -> PathBuf {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.join(format!(
        "kruise-etcd-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

impl EtcdProcess {
    /// Starts etcd and waits until it serves requests. A start that fails because the process
    /// exited (typically a port taken between choosing and binding it) is retried on new ports.
    pub async fn start() -> Result<Self, EtcdProcessError> {
        const ATTEMPTS: usize = 3;
        let binary = etcd_binary().ok_or(EtcdProcessError::NotInstalled)?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&binary).await {
                Err(Start::Exited(_)) if attempt < ATTEMPTS => attempt += 1,
                Err(Start::Exited(e) | Start::Failed(e)) => return Err(e),
                Ok(process) => return Ok(process),
            }
        }
    }

    async fn start_once(binary: &Path) -> Result<Self, Start> {
        let root = scratch_root();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| Start::Failed(EtcdProcessError::Io { path, source })
        };
        fs::create_dir_all(&root).map_err(io(&root))?;
        let log_path = root.join("etcd.log");
        let log = File::create(&log_path).map_err(io(&log_path))?;
        let log_err = log.try_clone().map_err(io(&log_path))?;
        let (client_port, peer_port) = (
            free_port().map_err(Start::Failed)?,
            free_port().map_err(Start::Failed)?,
        );
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let spawned = Command::new(binary)
            .args(["--name", "t", "--data-dir"])
            .arg(root.join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .arg(format!("--initial-cluster=t={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&root);
                return Err(io(binary)(e));
            }
        };
        // From here on, dropping `process` stops etcd and removes its directory.
        let mut process = Self {
            child,
            endpoint: client_url,
            root,
        };
        process.wait_ready(&log_path).await?;
        Ok(process)
    }

    async fn wait_ready(&mut self, log_path: &Path) -> Result<(), Start> {
        let started = Instant::now();
        while started.elapsed() < READY_TIMEOUT {
            if let Ok(Some(_)) = self.child.try_wait() {
                let waited = started.elapsed();
                return Err(Start::Exited(EtcdProcessError::NotReady {
                    waited,
                    log_tail: log_tail(log_path),
                }));
            }
            let probe = async {
                let mut client =
                    etcd_client::Client::connect([self.endpoint.as_str()], None).await?;
                client.status().await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(1), probe).await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let waited = started.elapsed();
        Err(Start::Failed(EtcdProcessError::NotReady {
            waited,
            log_tail: log_tail(log_path),
        }))
    }

    /// The etcd server's process id (e.g. to read its memory use).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The client URL, e.g. `http://127.0.0.1:23791`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return format!("(cannot read {})", path.display());
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.root);
    }
}
