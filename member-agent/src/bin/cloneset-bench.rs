//! CloneSet benchmark on kruise-local: scale 0 → N against the raw pod create-to-Ready ceiling,
//! an N-pod rollout (maxUnavailable 20%) in place against ReCreate, and the Advanced
//! StatefulSet rollout case (in place against ReCreate, `--asts-replicas` pods). One run prints
//! all; a phase that runs past `--timeout-seconds` prints how far it got instead.
//!
//! `cargo build -p kruise-local -p kruise-agent && target/debug/cloneset-bench --replicas 1000`

mod bench_common;

use bench_common::{ratio, statefulset_rollouts, ClusterArgs, Harness, Phase, Progress};
use clap::Parser;
use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

/// Benchmark flags.
#[derive(Parser, Debug)]
#[command(
    name = "cloneset-bench",
    about = "CloneSet scale and rollout benchmark on kruise-local"
)]
struct Args {
    /// Pods per CloneSet scenario.
    #[arg(long, env = "BENCH_REPLICAS", default_value_t = 1000)]
    replicas: i32,
    /// Pods of the Advanced StatefulSet rollout case (0 skips it).
    #[arg(long, env = "BENCH_ASTS_REPLICAS", default_value_t = 300)]
    asts_replicas: i32,
    /// Concurrent creates of the raw ceiling measurement (the controller uses the same).
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    #[command(flatten)]
    cluster: ClusterArgs,
}

fn cloneset(
    name: &str,
    replicas: i32,
    img: &str,
    strategy: &str,
    annotations: serde_json::Value,
) -> anyhow::Result<CloneSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": img}]}},
            "updateStrategy": {"type": strategy, "maxUnavailable": "20%"}
        }
    }))?)
}

fn cloneset_rolled(cs: &CloneSet, n: i32) -> Progress {
    let Some(st) = cs.status.as_ref() else {
        return Progress {
            done: false,
            summary: "no status yet".into(),
        };
    };
    Progress {
        done: st.observed_generation == cs.metadata.generation
            && st.updated_ready_replicas == n
            && st.ready_replicas == n
            && st.replicas == n,
        summary: format!(
            "{}/{n} updated and ready, {} ready, {} pods",
            st.updated_ready_replicas, st.ready_replicas, st.replicas
        ),
    }
}

/// The raw ceiling: the same number of bare pods, created with the same concurrency.
async fn raw_pods(h: &Harness, args: &Args) -> anyhow::Result<Phase> {
    let n = usize::try_from(args.replicas).unwrap_or(0);
    let img = h.args.image("app", "raw");
    let results: Vec<Result<Pod, kube::Error>> = stream::iter(0..n)
        .map(|i| {
            let pods = h.pods();
            let img = img.clone();
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("raw-{i}"), "labels": {"app": "raw"}},
                    "spec": {"containers": [{"name": "main", "image": img}]}
                }))
                .map_err(kube::Error::SerdeError)?;
                pods.create(&PostParams::default(), &pod).await
            }
        })
        .buffer_unordered(args.concurrency)
        .collect()
        .await;
    if let Some(Err(e)) = results.into_iter().find(Result::is_err) {
        return Err(e.into());
    }
    let phase = h.wait_ready("raw pods ready", "app=raw", n).await;
    h.delete_pods("app=raw").await?;
    Ok(phase)
}

/// CloneSet scale 0 → N.
async fn scale_up(h: &Harness, args: &Args) -> anyhow::Result<Phase> {
    let api: Api<CloneSet> = Api::namespaced(h.client.clone(), "default");
    let n = usize::try_from(args.replicas).unwrap_or(0);
    let img = h.args.image("app", "scale");
    api.create(
        &PostParams::default(),
        &cloneset("scale", 0, &img, "ReCreate", json!({}))?,
    )
    .await?;
    api.patch(
        "scale",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": args.replicas}})),
    )
    .await?;
    let phase = h.wait_ready("cloneset scaled", "app=scale", n).await;
    api.delete("scale", &DeleteParams::default()).await?;
    h.delete_pods("app=scale").await?;
    Ok(phase)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let h = Harness::start("cloneset-bench", &args.cluster, None).await?;
    // Every phase uses its own image tags so that no phase finds images cached by another.
    let raw = raw_pods(&h, &args).await?;
    let scale = scale_up(&h, &args).await?;
    let n = args.replicas;
    let mut rollouts = Vec::new();
    for (name, strategy) in [("inplace", "InPlaceIfPossible"), ("recreate", "ReCreate")] {
        let cs = cloneset(
            name,
            n,
            &h.args.image("app", &format!("{name}-v1")),
            strategy,
            if strategy == "ReCreate" {
                json!({})
            } else {
                h.args.in_place_annotations()
            },
        )?;
        let new_image = h.args.image("app", &format!("{name}-v2"));
        rollouts.push(
            h.rollout(&cs, n, &new_image, |c| cloneset_rolled(c, n))
                .await?,
        );
    }
    let asts = if args.asts_replicas > 0 {
        Some(statefulset_rollouts(&h, args.asts_replicas).await?)
    } else {
        None
    };

    println!(
        "cloneset-bench: {} pods, {}",
        args.replicas,
        args.cluster.describe()
    );
    println!("raw pod create-to-Ready:   {raw}");
    let ceiling = match (raw.seconds(), scale.seconds()) {
        (Some(r), Some(s)) if s > 0.0 => format!("{:.0}% of the raw ceiling", r / s * 100.0),
        _ => "no ceiling figure".to_string(),
    };
    println!(
        "cloneset scale 0 -> {}:  {scale}  ({ceiling}; target >= 70%)",
        args.replicas
    );
    println!("rollout in place:          {}", rollouts[0]);
    println!("rollout ReCreate:          {}", rollouts[1]);
    println!(
        "in place / ReCreate:       {}  (target <= 0.3x)",
        ratio(&rollouts[0], &rollouts[1])
    );
    if let Some((in_place, recreate)) = asts {
        println!(
            "asts {} pods, Parallel, maxUnavailable 20%:",
            args.asts_replicas
        );
        println!("asts rollout in place:     {in_place}");
        println!("asts rollout ReCreate:     {recreate}");
        println!("asts in place / ReCreate:  {}", ratio(&in_place, &recreate));
    }
    Ok(())
}
