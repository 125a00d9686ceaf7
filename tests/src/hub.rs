//! Harness for hub suites: etcd, `kruise-hub` replicas, `kruise-hub cluster add` and
//! `kruise-agent` processes joined to a hub.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kube::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{bin_dir, LocalCluster};

/// A free loopback port (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET path` over plain HTTP; returns the body.
pub async fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.contains(" 200 ") {
        bail!("GET {path}: {head}");
    }
    Ok(body.to_string())
}

/// The value of an unlabelled (or fully labelled) sample in Prometheus text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn spawn_logged(bin: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    // The processes log with tracing to stdout; keep it with stderr in one file.
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

/// Sends SIGTERM and waits for the process.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// One `kruise-hub serve` replica over a shared etcd; killed on drop.
pub struct HubReplica {
    pub id: String,
    pub grpc_port: u16,
    pub health_port: u16,
    pub kubeconfig: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl HubReplica {
    /// Starts a replica; all replicas of a hub share `dir/pki` and `admin_token`.
    pub async fn start(
        id: &str,
        etcd_endpoint: &str,
        dir: &Path,
        admin_token: &str,
        lease_ttl_seconds: u64,
    ) -> anyhow::Result<HubReplica> {
        let (grpc_port, health_port) = (free_port()?, free_port()?);
        let kubeconfig = dir.join(format!("{id}.kubeconfig"));
        let args: Vec<String> = [
            "serve",
            "--etcd-endpoints",
            etcd_endpoint,
            "--listen",
            "127.0.0.1:0",
            "--grpc-listen",
            &format!("127.0.0.1:{grpc_port}"),
            "--health-listen",
            &format!("127.0.0.1:{health_port}"),
            "--replica-id",
            id,
            "--lease-ttl-seconds",
            &lease_ttl_seconds.to_string(),
            "--admin-token",
            admin_token,
            "--heartbeat-interval-seconds",
            "1",
            "--heartbeat-timeout-seconds",
            "5",
            "--log",
            "info,kruise_hub=debug",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([
            "--pki-dir".to_string(),
            dir.join("pki").display().to_string(),
            "--state-dir".to_string(),
            dir.join(id).display().to_string(),
            "--kubeconfig-out".to_string(),
            kubeconfig.display().to_string(),
        ])
        .collect();
        let mut replica = HubReplica {
            id: id.to_string(),
            grpc_port,
            health_port,
            kubeconfig,
            log: dir.join(format!("{id}.log")),
            args,
            child: None,
        };
        replica.restart().await?;
        Ok(replica)
    }

    /// (Re)starts the process with the same flags and waits for /readyz.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        let bin = bin_dir().join("kruise-hub");
        let _ = std::fs::remove_file(&self.kubeconfig);
        self.child = Some(spawn_logged(&bin, &self.args, &self.log)?);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(self.health_port, "/readyz").await.is_err() || !self.kubeconfig.exists() {
            if Instant::now() > deadline {
                bail!(
                    "hub {} not ready in 30 s; see {}",
                    self.id,
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// `https://127.0.0.1:<grpc port>`.
    pub fn grpc_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.grpc_port)
    }

    /// SIGKILL (no graceful release of shards).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The replica's /metrics text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        http_get(self.health_port, "/metrics").await
    }

    /// Shards this replica owns (0 when it does not answer).
    pub async fn owned_shards(&self) -> usize {
        match self.metrics().await {
            Ok(text) => metric(&text, "kruise_hub_owned_shards").unwrap_or(0.0) as usize,
            Err(_) => 0,
        }
    }

    /// A kube client for the hub API.
    pub async fn client(&self) -> anyhow::Result<Client> {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?;
        Ok(Client::try_from(config)?)
    }
}

impl Drop for HubReplica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `kruise-hub --kubeconfig K cluster <args>`.
pub fn hub_cluster_command(kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(bin_dir().join("kruise-hub"))
        .arg("cluster")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .context("running kruise-hub cluster")?;
    if !out.status.success() {
        bail!(
            "kruise-hub cluster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// A `kruise-agent` joined to the hub; killed on drop.
pub struct HubAgent {
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl HubAgent {
    /// Starts an agent for `cluster` with `join_file` (CloneSet controller on, no webhooks).
    pub fn start(cluster: &LocalCluster, join_file: &Path) -> anyhow::Result<HubAgent> {
        let args = vec![
            "--kubeconfig".to_string(),
            cluster.kubeconfig.display().to_string(),
            "--hub-join-file".to_string(),
            join_file.display().to_string(),
            "--leader-elect=false".to_string(),
            "--disable-webhook-server".to_string(),
            "--metrics-addr".to_string(),
            "127.0.0.1:0".to_string(),
            "--log".to_string(),
            "info,kruise_agent::hublink=debug".to_string(),
        ];
        let mut agent = HubAgent {
            args,
            log: cluster.state.path().join("kruise-agent.log"),
            child: None,
        };
        agent.restart()?;
        Ok(agent)
    }

    /// (Re)starts the process.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.child = Some(spawn_logged(
            &bin_dir().join("kruise-agent"),
            &self.args,
            &self.log,
        )?);
        Ok(())
    }

    /// Stops the agent with SIGTERM (it saves its link state).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }
}

impl Drop for HubAgent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
