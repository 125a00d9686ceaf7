//! Advanced StatefulSet rollout benchmark on kruise-local: an N-pod `Parallel` set rolled to a
//! new image with `maxUnavailable: 20%`, in place (`InPlaceIfPossible`) against `ReCreate`, in
//! the same run. Prints both times and their ratio; a phase that runs past `--timeout-seconds`
//! prints how far it got instead.
//!
//! `cargo build -p kruise-local -p kruise-agent && target/debug/asts-bench --replicas 300`

mod bench_common;

use bench_common::{ratio, statefulset_rollouts, ClusterArgs, Harness};
use clap::Parser;

/// Benchmark flags.
#[derive(Parser, Debug)]
#[command(
    name = "asts-bench",
    about = "Advanced StatefulSet rollout benchmark on kruise-local"
)]
struct Args {
    /// Pods per rollout.
    #[arg(long, env = "BENCH_REPLICAS", default_value_t = 300)]
    replicas: i32,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let h = Harness::start("asts-bench", &args.cluster, Some("statefulset")).await?;
    let (in_place, recreate) = statefulset_rollouts(&h, args.replicas).await?;
    println!(
        "asts-bench: {} pods, Parallel, maxUnavailable 20%, {}",
        args.replicas,
        args.cluster.describe()
    );
    println!("rollout in place:          {in_place}");
    println!("rollout ReCreate:          {recreate}");
    println!("in place / ReCreate:       {}", ratio(&in_place, &recreate));
    Ok(())
}
