//! Hub end to end with real processes: etcd, three `kruise-hub` replicas, three `kruise-local`
//! clusters and three `kruise-agent`s joined with `kruise-hub cluster add` join files.
//!
//! Build the binaries first: `cargo build -p kruise-hub -p kruise-agent -p kruise-local`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_proto::federation::GetWorkRequest;
use kruise_proto::JoinFile;
use kruise_tests::hub::{hub_cluster_command, metric, HubAgent, HubReplica};
use kruise_tests::{wait_until, LocalCluster};
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client};
use serde_json::{json, Value};

const SHARDS: usize = 64;
const LEASE_TTL: u64 = 3;

fn crds_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/kruise-agent/crds")
        .display()
        .to_string()
}

fn works(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("federation.kruise.io", "v1alpha1", "Work"),
        "works",
    );
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn clonesets(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", "CloneSet"),
        "clonesets",
    );
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn work(name: &str, cluster: &str, replicas: i64) -> DynamicObject {
    let value = json!({
        "apiVersion": "federation.kruise.io/v1alpha1", "kind": "Work",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"cluster": cluster, "workload": {
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}}}});
    serde_json::from_value(value).expect("valid Work")
}

fn managed_clusters(client: &Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("federation.kruise.io", "v1alpha1", "ManagedCluster"),
        "managedclusters",
    );
    Api::all_with(client.clone(), &ar)
}

/// The status of the `Ready` condition.
fn ready(cluster: &Value) -> Option<&str> {
    cluster
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?
        .get("status")?
        .as_str()
}

async fn exists(api: Api<DynamicObject>, name: &str) -> anyhow::Result<bool> {
    Ok(api.get_opt(name).await?.is_some())
}

async fn total_owned(hubs: &[&HubReplica]) -> usize {
    let mut total = 0;
    for h in hubs {
        total += h.owned_shards().await;
    }
    total
}

async fn snapshot_events(hubs: &[HubReplica]) -> f64 {
    metric_sum(hubs, "kruise_hub_work_events_total{reason=\"snapshot\"}").await
}

