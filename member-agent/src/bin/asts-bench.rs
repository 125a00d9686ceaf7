//! Advanced StatefulSet rollout benchmark on kruise-local: an N-pod `Parallel` set rolled to a
//! new image with `maxUnavailable: 20%`, in place (`InPlaceIfPossible`) against `ReCreate`.
//! Prints both times and their ratio.
//!
//! `cargo build -p kruise-local -p kruise-agent && target/debug/asts-bench --replicas 300`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_api::apps::v1beta1::StatefulSet;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use serde_json::json;

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
    /// Deadline of each phase in seconds.
    #[arg(long, env = "BENCH_TIMEOUT_SECONDS", default_value_t = 1800)]
    timeout_seconds: u64,
}

/// A child process killed when dropped.
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

fn image(tag: &str, mb: u32) -> String {
    format!("example.com/bench/db:{tag}-size-{mb}mb")
}

fn statefulset(name: &str, replicas: i32, img: &str, policy: &str) -> anyhow::Result<StatefulSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "main", "image": img}],
                                  "readinessGates": [{"conditionType": "InPlaceUpdateReady"}]}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                "podUpdatePolicy": policy, "maxUnavailable": "20%"}}
        }
    }))?)
}

/// Waits until the set reports `replicas` pods ready on the update revision for its generation.
async fn rolled(
    api: &Api<StatefulSet>,
    name: &str,
    n: i32,
    deadline: Instant,
) -> anyhow::Result<()> {
    poll(deadline, &format!("{name} rolled out"), || async {
        let set = api.get(name).await.ok()?;
        let st = set.status?;
        (st.observed_generation == set.metadata.generation
            && st.updated_ready_replicas == Some(n)
            && st.ready_replicas == n
            && st.replicas == n)
            .then_some(())
    })
    .await
}

async fn rollout(
    client: &Client,
    args: &Args,
    name: &str,
    policy: &str,
) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let base = image(&format!("{name}-v1"), args.image_mb);
    api.create(
        &PostParams::default(),
        &statefulset(name, args.replicas, &base, policy)?,
    )
    .await?;
    rolled(&api, name, args.replicas, deadline).await?;
    let start = Instant::now();
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": image(&format!("{name}-v2"), args.image_mb)}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    rolled(&api, name, args.replicas, deadline).await?;
    let took = start.elapsed();
    api.delete(name, &DeleteParams::default()).await?;
    let selector = format!("app={name}");
    pods.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(&selector),
    )
    .await?;
    poll(deadline, "pods gone", || async {
        let n = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .ok()?
            .items
            .len();
        (n == 0).then_some(())
    })
    .await?;
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("asts-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
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
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--controllers",
                "statefulset",
            ])
            // One agent: no election, so a slow lease renewal on a busy machine cannot stop it.
            .args(["--leader-elect", "false"])
            .stdout(Stdio::from(agent_log.try_clone()?))
            .stderr(Stdio::from(agent_log))
            .spawn()?,
    );
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    poll(setup, "StatefulSet served", || async {
        api.list(&ListParams::default()).await.ok().map(|_| ())
    })
    .await?;

    let in_place = rollout(&client, &args, "inplace", "InPlaceIfPossible").await?;
    let recreate = rollout(&client, &args, "recreate", "ReCreate").await?;
    let ratio = in_place.as_secs_f64() / recreate.as_secs_f64();
    println!(
        "asts-bench: {} pods, {} nodes, Parallel, maxUnavailable 20%, image {} MB at {} ms/MB, container start {} ms, readiness {} ms, schedule {} ms",
        args.replicas,
        args.nodes,
        args.image_mb,
        args.image_pull_ms_per_mb,
        args.container_start_ms,
        args.readiness_delay_ms,
        args.schedule_delay_ms
    );
    println!(
        "rollout in place:          {:8.2} s",
        in_place.as_secs_f64()
    );
    println!(
        "rollout ReCreate:          {:8.2} s",
        recreate.as_secs_f64()
    );
    println!("in place / ReCreate:       {ratio:8.2}x");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
