//! The federation case: how fresh the hub's UnitedDeployment status is after a change in a
//! member cluster, and how long an `Adaptive` UnitedDeployment takes to bring a lost cluster's
//! replicas back up in the other clusters. Runs etcd, one `kruise-hub`, three `kruise-local`
//! clusters and their `kruise-agent`s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_tests::hub::{hub_cluster_command, HubAgent, HubReplica};
use kruise_tests::{wait_until, LocalCluster};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{json, Value};

/// Shards the hub splits UnitedDeployments over; all must be owned before the run starts.
const SHARDS: usize = 64;
/// Hub shard lease TTL in seconds.
const LEASE_TTL: u64 = 3;
/// How often the hub and the members are polled.
const POLL: Duration = Duration::from_millis(10);
/// Readiness delay of a new pod: long enough that a deleted pod's replacement is observably
/// not ready for a while, so every change shows up as a drop and a recovery.
const READINESS_DELAY_MS: &str = "1000";

/// Parameters of the federation case.
pub struct Params {
    /// Member changes measured for status freshness.
    pub changes: usize,
    /// Replicas of the failover UnitedDeployment, all on c1 before the failure.
    pub replicas: usize,
    /// Simulated nodes per member cluster.
    pub nodes: usize,
}

fn api(client: &Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let version = if group.is_empty() { "v1" } else { "v1alpha1" };
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn uds(hub: &Client) -> Api<DynamicObject> {
    api(
        hub,
        "apps.kruise.io",
        "UnitedDeployment",
        "uniteddeployments",
    )
}

fn pods(member: &Client) -> Api<DynamicObject> {
    api(member, "", "Pod", "pods")
}

fn united_deployment(
    name: &str,
    replicas: usize,
    topology: Value,
) -> anyhow::Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "UnitedDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"cloneSetTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}}},
            "topology": topology}}))?)
}

/// Names of the live, Ready pods of `app` in a member.
async fn ready_pods(member: &Client, app: &str) -> anyhow::Result<Vec<String>> {
    let list = pods(member)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.data
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
        })
        .filter_map(|p| p.metadata.name)
        .collect())
}

/// `status.readyReplicas` of a UnitedDeployment on the hub (0 when absent).
async fn hub_ready(hub: &Client, name: &str) -> anyhow::Result<i64> {
    let ud = uds(hub).get(name).await?;
    Ok(ud
        .data
        .pointer("/status/readyReplicas")
        .and_then(Value::as_i64)
        .unwrap_or(0))
}

/// `status.readyReplicas` of the CloneSets of `app` in a member.
async fn member_ready(member: &Client, app: &str) -> anyhow::Result<i64> {
    let list = api(member, "apps.kruise.io", "CloneSet", "clonesets")
        .list(&ListParams::default())
        .await?;
    Ok(list
        .items
        .iter()
        .filter(|c| c.data.pointer("/spec/selector/matchLabels/app") == Some(&json!(app)))
        .filter_map(|c| {
            c.data
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
        })
        .sum())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "{name}: n={} p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        samples.len(),
        percentile(samples, 50.0).as_secs_f64() * 1000.0,
        percentile(samples, 99.0).as_secs_f64() * 1000.0,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    )
}

