//! Command-line flags of `kruise-hub` (every flag can also come from an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// kruise-hub: the federation control plane.
///
/// `serve` runs one hub replica: the Kubernetes-style hub API (kubectl works against it), the gRPC
/// endpoint member agents connect to, and /healthz, /readyz and /metrics. With `--etcd-endpoints`
/// any number of replicas share one etcd and split the work through a consistent-hash ring of
/// fenced shard locks; without it a single replica keeps its objects in an embedded store under
/// `--state-dir`. `cluster` registers member clusters and manages their tokens through the hub API.
#[derive(Parser, Debug)]
#[command(name = "kruise-hub", version, about, long_about)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a hub replica.
    Serve(Box<ServeArgs>),
    /// Manage member clusters (talks to the hub API through a kubeconfig).
    Cluster(ClusterCommand),
}

/// Flags of `kruise-hub serve`.
#[derive(ClapArgs, Debug, Clone)]
pub struct ServeArgs {
    /// Storage.
    #[command(flatten)]
    pub store: StoreArgs,
    /// The hub API.
    #[command(flatten)]
    pub api: ApiArgs,
    /// The agent link.
    #[command(flatten)]
    pub grpc: GrpcArgs,
    /// Ring membership and shard locks.
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Health, metrics and logs.
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Where objects live.
#[derive(ClapArgs, Debug, Clone)]
pub struct StoreArgs {
    /// etcd client URLs (comma-separated). Without them, one replica uses an embedded store.
    #[arg(long, env = "KRUISE_HUB_ETCD_ENDPOINTS", value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// Prefix of the hub's coordination keys (members, shard locks) in etcd.
    #[arg(long, env = "KRUISE_HUB_ETCD_PREFIX", default_value = "/kruise-hub")]
    pub etcd_prefix: String,
    /// Directory for the embedded store and the PKI (when `--pki-dir` is not given).
    #[arg(long, env = "KRUISE_HUB_STATE_DIR", default_value = "kruise-hub-state")]
    pub state_dir: PathBuf,
}

/// The Kubernetes-style hub API.
#[derive(ClapArgs, Debug, Clone)]
pub struct ApiArgs {
    /// Address of the hub API (HTTPS); port 0 picks a free port.
    #[arg(long, env = "KRUISE_HUB_LISTEN", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,
    /// Directory with the CA and serving certificate, shared by all replicas (default
    /// `<state-dir>/pki`; created when missing).
    #[arg(long, env = "KRUISE_HUB_PKI_DIR")]
    pub pki_dir: Option<PathBuf>,
    /// Extra DNS names or IPs for the serving certificate (comma-separated).
    #[arg(long, env = "KRUISE_HUB_EXTRA_HOSTS", value_delimiter = ',')]
    pub extra_hosts: Vec<String>,
    /// The admin bearer token (all replicas must agree); generated when absent.
    #[arg(long, env = "KRUISE_HUB_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Write an admin kubeconfig for the hub API here once it serves.
    #[arg(long, env = "KRUISE_HUB_KUBECONFIG_OUT")]
    pub kubeconfig_out: Option<PathBuf>,
}

/// The gRPC endpoint agents connect to.
#[derive(ClapArgs, Debug, Clone)]
pub struct GrpcArgs {
    /// Address of the agent gRPC endpoint (TLS with the hub's certificate).
    #[arg(long, env = "KRUISE_HUB_GRPC_LISTEN", default_value = "127.0.0.1:7443")]
    pub grpc_listen: SocketAddr,
    /// URL agents use to reach this replica (default `https://<grpc-listen>`).
    #[arg(long, env = "KRUISE_HUB_GRPC_ADVERTISE")]
    pub grpc_advertise: Option<String>,
    /// Seconds between agent heartbeats.
    #[arg(long, env = "KRUISE_HUB_HEARTBEAT_INTERVAL", default_value_t = 5)]
    pub heartbeat_interval_seconds: u32,
    /// Seconds without a heartbeat after which a cluster becomes NotReady.
    #[arg(long, env = "KRUISE_HUB_HEARTBEAT_TIMEOUT", default_value_t = 40)]
    pub heartbeat_timeout_seconds: u64,
    /// Work events buffered per agent stream before the hub stops reading changes for it.
    #[arg(long, env = "KRUISE_HUB_STREAM_BUFFER", default_value_t = 256)]
    pub stream_buffer: usize,
}

/// Ring membership.
#[derive(ClapArgs, Debug, Clone)]
pub struct ShardArgs {
    /// This replica's id on the ring (default: hostname and process id).
    #[arg(long, env = "KRUISE_HUB_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// TTL of the replica's etcd lease in seconds; a dead replica's shards move after it.
    #[arg(long, env = "KRUISE_HUB_LEASE_TTL", default_value_t = 10)]
    pub lease_ttl_seconds: u64,
    /// Virtual nodes per replica on the ring.
    #[arg(long, env = "KRUISE_HUB_VNODES", default_value_t = crate::ring::DEFAULT_VNODES)]
    pub vnodes: u32,
}

/// Telemetry.
#[derive(ClapArgs, Debug, Clone)]
pub struct TelemetryArgs {
    /// Address serving /healthz, /readyz and /metrics (plain HTTP).
    #[arg(
        long,
        env = "KRUISE_HUB_HEALTH_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub health_listen: SocketAddr,
    /// Log filter (tracing `EnvFilter` syntax).
    #[arg(long, env = "KRUISE_HUB_LOG", default_value = "info")]
    pub log: String,
}

/// `kruise-hub cluster ...`.
#[derive(ClapArgs, Debug)]
pub struct ClusterCommand {
    /// How to reach the hub API.
    #[command(flatten)]
    pub client: HubClientArgs,
    /// The operation.
    #[command(subcommand)]
    pub action: ClusterAction,
}

/// Hub API connection for cluster commands.
#[derive(ClapArgs, Debug, Clone)]
pub struct HubClientArgs {
    /// Kubeconfig of the hub API (default: KUBECONFIG or ~/.kube/config).
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

/// Cluster registry operations.
#[derive(Subcommand, Debug)]
pub enum ClusterAction {
    /// Register a cluster, create its token and write its join file.
    Add {
        /// Cluster name (a DNS label).
        name: String,
        /// Labels, e.g. `topology.kubernetes.io/region=r1,tier=prod` (`region=` and `zone=` are
        /// short for the topology labels).
        #[arg(long, value_delimiter = ',')]
        labels: Vec<String>,
        /// Where to write the join file for `kruise-agent --hub-join-file`.
        #[arg(long)]
        join_file: PathBuf,
        /// gRPC endpoints to put in the join file (default: the ones the replicas publish).
        #[arg(long, value_delimiter = ',')]
        grpc_endpoint: Vec<String>,
    },
    /// Replace a cluster's token (the old one stops working) and rewrite its join file.
    RotateToken {
        /// Cluster name.
        name: String,
        /// Where to write the new join file.
        #[arg(long)]
        join_file: PathBuf,
        /// gRPC endpoints to put in the join file (default: the ones the replicas publish).
        #[arg(long, value_delimiter = ',')]
        grpc_endpoint: Vec<String>,
    },
    /// Revoke a cluster's token: its agent is refused from now on.
    Revoke {
        /// Cluster name.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_serve_and_cluster_add() {
        let args = Args::try_parse_from([
            "kruise-hub",
            "serve",
            "--etcd-endpoints",
            "http://127.0.0.1:2379,http://127.0.0.1:2380",
            "--listen",
            "127.0.0.1:0",
        ])
        .expect("serve parses");
        let Command::Serve(serve) = args.command else {
            panic!("want serve");
        };
        assert_eq!(serve.store.etcd_endpoints.len(), 2);
        assert_eq!(serve.shard.lease_ttl_seconds, 10);
        let args = Args::try_parse_from([
            "kruise-hub",
            "cluster",
            "add",
            "c1",
            "--labels",
            "region=r1,tier=web",
            "--join-file",
            "/tmp/c1.yaml",
        ])
        .expect("cluster add parses");
        let Command::Cluster(ClusterCommand {
            action: ClusterAction::Add { name, labels, .. },
            ..
        }) = args.command
        else {
            panic!("want cluster add");
        };
        assert_eq!(name, "c1");
        assert_eq!(labels, ["region=r1", "tier=web"]);
    }
}
