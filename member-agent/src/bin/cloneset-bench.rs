//! CloneSet benchmark on kruise-local: scale 0 → N against the raw pod create-to-Ready ceiling,
//! and an N-pod rollout (maxUnavailable 20%) in place against ReCreate. One run prints all.
//!
//! `cargo build -p kruise-local -p kruise-agent && target/debug/cloneset-bench --replicas 1000`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use serde_json::json;

/// Benchmark flags.
#[derive(Parser, Debug)]
#[command(
    name = "cloneset-bench",
    about = "CloneSet scale and rollout benchmark on kruise-local"
)]
struct Args {
    /// Pods per scenario.
    #[arg(long, env = "BENCH_REPLICAS", default_value_t = 1000)]
    replicas: i32,
    /// Simulated nodes.
    #[arg(long, env = "BENCH_NODES", default_value_t = 20)]
    nodes: u32,
    /// Simulated image size in MB (images are named `...-size-<N>mb`).
    #[arg(long, env = "BENCH_IMAGE_MB", default_value_t = 200)]
    image_mb: u32,
    /// kruise-local latency: image pull time per MB.
    #[arg(long, env = "BENCH_IMAGE_PULL_MS_PER_MB", default_value_t = 10)]
    image_pull_ms_per_mb: u64,
    /// kruise-local latency: container start.
    #[arg(long, env = "BENCH_CONTAINER_START_MS", default_value_t = 100)]
    container_start_ms: u64,
    /// kruise-local latency: readiness delay.
    #[arg(long, env = "BENCH_READINESS_DELAY_MS", default_value_t = 200)]
    readiness_delay_ms: u64,
    /// kruise-local latency: scheduling delay.
    #[arg(long, env = "BENCH_SCHEDULE_DELAY_MS", default_value_t = 0)]
    schedule_delay_ms: u64,
    /// Concurrent creates of the raw ceiling measurement (the controller uses the same).
    #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 32)]
    concurrency: usize,
    /// Deadline of each phase in seconds.
    #[arg(long, env = "BENCH_TIMEOUT_SECONDS", default_value_t = 1800)]
    timeout_seconds: u64,
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me.parent().context("exe dir")?.join(name);
    if !path.exists() {
        bail!(
            "{} not found: build it into the same target dir",
            path.display()
        );
    }
    Ok(path)
}

async fn poll<T, F, Fut>(deadline: Instant, what: &str, mut f: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ready_pods(api: &Api<Pod>, selector: &str) -> (usize, usize) {
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    let active: Vec<&Pod> = list
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let ready = active
        .iter()
        .filter(|p| kruise_agent::pods::is_running_and_ready(p))
        .count();
    (active.len(), ready)
}

async fn wait_gone(api: &Api<Pod>, selector: &str, deadline: Instant) -> anyhow::Result<()> {
    poll(deadline, "pods gone", || async {
        let n = api
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items.len())
            .ok()?;
        (n == 0).then_some(())
    })
    .await
}

fn image(tag: &str, mb: u32) -> String {
    format!("example.com/bench/app:{tag}-size-{mb}mb")
}

fn cloneset(name: &str, replicas: i32, img: &str, strategy: &str) -> anyhow::Result<CloneSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": img}]}},
            "updateStrategy": {"type": strategy, "maxUnavailable": "20%"}
        }
    }))?)
}