/// Polls until `done` holds for a fresh reading, returning when it first did.
async fn poll_until<F, Fut>(timeout: Duration, mut done: F) -> anyhow::Result<Instant>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let start = Instant::now();
    loop {
        if matches!(done().await, Ok(true)) {
            return Ok(Instant::now());
        }
        if start.elapsed() > timeout {
            anyhow::bail!("condition not reached within {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Runs the federation case and prints its figures.
pub async fn run(params: &Params) -> anyhow::Result<()> {
    let etcd = EtcdProcess::start().await?;
    let dir = tempfile::tempdir()?;
    let token = "federation-bench-token";
    eprintln!("  starting kruise-hub");
    let hubs = [HubReplica::start("hub-a", etcd.endpoint(), dir.path(), token, LEASE_TTL).await?];
    wait_until(Duration::from_secs(30), || async {
        Ok(hubs[0].owned_shards().await == SHARDS)
    })
    .await?;
    let crds = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/kruise-agent/crds")
        .display()
        .to_string();
    let mut clusters = Vec::new();
    let mut agents = Vec::new();
    let nodes = params.nodes.to_string();
    for i in 1..=3 {
        let name = format!("c{i}");
        eprintln!("  starting member {name}");
        let flags = [
            "--crds-dir",
            crds.as_str(),
            "--image-pull-ms-per-mb",
            "0",
            "--container-start-ms",
            "0",
            "--readiness-delay-ms",
            READINESS_DELAY_MS,
            "--schedule-delay-ms",
            "0",
            "--container-stop-ms",
            "0",
        ];
        let cluster = LocalCluster::start(&name, params.nodes, &flags).await?;
        let join_path = dir.path().join(format!("{name}.join.yaml"));
        hub_cluster_command(
            &hubs[0].kubeconfig,
            &[
                "add",
                &name,
                "--labels",
                &format!("topology.kubernetes.io/region=r{i}"),
                "--join-file",
                &join_path.display().to_string(),
                "--grpc-endpoint",
                &hubs[0].grpc_endpoint(),
            ],
        )?;
        agents.push(HubAgent::start(&cluster, &join_path)?);
        clusters.push(cluster);
    }
    let members: Vec<Client> =
        futures::future::try_join_all(clusters.iter().map(|c| c.client())).await?;
    let hub = hubs[0].client().await?;
    eprintln!("  federation up ({nodes} nodes per member)");

    // 1. Freshness: 3 replicas in c2; delete one pod in the member, time the drop and the
    // recovery of readyReplicas in the member CloneSet and in the hub status.
    let total = 3i64;
    uds(&hub)
        .create(
            &PostParams::default(),
            &united_deployment(
                "fresh",
                3,
                json!({"subsets": [{"name": "r2", "clusters": ["c2"]}],
                       "scheduleStrategy": {"type": "Fixed"}}),
            )?,
        )
        .await?;
    let c2 = members[1].clone();
    poll_until(Duration::from_secs(120), || async {
        Ok(hub_ready(&hub, "fresh").await? == total && ready_pods(&c2, "fresh").await?.len() == 3)
    })
    .await?;
    let (mut from_member, mut from_delete) = (Vec::new(), Vec::new());
    for n in 1..=params.changes {
        let victim = ready_pods(&c2, "fresh")
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| anyhow::anyhow!("no ready pod of fresh in c2"))?;
        let deleted = Instant::now();
        pods(&c2)
            .delete(&victim, &DeleteParams::default().grace_period(0))
            .await?;
        // Drop, then recovery; each timed in the member and on the hub, polled concurrently.
        for (what, want_low) in [("drop", true), ("recovery", false)] {
            let hit = |v: i64| if want_low { v < total } else { v == total };
            let member_at = poll_until(Duration::from_secs(30), || async {
                Ok(hit(member_ready(&c2, "fresh").await?))
            });
            let hub_at = poll_until(Duration::from_secs(30), || async {
                Ok(hit(hub_ready(&hub, "fresh").await?))
            });
            let (member_at, hub_at) = tokio::try_join!(member_at, hub_at)?;
            let lag = hub_at.saturating_duration_since(member_at);
            from_member.push(lag);
            if want_low {
                from_delete.push(hub_at.duration_since(deleted));
            }
            eprintln!(
                "  change {n}/{} {what}: member after {:.0} ms, hub after {:.0} ms (lag {:.0} ms)",
                params.changes,
                member_at.duration_since(deleted).as_secs_f64() * 1000.0,
                hub_at.duration_since(deleted).as_secs_f64() * 1000.0,
                lag.as_secs_f64() * 1000.0
            );
        }
    }

    // 2. Failover: an Adaptive UnitedDeployment with every replica in c1; kill c1's kruise-local.
    let replicas = params.replicas;
    let topology = json!({
        "subsets": [
            {"name": "r1", "clusters": ["c1"], "minReplicas": replicas, "maxReplicas": replicas},
            {"name": "r2", "clusters": ["c2"]},
            {"name": "r3", "clusters": ["c3"]}],
        "scheduleStrategy": {"type": "Adaptive"}});
    uds(&hub)
        .create(
            &PostParams::default(),
            &united_deployment("failover", replicas, topology)?,
        )
        .await?;
    let placed = Instant::now();
    let c1 = members[0].clone();
    let mut last_report = Instant::now();
    loop {
        let ready = ready_pods(&c1, "failover")
            .await
            .map(|p| p.len())
            .unwrap_or(0);
        if ready == replicas {
            break;
        }
        if placed.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("only {ready}/{replicas} replicas became ready in c1");
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "  ... {ready}/{replicas} ready in c1 after {:.1}s",
                placed.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    }
    let placed_in = placed.elapsed();
    eprintln!(
        "  {replicas} replicas ready in c1 after {:.1}s; killing c1's kruise-local",
        placed_in.as_secs_f64()
    );
    clusters[0].kill();
    let killed = Instant::now();
    let mut last_report = Instant::now();
    let members_done = loop {
        let mut ready = 0;
        for m in &members[1..] {
            ready += ready_pods(m, "failover")
                .await
                .map(|p| p.len())
                .unwrap_or(0);
        }
        if ready == replicas {
            break Instant::now();
        }
        if killed.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("only {ready}/{replicas} replicas became ready in c2+c3");
        }
        if last_report.elapsed() > Duration::from_secs(2) {
            eprintln!(
                "  ... {ready}/{replicas} ready in c2+c3 after {:.1}s",
                killed.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(POLL).await;
    };
    let failover = members_done.duration_since(killed);
    // The hub status catching up with the members after the failover.
    let hub_done = poll_until(Duration::from_secs(60), || async {
        Ok(hub_ready(&hub, "failover").await? == replicas as i64)
    })
    .await?;

    println!(
        "federation: 1 hub, 3 member clusters x {} nodes, readiness delay {READINESS_DELAY_MS} ms",
        params.nodes
    );
    println!(
        "  hub status freshness over {} member changes (pod deleted in c2, readyReplicas drop and recovery):",
        params.changes
    );
    println!(
        "    {}",
        summary(
            "lag member CloneSet status -> hub UnitedDeployment status",
            &mut from_member
        )
    );
    println!(
        "    {}",
        summary("pod delete -> hub readyReplicas drop", &mut from_delete)
    );
    let p99 = percentile(&from_member, 99.0);
    println!(
        "    target: fresh within 2 s -> {}",
        if p99 <= Duration::from_secs(2) {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  Adaptive failover of {replicas} replicas from c1 (initial placement took {:.1}s):",
        placed_in.as_secs_f64()
    );
    println!(
        "    kill c1 kruise-local -> {replicas} Ready in c2+c3: {:.2}s",
        failover.as_secs_f64()
    );
    println!(
        "    kill c1 kruise-local -> hub readyReplicas {replicas}: {:.2}s",
        hub_done.duration_since(killed).as_secs_f64()
    );
    drop(agents);
    Ok(())
}
