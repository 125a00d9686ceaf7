//! Harness for end-to-end suites and benchmarks: starts `kruise-local` clusters (and later hubs
//! and agents) as real processes and gives back kube clients for them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kube::Client;

pub mod hub;

/// The directory holding the workspace's binaries: next to the running executable
/// (`target/debug` or `target/release`), or `KRUISE_BIN_DIR`.
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KRUISE_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    // Test executables live in target/<profile>/deps.
    if dir.ends_with("deps") {
        dir.parent().map(Path::to_path_buf).unwrap_or(dir)
    } else {
        dir
    }
}

/// A `kruise-local` process with its own state directory; killed on drop.
pub struct LocalCluster {
    pub name: String,
    pub kubeconfig: PathBuf,
    pub state: tempfile::TempDir,
    child: Child,
}

impl LocalCluster {
    /// Starts `kruise-local run` with `nodes` nodes and extra flags, and waits until its
    /// kubeconfig exists and the API answers.
    pub async fn start(name: &str, nodes: usize, extra: &[&str]) -> anyhow::Result<LocalCluster> {
        let state = tempfile::tempdir()?;
        let kubeconfig = state.path().join("kubeconfig");
        let bin = bin_dir().join("kruise-local");
        if !bin.exists() {
            bail!(
                "{} not found: build it with cargo build -p kruise-local",
                bin.display()
            );
        }
        let log = std::fs::File::create(state.path().join("kruise-local.log"))?;
        let child = Command::new(&bin)
            .args([
                "run",
                "--name",
                name,
                "--nodes",
                &nodes.to_string(),
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(state.path())
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let cluster = LocalCluster {
            name: name.to_string(),
            kubeconfig,
            state,
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if cluster.kubeconfig.exists() {
                if let Ok(client) = cluster.client().await {
                    if client.apiserver_version().await.is_ok() {
                        return Ok(cluster);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "kruise-local {name} did not come up in 30 s; see {}",
                    cluster.state.path().join("kruise-local.log").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A kube client for the cluster's API server.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        config.read_timeout = Some(Duration::from_secs(300));
        Ok(Client::try_from(config)?)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // KRUISE_KEEP_STATE=1 keeps state directories and logs for a post-mortem.
        if std::env::var_os("KRUISE_KEEP_STATE").is_some() {
            let dir =
                std::mem::replace(&mut self.state, tempfile::TempDir::new().expect("temp dir"))
                    .keep();
            eprintln!(
                "kept state of kruise-local {} in {}",
                self.name,
                dir.display()
            );
        }
    }
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("condition not met within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