/// `name` summed over every replica that answers.
async fn metric_sum(hubs: &[HubReplica], name: &str) -> f64 {
    let mut total = 0.0;
    for h in hubs {
        if let Ok(text) = h.metrics().await {
            total += metric(&text, name).unwrap_or(0.0);
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hub_dispatches_fails_over_and_resumes() -> anyhow::Result<()> {
    let etcd = match EtcdProcess::start().await {
        Ok(etcd) => etcd,
        Err(e) => {
            eprintln!("skipping: {e}");
            return Ok(());
        }
    };
    let tmp = tempfile::tempdir()?;
    // KRUISE_KEEP_STATE=1 keeps the hub logs, join files and kubeconfigs for a post-mortem.
    let (_guard, dir) = if std::env::var_os("KRUISE_KEEP_STATE").is_some() {
        let kept = tmp.keep();
        eprintln!("keeping hub state in {}", kept.display());
        (None, kept)
    } else {
        let path = tmp.path().to_path_buf();
        (Some(tmp), path)
    };
    let token = "e2e-admin-token";
    let mut hubs = Vec::new();
    for id in ["hub-a", "hub-b", "hub-c"] {
        hubs.push(HubReplica::start(id, etcd.endpoint(), dir.as_path(), token, LEASE_TTL).await?);
    }
    wait_until(Duration::from_secs(15), || async {
        Ok(total_owned(&hubs.iter().collect::<Vec<_>>()).await == SHARDS)
    })
    .await?;
    let hub = hubs[0].client().await?;
    let endpoints: Vec<String> = hubs.iter().map(HubReplica::grpc_endpoint).collect();

    let crds = crds_dir();
    let mut clusters = Vec::new();
    let mut agents = Vec::new();
    let mut joins = Vec::new();
    for i in 1..=3 {
        let name = format!("c{i}");
        let cluster = LocalCluster::start(&name, 1, &["--crds-dir", &crds]).await?;
        let join_path = dir.as_path().join(format!("{name}.join.yaml"));
        // Each agent lists the endpoints starting with a different replica.
        let mut rotated = endpoints.clone();
        rotated.rotate_left(i - 1);
        hub_cluster_command(
            &hubs[0].kubeconfig,
            &[
                "add",
                &name,
                "--labels",
                &format!("region=r{i}"),
                "--join-file",
                &join_path.display().to_string(),
                "--grpc-endpoint",
                &rotated.join(","),
            ],
        )?;
        agents.push(HubAgent::start(&cluster, &join_path)?);
        joins.push(JoinFile::read(&join_path)?);
        clusters.push(cluster);
    }
    let members: Vec<Client> =
        futures::future::try_join_all(clusters.iter().map(|c| c.client())).await?;

    // A Work on the hub shows up as the workload in its cluster only.
    let hub_works = works(&hub);
    let started = Instant::now();
    hub_works
        .create(&PostParams::default(), &work("web", "c1", 1))
        .await?;
    wait_until(Duration::from_secs(10), || {
        exists(clonesets(&members[0]), "web")
    })
    .await?;
    eprintln!("first dispatch took {:?}", started.elapsed());
    assert!(!exists(clonesets(&members[1]), "web").await?);

    // Status flows back: Applied=True on the hub.
    wait_until(Duration::from_secs(15), || async {
        let w = hub_works.get("web").await?;
        let status = serde_json::to_value(&w)?;
        Ok(status
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Applied" && c["status"] == "True")
            }))
    })
    .await?;

    // Steady-state latency of a create with every agent connected.
    let started = Instant::now();
    hub_works
        .create(&PostParams::default(), &work("api", "c2", 1))
        .await?;
    wait_until(Duration::from_secs(5), || {
        exists(clonesets(&members[1]), "api")
    })
    .await?;
    let latency = started.elapsed();
    eprintln!("dispatch latency {latency:?}");
    assert!(
        latency < Duration::from_secs(2),
        "dispatch took {latency:?}"
    );

    // Once the workload is available its status settles: the agent's reports are not echoed
    // back to it as Work changes, so it does not re-apply and report again in a loop.
    wait_until(Duration::from_secs(30), || async {
        let w = serde_json::to_value(hub_works.get("api").await?)?;
        Ok(w.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Available" && c["status"] == "True")
            }))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let reports = "kruise_hub_status_reports_total";
    let before = metric_sum(&hubs, reports).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = metric_sum(&hubs, reports).await;
    assert!(
        after - before <= 1.0,
        "status reports keep coming for settled workloads: {before} -> {after}"
    );
    let suppressed = metric_sum(
        &hubs,
        "kruise_hub_work_events_total{reason=\"status_only_suppressed\"}",
    )
    .await;
    assert!(
        suppressed > 0.0,
        "status-only Work writes were not suppressed"
    );

    // Deleting the Work removes the workload.
    hub_works.delete("web", &DeleteParams::default()).await?;
    wait_until(Duration::from_secs(10), || async {
        Ok(!exists(clonesets(&members[0]), "web").await?)
    })
    .await?;

    // A wrong token is refused; a cluster cannot read another cluster's Work.
    let channel = kruise_agent::hublink::connect(&joins[0], &endpoints[0]).await?;
    let mut forged = kruise_agent::hublink::hub_client(channel.clone(), "c1:not-the-token");
    let refused = forged
        .get_work(GetWorkRequest {
            namespace: "default".into(),
            name: "api".into(),
        })
        .await
        .expect_err("a wrong token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(
        refused.message().contains("invalid token for cluster c1"),
        "{refused:?}"
    );
    let mut c1 = kruise_agent::hublink::hub_client(channel, &joins[0].token);
    let denied = c1
        .get_work(GetWorkRequest {
            namespace: "default".into(),
            name: "api".into(),
        })
        .await
        .expect_err("c1 cannot read c2's Work");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");

    // SIGKILL one replica: the others own every shard within lease TTL + 2 s.
    let killed_owned = hubs[2].owned_shards().await;
    assert!(killed_owned > 0);
    let killed_at = Instant::now();
    hubs[2].kill();
    wait_until(Duration::from_secs(LEASE_TTL + 2), || async {
        Ok(total_owned(&[&hubs[0], &hubs[1]]).await == SHARDS)
    })
    .await?;
    eprintln!(
        "takeover of {killed_owned} shards took {:?}",
        killed_at.elapsed()
    );
    // Dispatch keeps working (the agent of c3 connected to the killed replica first).
    hub_works
        .create(&PostParams::default(), &work("db", "c3", 1))
        .await?;
    wait_until(Duration::from_secs(20), || {
        exists(clonesets(&members[2]), "db")
    })
    .await?;

    // The replica comes back and takes about a third of the shards again.
    hubs[2].restart().await?;
    wait_until(Duration::from_secs(15), || async {
        Ok(hubs[2].owned_shards().await > 0
            && total_owned(&hubs.iter().collect::<Vec<_>>()).await == SHARDS)
    })
    .await?;
    let back = hubs[2].owned_shards().await;
    assert!(
        (8..=36).contains(&back),
        "rejoined replica owns {back} of {SHARDS}"
    );

    // Heartbeats keep c1 Ready with its capacity; once its agent stops, the owner of c1's shard
    // marks it NotReady after the heartbeat timeout (5 s).
    let mcl = managed_clusters(&hub);
    wait_until(Duration::from_secs(10), || async {
        let c1 = serde_json::to_value(mcl.get("c1").await?)?;
        Ok(ready(&c1) == Some("True") && c1.pointer("/status/capacity/nodes") == Some(&json!(1)))
    })
    .await?;
    let snapshots_before = snapshot_events(&hubs).await;
    agents[0].stop();
    wait_until(Duration::from_secs(10), || async {
        let c1 = serde_json::to_value(mcl.get("c1").await?)?;
        Ok(ready(&c1) == Some("False"))
    })
    .await?;

    // An agent restarted after changes receives exactly those changes (no snapshot).
    hub_works
        .create(&PostParams::default(), &work("late", "c1", 1))
        .await?;
    hub_works
        .create(&PostParams::default(), &work("other", "c2", 1))
        .await?;
    agents[0].restart()?;
    wait_until(Duration::from_secs(20), || {
        exists(clonesets(&members[0]), "late")
    })
    .await?;
    assert!(!exists(clonesets(&members[0]), "other").await?);
    assert_eq!(
        snapshot_events(&hubs).await,
        snapshots_before,
        "the restarted agent resumed by revision instead of taking a snapshot"
    );
    Ok(())
}
