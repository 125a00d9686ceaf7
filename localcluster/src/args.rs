//! Command line of `kruise-local` and the `run` command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args as ClapArgs, Parser, Subcommand};
use kruise_apiserver::store::MemoryStore;
use kruise_apiserver::{ServerConfig, TokenAuth};
use serde_json::Value;
use tracing::info;

use crate::nodes::{self, NodeLayout};

/// kruise-local: a simulated Kubernetes member cluster.
#[derive(Parser, Debug)]
#[command(name = "kruise-local", version, about)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a local cluster until interrupted (Ctrl-C or SIGTERM).
    Run(RunArgs),
    /// The federation demo: a kruise-hub, member clusters in three regions with agents and node
    /// daemons, the federated UnitedDeployment example applied to the hub, live progress and the
    /// placement table; keeps running for kubectl until Ctrl-C.
    Demo(kruise_local::demo::DemoArgs),
}

/// Flags of `kruise-local run`.
#[derive(ClapArgs, Debug)]
pub struct RunArgs {
    /// Cluster name (prefix of node names, kubeconfig cluster/context name).
    #[arg(long, env = "KRUISE_LOCAL_NAME", default_value = "local")]
    pub name: String,
    /// Number of simulated nodes.
    #[arg(long, env = "KRUISE_LOCAL_NODES", default_value_t = 3)]
    pub nodes: usize,
    /// Value of the nodes' `topology.kubernetes.io/region` label.
    #[arg(long, env = "KRUISE_LOCAL_REGION", default_value = "region-1")]
    pub region: String,
    /// Zones (comma-separated); nodes are spread over them round-robin.
    #[arg(
        long,
        env = "KRUISE_LOCAL_ZONES",
        value_delimiter = ',',
        default_value = "zone-a"
    )]
    pub zones: Vec<String>,
    /// Address of the API server (port 0 picks a free port).
    #[arg(long, env = "KRUISE_LOCAL_LISTEN", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where to write the admin kubeconfig (default: STATE_DIR/kubeconfig).
    #[arg(long, env = "KRUISE_LOCAL_KUBECONFIG_OUT")]
    pub kubeconfig_out: Option<PathBuf>,
    /// Directory for the cluster's state (objects under `store/`, PKI under `pki/`); reused on restart.
    #[arg(
        long,
        env = "KRUISE_LOCAL_STATE_DIR",
        default_value = "./kruise-local-state"
    )]
    pub state_dir: PathBuf,
    /// Directory of CustomResourceDefinition YAML files to install at start.
    #[arg(long, env = "KRUISE_LOCAL_CRDS_DIR")]
    pub crds_dir: Option<PathBuf>,
    /// Extra DNS names or IPs for the API server's certificate.
    #[arg(long, env = "KRUISE_LOCAL_EXTRA_HOSTS", value_delimiter = ',')]
    pub extra_hosts: Vec<String>,
    /// Seconds between node heartbeats.
    #[arg(long, env = "KRUISE_LOCAL_HEARTBEAT_SECONDS", default_value_t = 10)]
    pub heartbeat_seconds: u64,
    #[command(flatten)]
    pub latency: kruise_local::sim::LatencyArgs,
}

/// Reads every CRD document from `*.yaml`/`*.yml`/`*.json` files in a directory.
pub fn load_crds(dir: &Path) -> anyhow::Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading CRD directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc)
                .with_context(|| format!("parsing {}", file.display()))?;
            if value.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition") {
                crds.push(value);
            }
        }
    }
    Ok(crds)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

impl Args {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Run(run) => run.run().await,
            Command::Demo(demo) => demo.run().await,
        }
    }
}

impl RunArgs {
    /// Starts the API server and nodes, writes the kubeconfig, and runs until a shutdown signal.
    pub async fn run(self) -> anyhow::Result<()> {
        let RunArgs {
            name,
            nodes: node_count,
            region,
            zones,
            listen,
            kubeconfig_out,
            state_dir,
            crds_dir,
            extra_hosts,
            heartbeat_seconds,
            latency,
        } = self;
        std::fs::create_dir_all(&state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let crds = match &crds_dir {
            Some(dir) => load_crds(dir)?,
            None => Vec::new(),
        };
        let store_dir = state_dir.join("store");
        let store = MemoryStore::open(&store_dir)
            .with_context(|| format!("opening the store in {}", store_dir.display()))?;
        let mut config = ServerConfig::new(listen, Arc::new(store), state_dir.join("pki"));
        config.cluster_name = name.clone();
        config.extra_hosts = extra_hosts;
        config.tokens = TokenAuth::disabled();
        config.admin_token = Some(admin_token(&state_dir)?);
        config.crds = crds;
        let server = kruise_apiserver::start(config).await?;
        let client = server.client();
        let layout = NodeLayout {
            cluster: name.clone(),
            count: node_count,
            region,
            zones,
        };
        let node_names = nodes::register(&client, &layout, chrono::Utc::now()).await?;
        let kubeconfig = kubeconfig_out.unwrap_or_else(|| state_dir.join("kubeconfig"));
        server.write_kubeconfig(&kubeconfig, &name)?;
        info!(url = %server.url(), nodes = node_names.len(), "cluster {name} is up");
        println!(
            "kruise-local {name}: API server at {}; kubeconfig written to {}",
            server.url(),
            kubeconfig.display()
        );
        let simulation =
            kruise_local::sim::start(&kubeconfig, &state_dir, (&latency).into()).await?;
        let heartbeat = tokio::spawn(nodes::heartbeat(
            client,
            node_names,
            Duration::from_secs(heartbeat_seconds.max(1)),
        ));
        shutdown_signal().await;
        info!("shutting down");
        heartbeat.abort();
        simulation.stop();
        server.shutdown().await;
        info!("stopped");
        Ok(())
    }
}

/// The cluster's admin token, kept in the state directory so kubeconfigs written earlier keep
/// working when the cluster restarts on the same state.
fn admin_token(state_dir: &Path) -> anyhow::Result<String> {
    let path = state_dir.join("admin-token");
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let token = kruise_apiserver::auth::random_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_survives_a_restart_on_the_same_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = admin_token(dir.path()).expect("generated");
        assert_eq!(first.len(), 40);
        assert_eq!(admin_token(dir.path()).expect("read back"), first);
        let other = tempfile::tempdir().expect("tempdir");
        assert_ne!(admin_token(other.path()).expect("generated"), first);
    }
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
        let args = Args::parse_from([
            "kruise-local",
            "run",
            "--name",
            "c1",
            "--nodes",
            "5",
            "--zones",
            "a,b,c",
        ]);
        let Command::Run(run) = args.command else {
            panic!("parsed as another command")
        };
        assert_eq!(run.zones, vec!["a", "b", "c"]);
        assert_eq!(run.nodes, 5);
        let demo = Args::parse_from(["kruise-local", "demo", "--nodes", "2"]);
        let Command::Demo(demo) = demo.command else {
            panic!("parsed as another command")
        };
        assert_eq!(demo.nodes, 2);
        assert!(!demo.etcd);
        assert_eq!(demo.timeout, 300);
        assert!(demo.manifest.is_none());
        let demo = Args::parse_from([
            "kruise-local",
            "demo",
            "--etcd",
            "--timeout",
            "20",
            "--manifest",
            "ud.yaml",
        ]);
        let Command::Demo(demo) = demo.command else {
            panic!("parsed as another command")
        };
        assert!(demo.etcd);
        assert_eq!(demo.timeout, 20);
        assert_eq!(demo.manifest, Some(PathBuf::from("ud.yaml")));
    }
}
