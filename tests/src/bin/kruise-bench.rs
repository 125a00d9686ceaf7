//! kruise-bench: prints throughput figures measured against real processes, each with the
//! baseline it is compared to, measured in the same run.

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures::{stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kruise_tests::LocalCluster;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use serde_json::json;

#[path = "kruise-bench/federation.rs"]
mod federation;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Case {
    /// Pods from create to Ready on a zero-latency kruise-local: the ceiling workloads are compared to.
    PodStart,
    /// Hub status freshness after member changes, and Adaptive failover time of a lost cluster.
    Federation,
}

/// Benchmarks for kruise-rs. Build first (`cargo build --release --workspace`), then run
/// `target/release/kruise-bench`.
#[derive(Parser, Debug)]
#[command(name = "kruise-bench", version, about)]
struct Args {
    /// Which cases to run (default: all).
    #[arg(long, value_enum)]
    case: Vec<Case>,
    /// Pods for the pod-start case.
    #[arg(long, default_value_t = 1000)]
    pods: usize,
    /// Simulated nodes.
    #[arg(long, default_value_t = 10)]
    nodes: usize,
    /// Concurrent API clients creating objects.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Member changes timed by the federation case.
    #[arg(long, default_value_t = 30)]
    changes: usize,
    /// Replicas moved by the federation case's failover.
    #[arg(long, default_value_t = 100)]
    failover_replicas: usize,
    /// Simulated nodes per member cluster in the federation case.
    #[arg(long, default_value_t = 4)]
    member_nodes: usize,
}

fn pod(i: usize) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("bench-{i}"), "labels": {"bench": "pod-start"}},
        "spec": {"containers": [{"name": "app", "image": "example.com/app:v1"}]}
    }))
    .expect("static pod manifest")
}

fn is_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn pod_start(args: &Args) -> anyhow::Result<()> {
    let zero = [
        "--image-pull-ms-per-mb",
        "0",
        "--container-start-ms",
        "0",
        "--readiness-delay-ms",
        "0",
        "--schedule-delay-ms",
        "0",
        "--container-stop-ms",
        "0",
    ];
    let cluster = LocalCluster::start("bench", args.nodes, &zero).await?;
    let client = cluster.client().await?;

    // Baseline: raw API creates of small objects from the same number of clients.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    stream::iter(0..args.pods)
        .map(|i| {
            let cms = cms.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("baseline-{i}")}, "data": {"k": "v"}}),
                )?;
                cms.create(&PostParams::default(), &cm).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let api_rate = args.pods as f64 / started.elapsed().as_secs_f64();

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let ready_watch = {
        let pods = pods.clone();
        let want = args.pods;
        tokio::spawn(async move {
            let mut ready = std::collections::HashSet::new();
            let mut events = Box::pin(
                watcher(pods, watcher::Config::default().labels("bench=pod-start"))
                    .applied_objects(),
            );
            while let Some(p) = events.try_next().await? {
                if is_ready(&p) {
                    ready.insert(p.metadata.name.clone().unwrap_or_default());
                    if ready.len() == want {
                        return anyhow::Ok(Instant::now());
                    }
                }
            }
            anyhow::bail!("watch ended before every pod was ready")
        })
    };
    let started = Instant::now();
    let progress = tokio::spawn({
        let pods = pods.clone();
        async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Ok(list) = pods
                    .list(&ListParams::default().labels("bench=pod-start"))
                    .await
                {
                    let ready = list.items.iter().filter(|p| is_ready(p)).count();
                    eprintln!(
                        "  ... {ready}/{} pods ready after {:.1}s",
                        list.items.len(),
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    });
    stream::iter(0..args.pods)
        .map(|i| {
            let pods = pods.clone();
            async move {
                pods.create(&PostParams::default(), &pod(i))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let created = started.elapsed();
    let all_ready = tokio::time::timeout(Duration::from_secs(600), ready_watch).await???;
    progress.abort();
    let took = all_ready.duration_since(started);
    let rate = args.pods as f64 / took.as_secs_f64();
    println!(
        "pod-start: {} pods on {} nodes, zero latency model",
        args.pods, args.nodes
    );
    println!(
        "  created in {:.2}s, all Ready after {:.2}s",
        created.as_secs_f64(),
        took.as_secs_f64()
    );
    println!("  pod create-to-Ready throughput: {rate:.0} pods/s");
    println!("  baseline, raw API creates (configmaps, same clients): {api_rate:.0} objects/s");
    println!(
        "  ratio pods-Ready/s to raw creates/s: {:.2}",
        rate / api_rate
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cases = if args.case.is_empty() {
        vec![Case::PodStart]
    } else {
        args.case.clone()
    };
    for case in cases {
        match case {
            Case::PodStart => pod_start(&args).await?,
            Case::Federation => {
                federation::run(&federation::Params {
                    changes: args.changes,
                    replicas: args.failover_replicas,
                    nodes: args.member_nodes,
                })
                .await?
            }
        }
    }
    Ok(())
}
