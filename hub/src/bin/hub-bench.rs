//! hub-bench: measures the hub's Work dispatch against real `kruise-hub` processes over etcd.
//!
//! Prints Work dispatch latency p50/p99 (hub API write -> object created in the member cluster's
//! API server) for `--clusters` x `--works` Works, dispatch throughput with 1 and 3 replicas, and
//! the shard takeover time after SIGKILL of a replica while `--takeover-objects` Works exist.
//!
//! Members are in-process API servers (the `kruise-apiserver` library over its memory store) fed
//! by a minimal agent that speaks the real gRPC link (TLS, token, Sync stream) and creates each
//! Work's manifest (a ConfigMap) in its member. Build first: `cargo build --release -p kruise-hub`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use futures::StreamExt;
use kruise_apiserver::local::{Gvr, LocalClient};
use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_apiserver::store::MemoryStore;
use kruise_apiserver::{RunningServer, ServerConfig};
use kruise_proto::federation::federation_client::FederationClient;
use kruise_proto::federation::{agent_message, hub_message, AgentMessage, SyncStart};
use kruise_proto::JoinFile;
use kube::api::{ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// hub-bench flags.
#[derive(Parser, Debug)]
#[command(
    name = "hub-bench",
    about = "Work dispatch latency, throughput and shard takeover"
)]
struct Args {
    /// Member clusters.
    #[arg(long, default_value_t = 10)]
    clusters: usize,
    /// Works per cluster.
    #[arg(long, default_value_t = 1000)]
    works: usize,
    /// Concurrent Work writers.
    #[arg(long, default_value_t = 32)]
    writers: usize,
    /// Works present when a replica is killed for the takeover measurement.
    #[arg(long, default_value_t = 10_000)]
    takeover_objects: usize,
    /// Lease TTL of the replicas, seconds.
    #[arg(long, default_value_t = 3)]
    lease_ttl: u64,
}

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .map(|d| d.join(name))
        .unwrap_or_else(|| PathBuf::from(name))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Replica {
    child: Child,
    grpc: String,
    health: u16,
    kubeconfig: PathBuf,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn owned(health: u16) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", health)).await else {
        return 0;
    };
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
    let mut text = String::new();
    let _ = s.read_to_string(&mut text).await;
    text.lines()
        .find_map(|l| l.strip_prefix("kruise_hub_owned_shards "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn start_replica(i: usize, etcd: &str, dir: &Path, ttl: u64) -> anyhow::Result<Replica> {
    let (grpc, health) = (free_port()?, free_port()?);
    let kubeconfig = dir.join(format!("hub-{i}.kubeconfig"));
    let log = std::fs::File::create(dir.join(format!("hub-{i}.log")))?;
    let child = Command::new(bin("kruise-hub"))
        .args(["serve", "--etcd-endpoints", etcd, "--listen", "127.0.0.1:0"])
        .args(["--grpc-listen", &format!("127.0.0.1:{grpc}")])
        .args(["--health-listen", &format!("127.0.0.1:{health}")])
        .args([
            "--replica-id",
            &format!("hub-{i}"),
            "--admin-token",
            "bench-token",
        ])
        .args(["--lease-ttl-seconds", &ttl.to_string(), "--log", "warn"])
        .arg("--pki-dir")
        .arg(dir.join("pki"))
        .arg("--state-dir")
        .arg(dir.join(format!("hub-{i}")))
        .arg("--kubeconfig-out")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting kruise-hub (build it next to hub-bench)")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        if Instant::now() > deadline {
            bail!("kruise-hub {i} did not start");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Replica {
        child,
        grpc: format!("https://127.0.0.1:{grpc}"),
        health,
        kubeconfig,
    })
}

async fn hub_client(kubeconfig: &Path) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?;
    Ok(Client::try_from(config)?)
}

fn works_api(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("federation.kruise.io", "v1alpha1", "Work"),
        "works",
    );
    Api::namespaced_with(client.clone(), "default", &ar)
}

/// Dispatch start times by Work name, and applied latencies.
type Started = Arc<Mutex<HashMap<String, Instant>>>;

