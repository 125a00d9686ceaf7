//! ImagePullJob benchmark on kruise-local: one kruise-daemon per simulated node, one job per
//! parallelism value over all nodes; prints each job's completion time and the ratio of the
//! first to the last.
//!
//! `cargo build -p kruise-local -p kruise-agent -p kruise-daemon && target/debug/imagepull-bench`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use k8s_openapi::api::core::v1::Node;
use kruise_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use kruise_api::apps::v1alpha1::nodeimage::NodeImage;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;

/// Benchmark flags.
#[derive(Parser, Debug)]
#[command(
    name = "imagepull-bench",
    about = "ImagePullJob completion time by parallelism on kruise-local"
)]
struct Args {
    /// Simulated nodes (one kruise-daemon each).
    #[arg(long, env = "BENCH_NODES", default_value_t = 100)]
    nodes: u32,
    /// Parallelism values to compare, one job each.
    #[arg(long, env = "BENCH_PARALLELISM", value_delimiter = ',', default_values_t = [10, 100])]
    parallelism: Vec<u32>,
    /// Simulated image size in MB.
    #[arg(long, env = "BENCH_IMAGE_MB", default_value_t = 5000)]
    image_mb: u32,
    /// kruise-local latency: image pull time per MB.
    #[arg(long, env = "BENCH_IMAGE_PULL_MS_PER_MB", default_value_t = 2)]
    image_pull_ms_per_mb: u64,
    /// Deadline of each phase in seconds.
    #[arg(long, env = "BENCH_TIMEOUT_SECONDS", default_value_t = 900)]
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

fn spawn(cmd: &mut Command, log: PathBuf) -> anyhow::Result<Killed> {
    let f = std::fs::File::create(log)?;
    Ok(Killed(
        cmd.stdout(Stdio::from(f.try_clone()?))
            .stderr(Stdio::from(f))
            .spawn()?,
    ))
}

/// Runs one job over all nodes and returns the time from creation to completion.
async fn run_job(client: &Client, args: &Args, parallelism: u32) -> anyhow::Result<Duration> {
    let jobs: Api<ImagePullJob> = Api::namespaced(client.clone(), "default");
    let name = format!("warm-p{parallelism}");
    // A tag per run, so that no run finds the image cached by another.
    let image = format!(
        "example.com/bench/warm:p{parallelism}-size-{}mb",
        args.image_mb
    );
    let job: ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"image": image, "parallelism": parallelism, "completionPolicy": {"type": "Always"}}
    }))?;
    let deadline = Instant::now() + Duration::from_secs(args.timeout_seconds);
    let start = Instant::now();
    jobs.create(&PostParams::default(), &job).await?;
    let st = poll(deadline, "job completion", || async {
        let st = jobs.get(&name).await.ok()?.status?;
        st.completion_time.is_some().then_some(st)
    })
    .await?;
    let took = start.elapsed();
    if st.succeeded != Some(args.nodes as i32) {
        bail!(
            "job {name} ended with {:?} succeeded of {} ({:?})",
            st.succeeded,
            args.nodes,
            st.message
        );
    }
    Ok(took)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("imagepull-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let kubeconfig = dir.join("kubeconfig");
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/kruise-agent/crds");
    let _local = spawn(
        Command::new(bin("kruise-local")?)
            .args(["run", "--name", "bench", "--listen", "127.0.0.1:0"])
            .arg(format!("--nodes={}", args.nodes))
            .arg("--kubeconfig-out")
            .arg(&kubeconfig)
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--crds-dir")
            .arg(&crds)
            .arg(format!(
                "--image-pull-ms-per-mb={}",
                args.image_pull_ms_per_mb
            )),
        dir.join("kruise-local.log"),
    )?;
    let setup = Instant::now() + Duration::from_secs(120);
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
    let names = poll(setup, "nodes", || async {
        let list = nodes.list(&ListParams::default()).await.ok()?;
        (list.items.len() as u32 >= args.nodes)
            .then(|| list.items.iter().map(|n| n.name_any()).collect::<Vec<_>>())
    })
    .await?;
    let _agent = spawn(
        Command::new(bin("kruise-agent")?)
            .env("KUBECONFIG", &kubeconfig)
            .env("KRUISE_AGENT_LOG", "info")
            // One agent: no lease to lose while the machine is busy pulling on every node.
            .args(["--metrics-addr", "127.0.0.1:0", "--leader-elect", "false"]),
        dir.join("agent.log"),
    )?;
    let daemon = bin("kruise-daemon")?;
    let mut daemons = Vec::new();
    for n in &names {
        let sock = dir.join("state/nodes").join(n).join("cri.sock");
        poll(setup, "CRI socket", || async {
            sock.exists().then_some(())
        })
        .await?;
        daemons.push(spawn(
            Command::new(&daemon)
                .env("KUBECONFIG", &kubeconfig)
                .env("RUST_LOG", "warn")
                .args(["--node-name", n, "--runtime-endpoint"])
                .arg(format!("unix://{}", sock.display())),
            dir.join(format!("daemon-{n}.log")),
        )?);
    }
    let nis: Api<NodeImage> = Api::all(client.clone());
    poll(setup, "NodeImages", || async {
        (nis.list(&ListParams::default()).await.ok()?.items.len() == names.len()).then_some(())
    })
    .await?;

    let mut results = Vec::new();
    for p in &args.parallelism {
        results.push((*p, run_job(&client, &args, *p).await?));
    }
    println!(
        "imagepull-bench: {} nodes, image {} MB at {} ms/MB (one pull ~{} ms)",
        args.nodes,
        args.image_mb,
        args.image_pull_ms_per_mb,
        u64::from(args.image_mb) * args.image_pull_ms_per_mb
    );
    for (p, took) in &results {
        println!(
            "parallelism {p:>4}: {:8.2} s to SUCCEED {}",
            took.as_secs_f64(),
            args.nodes
        );
    }
    if let (Some((p0, t0)), Some((p1, t1))) = (results.first(), results.last()) {
        println!(
            "parallelism {p0} / {p1}: {:8.2}x",
            t0.as_secs_f64() / t1.as_secs_f64()
        );
    }
    drop(daemons);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
