//! The agent link with real processes: etcd, one `kruise-hub`, one `kruise-local` cluster and
//! its `kruise-agent`. Covers what a cluster admin does to a live link: an agent that was away
//! while its resume revision was compacted gets a snapshot and prunes what it no longer should
//! have; a rotated token ends the old agent's stream and the new join file works; a revoked
//! token locks the cluster out.
//!
//! Build the binaries first: `cargo build -p kruise-hub -p kruise-agent -p kruise-local`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_proto::federation::GetWorkRequest;
use kruise_proto::JoinFile;
use kruise_tests::hub::{hub_cluster_command, metric, HubAgent, HubReplica};
use kruise_tests::{wait_until, LocalCluster};
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

const SHARDS: usize = 64;

fn crds_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../charts/kruise-agent/crds")
        .display()
        .to_string()
}

fn api(client: &Client, group: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1alpha1", kind), plural);
    if kind == "ManagedCluster" {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), "default", &ar)
    }
}

fn works(client: &Client) -> Api<DynamicObject> {
    api(client, "federation.kruise.io", "Work", "works")
}

fn clonesets(client: &Client) -> Api<DynamicObject> {
    api(client, "apps.kruise.io", "CloneSet", "clonesets")
}

fn work(name: &str) -> DynamicObject {
    let value = json!({
        "apiVersion": "federation.kruise.io/v1alpha1", "kind": "Work",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"cluster": "c1", "workload": {
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "main", "image": "nginx:1.25"}]}}}}}});
    serde_json::from_value(value).expect("valid Work")
}

async fn exists(api: Api<DynamicObject>, name: &str) -> anyhow::Result<bool> {
    Ok(api.get_opt(name).await?.is_some())
}

/// The status of the cluster's `Ready` condition on the hub.
async fn cluster_ready(hub: &Client) -> anyhow::Result<Option<String>> {
    let clusters = api(
        hub,
        "federation.kruise.io",
        "ManagedCluster",
        "managedclusters",
    );
    let c1 = serde_json::to_value(clusters.get("c1").await?)?;
    Ok(c1
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .map(str::to_string))
}

async fn hub_metric(hub: &HubReplica, name: &str) -> f64 {
    match hub.metrics().await {
        Ok(text) => metric(&text, name).unwrap_or(0.0),
        Err(_) => 0.0,
    }
}

/// Compacts etcd's history up to its current revision.
async fn compact_all(endpoint: &str) -> anyhow::Result<i64> {
    let mut etcd = etcd_client::Client::connect([endpoint], None).await?;
    let revision = etcd
        .get("compaction-probe", None)
        .await?
        .header()
        .map(|h| h.revision())
        .unwrap_or_default();
    etcd.compact(revision, None).await?;
    Ok(revision)
}

fn cluster_command(hub: &HubReplica, args: &[&str]) -> anyhow::Result<String> {
    hub_cluster_command(&hub.kubeconfig, args)
}