/// A minimal agent: Sync from scratch, create each Work's ConfigMap in the member.
async fn agent(
    join: JoinFile,
    endpoint: String,
    member: LocalClient,
    started: Started,
    applied: mpsc::UnboundedSender<Duration>,
) -> anyhow::Result<()> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&join.ca_pem))
        .domain_name("127.0.0.1");
    let channel = Endpoint::from_shared(endpoint)?
        .tls_config(tls)?
        .connect()
        .await?;
    let auth: tonic::metadata::MetadataValue<_> = format!("Bearer {}", join.token).parse()?;
    let mut client =
        FederationClient::with_interceptor(channel, move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", auth.clone());
            Ok(r)
        });
    let (tx, rx) = mpsc::channel(64);
    tx.send(AgentMessage {
        message: Some(agent_message::Message::Start(SyncStart {
            cluster_name: join.cluster.clone(),
            resume_revision: 0,
        })),
    })
    .await?;
    let mut inbound = client
        .sync(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    while let Some(msg) = inbound.next().await {
        let Some(hub_message::Message::Work(ev)) = msg?.message else {
            continue;
        };
        let work: Value = serde_json::from_slice(&ev.work_json)?;
        let manifest = work["spec"]["workload"].clone();
        if member
            .create(Gvr::core("configmaps"), manifest)
            .await
            .is_ok()
        {
            let start = started.lock().ok().and_then(|m| m.get(&ev.name).copied());
            if let Some(start) = start {
                let _ = applied.send(start.elapsed());
            }
        }
    }
    let _ = tx;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

async fn member(dir: &Path, i: usize) -> anyhow::Result<RunningServer> {
    let mut config = ServerConfig::new(
        "127.0.0.1:0".parse::<SocketAddr>()?,
        Arc::new(MemoryStore::new()),
        dir.join(format!("member-{i}-pki")),
    );
    config.garbage_collector = false;
    kruise_apiserver::start(config).await
}

fn work(name: &str, cluster: &str) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "federation.kruise.io/v1alpha1", "kind": "Work",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"cluster": cluster, "workload": {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default"}, "data": {"k": "v"}}}}))?)
}

/// Writes `names` (with their clusters) through `clients` with `writers` concurrent writers.
async fn write_works(
    clients: &[Client],
    names: Vec<(String, String)>,
    writers: usize,
    started: &Started,
) -> anyhow::Result<()> {
    let names = Arc::new(Mutex::new(names));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let api = works_api(&clients[w % clients.len()]);
        let (names, started) = (names.clone(), started.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = names.lock().ok().and_then(|mut n| n.pop());
                let Some((name, cluster)) = next else { break };
                if let Ok(mut m) = started.lock() {
                    m.insert(name.clone(), Instant::now());
                }
                let obj = work(&name, &cluster)?;
                api.create(&PostParams::default(), &obj).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

async fn dispatch(args: &Args, replicas: usize) -> anyhow::Result<()> {
    let etcd = EtcdProcess::start().await?;
    let dir = tempfile::tempdir()?;
    let mut hubs = Vec::new();
    for i in 0..replicas {
        hubs.push(start_replica(i, etcd.endpoint(), dir.path(), args.lease_ttl).await?);
    }
    let clients: Vec<Client> =
        futures::future::try_join_all(hubs.iter().map(|h| hub_client(&h.kubeconfig))).await?;
    let started: Started = Arc::default();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut members = Vec::new();
    for c in 0..args.clusters {
        let name = format!("m{c}");
        let join_path = dir.path().join(format!("{name}.yaml"));
        let endpoints: Vec<String> = hubs.iter().map(|h| h.grpc.clone()).collect();
        let out = Command::new(bin("kruise-hub"))
            .arg("cluster")
            .arg("--kubeconfig")
            .arg(&hubs[0].kubeconfig)
            .args(["add", &name, "--grpc-endpoint", &endpoints.join(",")])
            .arg("--join-file")
            .arg(&join_path)
            .output()?;
        if !out.status.success() {
            bail!("cluster add: {}", String::from_utf8_lossy(&out.stderr));
        }
        let server = member(dir.path(), c).await?;
        let join = JoinFile::read(&join_path)?;
        tokio::spawn(agent(
            join,
            hubs[c % replicas].grpc.clone(),
            server.client(),
            started.clone(),
            tx.clone(),
        ));
        members.push(server);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let names: Vec<(String, String)> = (0..args.clusters)
        .flat_map(|c| (0..args.works).map(move |w| (format!("w-{c}-{w}"), format!("m{c}"))))
        .collect();
    let total = names.len();
    let begin = Instant::now();
    write_works(&clients, names, args.writers, &started).await?;
    let mut latencies = Vec::with_capacity(total);
    while latencies.len() < total {
        match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
            Ok(Some(l)) => latencies.push(l),
            _ => bail!("only {} of {total} Works applied", latencies.len()),
        }
    }
    let elapsed = begin.elapsed();
    latencies.sort();
    println!(
        "replicas={replicas} works={total}: dispatch p50={:?} p99={:?} throughput={:.0} Works/s",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        total as f64 / elapsed.as_secs_f64()
    );
    for m in members {
        m.shutdown().await;
    }
    Ok(())
}

async fn takeover(args: &Args) -> anyhow::Result<()> {
    let etcd = EtcdProcess::start().await?;
    let dir = tempfile::tempdir()?;
    let mut hubs = Vec::new();
    for i in 0..3 {
        hubs.push(start_replica(i, etcd.endpoint(), dir.path(), args.lease_ttl).await?);
    }
    let client = hub_client(&hubs[0].kubeconfig).await?;
    let names = (0..args.takeover_objects)
        .map(|i| (format!("t-{i}"), "nowhere".to_string()))
        .collect();
    write_works(&[client], names, args.writers, &Arc::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut total = 0;
        for h in &hubs {
            total += owned(h.health).await;
        }
        if total == 64 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let victim_shards = owned(hubs[2].health).await;
    let victim = hubs.remove(2);
    let killed = Instant::now();
    drop(victim);
    loop {
        let mut total = 0;
        for h in &hubs {
            total += owned(h.health).await;
        }
        if total == 64 {
            break;
        }
        if killed.elapsed() > Duration::from_secs(60) {
            bail!("shards not taken over in 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "takeover: killed replica owned {victim_shards}/64 shards (~{} of {} Works); survivors own all after {:?} (lease TTL {}s)",
        args.takeover_objects * victim_shards / 64,
        args.takeover_objects,
        killed.elapsed(),
        args.lease_ttl
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    dispatch(&args, 1).await?;
    dispatch(&args, 3).await?;
    takeover(&args).await?;
    Ok(())
}