async fn rollout(
    client: &Client,
    args: &Args,
    name: &str,
    strategy: &str,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let cs_api: Api<CloneSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let selector = format!("app={name}");
    cs_api
        .create(
            &PostParams::default(),
            &cloneset(
                name,
                args.replicas,
                &image(&format!("{name}-v1"), args.image_mb),
                strategy,
            )?,
        )
        .await?;
    let n = args.replicas as usize;
    poll(deadline, "rollout base ready", || async {
        let (active, ready) = ready_pods(&pods, &selector).await;
        (active == n && ready == n).then_some(())
    })
    .await?;
    let start = Instant::now();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": image(&format!("{name}-v2"), args.image_mb)}]}}}});
    cs_api
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    poll(deadline, "rollout done", || async {
        let cs = cs_api.get(name).await.ok()?;
        let st = cs.status?;
        (st.observed_generation == cs.metadata.generation
            && st.updated_ready_replicas == args.replicas
            && st.ready_replicas == args.replicas
            && st.replicas == args.replicas)
            .then_some(())
    })
    .await?;
    let took = start.elapsed();
    cs_api.delete(name, &DeleteParams::default()).await?;
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(&selector),
    )
    .await?;
    wait_gone(&pods, &selector, deadline).await?;
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile_dir()?;
    let kubeconfig = dir.join("kubeconfig");
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/kruise-agent/crds");
    let log = std::fs::File::create(dir.join("kruise-local.log"))?;
    let _local = Killed(
        Command::new(bin("kruise-local")?)
            .args(["run", "--name", "bench", "--listen", "127.0.0.1:0"])
            .arg("--nodes")
            .arg(args.nodes.to_string())
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--crds-dir")
            .arg(&crds)
            .arg(format!(
                "--image-pull-ms-per-mb={}",
                args.image_pull_ms_per_mb
            ))
            .arg(format!("--container-start-ms={}", args.container_start_ms))
            .arg(format!("--readiness-delay-ms={}", args.readiness_delay_ms))
            .arg(format!("--schedule-delay-ms={}", args.schedule_delay_ms))
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()?,
    );
    let setup = Instant::now() + Duration::from_secs(60);
    poll(setup, "kubeconfig", || async {
        std::fs::metadata(&kubeconfig)
            .ok()
            .filter(|m| m.len() > 0)
            .map(|_| ())
    })
    .await?;
    let config = Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig)?,
        &Default::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let nodes: Api<Node> = Api::all(client.clone());
    poll(setup, "nodes", || async {
        let n = nodes.list(&ListParams::default()).await.ok()?.items.len() as u32;
        (n >= args.nodes).then_some(())
    })
    .await?;
    let agent_log = std::fs::File::create(dir.join("agent.log"))?;
    let _agent = Killed(
        Command::new(bin("kruise-agent")?)
            .env("KUBECONFIG", &kubeconfig)
            .env("KRUISE_AGENT_LOG", "warn")
            .args(["--metrics-addr", "127.0.0.1:0"])
            .stdout(Stdio::from(agent_log.try_clone()?))
            .stderr(Stdio::from(agent_log))
            .spawn()?,
    );
    let cs_api: Api<CloneSet> = Api::namespaced(client.clone(), "default");
    poll(setup, "CloneSet served", || async {
        cs_api.list(&ListParams::default()).await.ok().map(|_| ())
    })
    .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let n = args.replicas as usize;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);

    // 1. Raw ceiling: the same number of bare pods, created with the same concurrency.
    // Every phase uses its own image tags so that no phase finds images cached by another.
    let img = image("raw", args.image_mb);
    let start = Instant::now();
    let results: Vec<Result<Pod, kube::Error>> = stream::iter(0..n)
        .map(|i| {
            let pods = pods.clone();
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
    poll(deadline, "raw pods ready", || async {
        let (active, ready) = ready_pods(&pods, "app=raw").await;
        (active == n && ready == n).then_some(())
    })
    .await?;
    let raw = start.elapsed();
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=raw"),
    )
    .await?;
    wait_gone(&pods, "app=raw", deadline).await?;

    // 2. CloneSet scale 0 -> N.
    cs_api
        .create(
            &PostParams::default(),
            &cloneset("scale", 0, &image("scale", args.image_mb), "ReCreate")?,
        )
        .await?;
    let start = Instant::now();
    cs_api
        .patch(
            "scale",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"replicas": args.replicas}})),
        )
        .await?;
    poll(deadline, "cloneset scaled", || async {
        let (active, ready) = ready_pods(&pods, "app=scale").await;
        (active == n && ready == n).then_some(())
    })
    .await?;
    let scale = start.elapsed();
    cs_api.delete("scale", &DeleteParams::default()).await?;
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=scale"),
    )
    .await?;
    wait_gone(&pods, "app=scale", deadline).await?;

    // 3. Rollouts with maxUnavailable 20%.
    let in_place = rollout(&client, &args, "inplace", "InPlaceIfPossible").await?;
    let recreate = rollout(&client, &args, "recreate", "ReCreate").await?;

    let ceiling = raw.as_secs_f64() / scale.as_secs_f64();
    let ratio = in_place.as_secs_f64() / recreate.as_secs_f64();
    println!(
        "cloneset-bench: {} pods, {} nodes, image {} MB at {} ms/MB, container start {} ms, readiness {} ms, schedule {} ms",
        args.replicas,
        args.nodes,
        args.image_mb,
        args.image_pull_ms_per_mb,
        args.container_start_ms,
        args.readiness_delay_ms,
        args.schedule_delay_ms
    );
    println!("raw pod create-to-Ready:   {:8.2} s", raw.as_secs_f64());
    println!(
        "cloneset scale 0 -> {}:  {:8.2} s  ({:.0}% of the raw ceiling; target >= 70%)",
        args.replicas,
        scale.as_secs_f64(),
        ceiling * 100.0
    );
    println!(
        "rollout in place:          {:8.2} s",
        in_place.as_secs_f64()
    );
    println!(
        "rollout ReCreate:          {:8.2} s",
        recreate.as_secs_f64()
    );
    println!("in place / ReCreate:       {ratio:8.2}x  (target <= 0.3x)");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("cloneset-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