fn path_arg(p: &Path) -> String {
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_rotation_and_revocation_on_a_live_link() -> anyhow::Result<()> {
    let etcd = match EtcdProcess::start().await {
        Ok(etcd) => etcd,
        Err(e) => {
            eprintln!("skipping: {e}");
            return Ok(());
        }
    };
    let tmp = tempfile::tempdir()?;
    let dir = if std::env::var_os("KRUISE_KEEP_STATE").is_some() {
        let kept = tmp.keep();
        eprintln!("keeping hub state in {}", kept.display());
        kept
    } else {
        tmp.path().to_path_buf()
    };
    let hub_proc = HubReplica::start("hub-a", etcd.endpoint(), &dir, "link-admin-token", 3).await?;
    wait_until(Duration::from_secs(15), || async {
        Ok(hub_proc.owned_shards().await == SHARDS)
    })
    .await?;
    let hub = hub_proc.client().await?;
    let endpoint = hub_proc.grpc_endpoint();

    let cluster = LocalCluster::start("c1", 1, &["--crds-dir", &crds_dir()]).await?;
    let join_path = dir.join("c1.join.yaml");
    cluster_command(
        &hub_proc,
        &[
            "add",
            "c1",
            "--labels",
            "region=r1",
            "--join-file",
            &path_arg(&join_path),
            "--grpc-endpoint",
            &endpoint,
        ],
    )?;
    let mut agent = HubAgent::start(&cluster, &join_path)?;
    let member = cluster.client().await?;
    let hub_works = works(&hub);
    for name in ["keep", "gone"] {
        hub_works
            .create(&PostParams::default(), &work(name))
            .await?;
    }
    wait_until(Duration::from_secs(20), || async {
        Ok(exists(clonesets(&member), "keep").await? && exists(clonesets(&member), "gone").await?)
    })
    .await?;
    let keep_uid = clonesets(&member).get("keep").await?.uid();

    // Away while the hub's history is compacted past the agent's revision: on return the agent
    // gets a snapshot, prunes the workload of the deleted Work, applies the new one and leaves
    // the unchanged one alone.
    agent.stop();
    hub_works.delete("gone", &DeleteParams::default()).await?;
    hub_works
        .create(&PostParams::default(), &work("new"))
        .await?;
    let compacted_at = compact_all(etcd.endpoint()).await?;
    eprintln!("compacted etcd at revision {compacted_at}");
    let snapshots = "kruise_hub_work_events_total{reason=\"snapshot\"}";
    let snapshots_before = hub_metric(&hub_proc, snapshots).await;
    agent.restart()?;
    wait_until(Duration::from_secs(20), || async {
        Ok(exists(clonesets(&member), "new").await? && !exists(clonesets(&member), "gone").await?)
    })
    .await?;
    assert!(
        hub_metric(&hub_proc, snapshots).await > snapshots_before,
        "the agent's resume revision was compacted, so it must have been sent a snapshot"
    );
    assert_eq!(
        clonesets(&member).get("keep").await?.uid(),
        keep_uid,
        "a workload whose Work did not change is kept, not recreated"
    );

    // Rotating the token ends the old agent's stream at its next heartbeat, so the cluster goes
    // NotReady and Works created afterwards do not reach it. The new join file works.
    let old_join = JoinFile::read(&join_path)?;
    let rotated_path = dir.join("c1.rotated.join.yaml");
    cluster_command(
        &hub_proc,
        &[
            "rotate-token",
            "c1",
            "--join-file",
            &path_arg(&rotated_path),
            "--grpc-endpoint",
            &endpoint,
        ],
    )?;
    let channel = kruise_agent::hublink::connect(&old_join, &endpoint).await?;
    let mut stale = kruise_agent::hublink::hub_client(channel.clone(), &old_join.token);
    let refused = stale
        .get_work(GetWorkRequest {
            namespace: "default".into(),
            name: "keep".into(),
        })
        .await
        .expect_err("the rotated-out token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    wait_until(Duration::from_secs(15), || async {
        Ok(cluster_ready(&hub).await?.as_deref() == Some("False"))
    })
    .await?;
    hub_works
        .create(&PostParams::default(), &work("after-rotation"))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !exists(clonesets(&member), "after-rotation").await?,
        "an agent holding a rotated-out token must not receive new Works"
    );
    agent.stop();
    let mut agent = HubAgent::start(&cluster, &rotated_path)?;
    wait_until(Duration::from_secs(20), || async {
        Ok(exists(clonesets(&member), "after-rotation").await?
            && cluster_ready(&hub).await?.as_deref() == Some("True"))
    })
    .await?;

    // Revoking locks the cluster out: its stream ends, calls are refused, nothing new arrives.
    cluster_command(&hub_proc, &["revoke", "c1"])?;
    let rotated = JoinFile::read(&rotated_path)?;
    let mut revoked = kruise_agent::hublink::hub_client(channel, &rotated.token);
    let refused = revoked
        .get_work(GetWorkRequest {
            namespace: "default".into(),
            name: "keep".into(),
        })
        .await
        .expect_err("a revoked token is refused");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    wait_until(Duration::from_secs(15), || async {
        Ok(cluster_ready(&hub).await?.as_deref() == Some("False"))
    })
    .await?;
    hub_works
        .create(&PostParams::default(), &work("after-revoke"))
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!exists(clonesets(&member), "after-revoke").await?);
    let err = cluster_command(&hub_proc, &["revoke", "c1"]).expect_err("nothing left to revoke");
    assert!(err.to_string().contains("no token to revoke"), "{err:#}");
    agent.stop();
    Ok(())
}
