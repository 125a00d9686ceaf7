//! The `kruise-hub` binary.

use clap::Parser;
use kruise_hub::cli::{Args, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.command {
        Command::Serve(serve) => {
            let filter = tracing_subscriber::EnvFilter::try_new(&serve.telemetry.log)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            tracing_subscriber::fmt().with_env_filter(filter).init();
            kruise_hub::serve::run(*serve).await
        }
        Command::Cluster(cluster) => kruise_hub::clusterctl::run(cluster).await,
    }
}
