use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use kruise_daemon::{cri, crr::Recreator, imagepull::ImagePuller, metrics};

/// kruise-daemon: one per node. Pulls the images this node's NodeImage lists and recreates the
/// containers ContainerRecreateRequests name, through the node's CRI runtime. The cluster comes
/// from KUBECONFIG (or --kubeconfig), or the in-cluster service account.
#[derive(Parser, Debug)]
#[command(name = "kruise-daemon", version, about, long_about = None)]
struct Args {
    /// Name of the node this daemon runs on (its NodeImage has the same name).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// CRI runtime endpoint, e.g. unix:///run/containerd/containerd.sock.
    #[arg(
        long,
        env = "KRUISE_DAEMON_RUNTIME_ENDPOINT",
        default_value = "unix:///run/containerd/containerd.sock"
    )]
    runtime_endpoint: String,
    /// Kubeconfig file (default: KUBECONFIG, then in-cluster configuration).
    #[arg(long, env = "KRUISE_DAEMON_KUBECONFIG")]
    kubeconfig: Option<std::path::PathBuf>,
    /// Images pulled at once on this node.
    #[arg(
        long,
        env = "KRUISE_DAEMON_MAX_WORKERS_FOR_PULL_IMAGE",
        default_value_t = 2
    )]
    max_workers_for_pull_image: usize,
    /// Address of /healthz, /readyz and /metrics (port 0 picks a free one).
    #[arg(long, env = "KRUISE_DAEMON_HEALTH_ADDR", default_value = "127.0.0.1:0")]
    health_addr: SocketAddr,
}

async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let Args {
        node_name,
        runtime_endpoint,
        kubeconfig,
        max_workers_for_pull_image,
        health_addr,
    } = Args::parse();
    if max_workers_for_pull_image == 0 {
        anyhow::bail!("--max-workers-for-pull-image must be at least 1");
    }
    let metrics = Arc::new(metrics::Metrics::new());
    tokio::spawn(metrics::serve(health_addr, metrics.clone()));
    let cri = cri::connect(&runtime_endpoint).await?;
    let client = client(kubeconfig.as_deref()).await?;
    client
        .apiserver_version()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the API server: {e}"))?;
    metrics.set_ready();
    tracing::info!(node = %node_name, runtime = %runtime_endpoint, "kruise-daemon started");
    let puller = ImagePuller {
        client: client.clone(),
        cri: cri.clone(),
        node: node_name.clone(),
        max_workers: max_workers_for_pull_image,
        metrics: metrics.clone(),
    };
    let recreator = Recreator {
        client,
        cri,
        node: node_name,
        metrics,
    };
    tokio::select! {
        _ = puller.run() => {}
        _ = recreator.run() => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted; exiting"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn args_are_consistent() {
        super::Args::command().debug_assert();
    }
}
