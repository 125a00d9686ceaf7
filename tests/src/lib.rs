//! Harness for end-to-end suites and benchmarks: starts `kruise-local` clusters (and later hubs
//! and agents) as real processes and gives back kube clients for them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
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
    args: Vec<String>,
}

/// Starts `kruise-local` with `args`, appending its stdout and stderr to `log`.
fn spawn_local(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let err = out.try_clone()?;
    Command::new(bin)
        .args(args)
        .stdout(out)
        .stderr(err)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
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
        let mut args: Vec<String> = [
            "run",
            "--name",
            name,
            "--nodes",
            &nodes.to_string(),
            "--listen",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push("--kubeconfig-out".into());
        args.push(kubeconfig.display().to_string());
        args.push("--state-dir".into());
        args.push(state.path().display().to_string());
        args.extend(extra.iter().map(|a| a.to_string()));
        let child = spawn_local(&bin, &args, &state.path().join("kruise-local.log"))?;
        let cluster = LocalCluster {
            name: name.to_string(),
            kubeconfig,
            state,
            child,
            args,
        };
        cluster.wait_up().await?;
        Ok(cluster)
    }

    /// Kills the process (SIGKILL): the API server goes away at once, its state stays on disk.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the process again over the same state directory and on the same port (so existing
    /// kubeconfigs keep working) and waits until the API answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let server = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .context("kubeconfig has no server")?;
        let port = server
            .rsplit(':')
            .next()
            .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
            .with_context(|| format!("no port in server {server}"))?;
        let mut args = self.args.clone();
        if let Some(i) = args.iter().position(|a| a == "--listen") {
            if let Some(listen) = args.get_mut(i + 1) {
                *listen = format!("127.0.0.1:{port}");
            }
        }
        self.child = spawn_local(
            &bin_dir().join("kruise-local"),
            &args,
            &self.state.path().join("kruise-local.log"),
        )?;
        self.wait_up().await
    }

    /// Waits until the kubeconfig exists and the API answers.
    async fn wait_up(&self) -> anyhow::Result<()> {
        let name = &self.name;
        let cluster = self;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if cluster.kubeconfig.exists() {
                if let Ok(client) = cluster.client().await {
                    if client.apiserver_version().await.is_ok() {
                        return Ok(());
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
