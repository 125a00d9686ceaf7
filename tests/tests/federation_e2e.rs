//! Federation end to end with real processes: etcd, two `kruise-hub` replicas, three
//! `kruise-local` clusters and their `kruise-agent`s.
//!
//! A 10-replica UnitedDeployment over three clusters (50% / 30% / rest) runs 5/3/2 pods in the
//! right clusters; an image update rolls out wave by wave (subset r3, then r2, then r1) in place,
//! observed through the UnitedDeployment's status on the hub, surviving the kill of the hub
//! replica that drives it; with `Adaptive`, killing a member cluster's `kruise-local` makes its
//! replicas reappear in another cluster, and they come back after it restarts; pods that stay
//! unschedulable (cordoned nodes) move to another subset and come back once the nodes are
//! schedulable again. The hub status follows a change in a member within 2 s.
//!
//! Build the binaries first: `cargo build -p kruise-hub -p kruise-agent -p kruise-local`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_tests::hub::{hub_cluster_command, metric, HubAgent, HubReplica};
use kruise_tests::{wait_until, LocalCluster};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
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

fn api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn api_all(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Api<DynamicObject> {
    let ar =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    Api::all_with(client.clone(), &ar)
}

fn uds(hub: &Client) -> Api<DynamicObject> {
    api(
        hub,
        "apps.kruise.io",
        "v1alpha1",
        "UnitedDeployment",
        "uniteddeployments",
    )
}

fn pods(member: &Client) -> Api<DynamicObject> {
    api(member, "", "v1", "Pod", "pods")
}

fn united_deployment(name: &str, image: &str, subsets: Value, schedule: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "UnitedDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": name}},
            "template": {"cloneSetTemplate": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "main", "image": image}]}},
                    "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": "50%"}}}},
            "topology": {"subsets": subsets, "scheduleStrategy": schedule},
            "updateStrategy": {"type": "Manual", "waves": {"unit": "Subset",
                "order": ["r3", "r2", "r1"], "progressDeadlineSeconds": 300}}}}))
    .expect("valid UnitedDeployment")
}

/// Ready pods of `app` in a member: name -> (uid, image).
async fn ready_pods(
    member: &Client,
    app: &str,
) -> anyhow::Result<BTreeMap<String, (String, String)>> {
    let list = pods(member)
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|p| {
            let v = serde_json::to_value(&p).ok()?;
            if v.pointer("/metadata/deletionTimestamp").is_some() {
                return None;
            }
            let ready = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                });
            ready.then(|| {
                (
                    v.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    (
                        v.pointer("/metadata/uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        v.pointer("/spec/containers/0/image")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    ),
                )
            })
        })
        .collect())
}

async fn ud_status(hub: &Client, name: &str) -> anyhow::Result<Value> {
    let ud = uds(hub).get(name).await?;
    Ok(serde_json::to_value(&ud)?
        .get("status")
        .cloned()
        .unwrap_or(Value::Null))
}

async fn total_owned(hubs: &[HubReplica]) -> usize {
    let mut total = 0;
    for h in hubs {
        total += h.owned_shards().await;
    }
    total
}

async fn reconciles(hub: &HubReplica) -> f64 {
    match hub.metrics().await {
        Ok(text) => metric(&text, "kruise_hub_ud_reconciles_total{reason=\"ok\"}").unwrap_or(0.0),
        Err(_) => 0.0,
    }
}

/// The replica reconciling UnitedDeployments right now (only a shard's owner reconciles).
async fn driving_replica(hubs: &[HubReplica]) -> usize {
    let before: Vec<f64> = futures::future::join_all(hubs.iter().map(reconciles)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after: Vec<f64> = futures::future::join_all(hubs.iter().map(reconciles)).await;
    (0..hubs.len())
        .max_by(|a, b| (after[*a] - before[*a]).total_cmp(&(after[*b] - before[*b])))
        .unwrap_or(0)
}

/// Prints what the hub and the members hold, for a failed wait.
async fn dump(hub: &Client, members: &[Client], app: &str) {
    if let Ok(s) = ud_status(hub, app).await {
        eprintln!("UnitedDeployment {app} status: {s:#}");
    }
    let works = api(hub, "federation.kruise.io", "v1alpha1", "Work", "works");
    if let Ok(list) = works.list(&ListParams::default()).await {
        for w in list.items {
            let v = serde_json::to_value(&w).unwrap_or_default();
            eprintln!(
                "Work {}: cluster {} replicas {} image {} labels {} status {}",
                v["metadata"]["name"],
                v["spec"]["cluster"],
                v["spec"]["workload"]["spec"]["replicas"],
                v.pointer("/spec/workload/spec/template/spec/containers/0/image")
                    .unwrap_or(&Value::Null),
                v["metadata"]["labels"],
                v["status"]
            );
        }
    }
    for (i, m) in members.iter().enumerate() {
        let clonesets = api(m, "apps.kruise.io", "v1alpha1", "CloneSet", "clonesets");
        if let Ok(list) = clonesets.list(&ListParams::default()).await {
            for c in list.items {
                let v = serde_json::to_value(&c).unwrap_or_default();
                eprintln!(
                    "c{}: CloneSet {} spec.replicas {} status {}",
                    i + 1,
                    v["metadata"]["name"],
                    v["spec"]["replicas"],
                    v["status"]
                );
            }
        }
        if let Ok(p) = ready_pods(m, app).await {
            eprintln!("c{}: {} ready pods of {app}", i + 1, p.len());
        }
    }
}

/// Waits for `check`, dumping the hub and members on timeout.
async fn wait_or_dump<F, Fut>(
    timeout: Duration,
    hub: &Client,
    members: &[Client],
    app: &str,
    check: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let result = wait_until(timeout, check).await;
    if result.is_err() {
        dump(hub, members, app).await;
    }
    result
}

fn subset_names(n: &[&str]) -> Vec<String> {
    n.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn united_deployment_places_rolls_in_waves_and_fails_over() -> anyhow::Result<()> {
    let etcd = match EtcdProcess::start().await {
        Ok(etcd) => etcd,
        Err(e) => {
            eprintln!("skipping: {e}");
            return Ok(());
        }
    };
    let tmp = tempfile::tempdir()?;
    let (_guard, dir) = if std::env::var_os("KRUISE_KEEP_STATE").is_some() {
        let kept = tmp.keep();
        eprintln!("keeping hub state in {}", kept.display());
        (None, kept)
    } else {
        let path = tmp.path().to_path_buf();
        (Some(tmp), path)
    };
    let token = "federation-e2e-token";
    let mut hubs = Vec::new();
    for id in ["hub-a", "hub-b"] {
        hubs.push(HubReplica::start(id, etcd.endpoint(), dir.as_path(), token, LEASE_TTL).await?);
    }
    wait_until(Duration::from_secs(15), || async {
        Ok(total_owned(&hubs).await == SHARDS)
    })
    .await?;
    let endpoints: Vec<String> = hubs.iter().map(HubReplica::grpc_endpoint).collect();
    let crds = crds_dir();
    let mut clusters = Vec::new();
    let mut agents = Vec::new();
    for i in 1..=3 {
        let name = format!("c{i}");
        let cluster = LocalCluster::start(&name, 2, &["--crds-dir", &crds]).await?;
        let join_path = dir.as_path().join(format!("{name}.join.yaml"));
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
                &endpoints.join(","),
            ],
        )?;
        agents.push(HubAgent::start(&cluster, &join_path)?);
        clusters.push(cluster);
    }
    let members: Vec<Client> =
        futures::future::try_join_all(clusters.iter().map(|c| c.client())).await?;
    let hub = hubs[1].client().await?;

    // 10 replicas over r1/r2/r3: 50%, 30%, the rest.
    let subsets = json!([
        {"name": "r1", "clusters": ["c1"], "replicas": "50%"},
        {"name": "r2", "clusters": ["c2"], "replicas": "30%"},
        {"name": "r3", "clusters": ["c3"]}]);
    uds(&hub)
        .create(
            &PostParams::default(),
            &united_deployment("shop", "nginx:1.25", subsets, json!({"type": "Fixed"})),
        )
        .await?;
    let expected = [5usize, 3, 2];
    // Freshness: the time from the last member pod turning ready to the hub status saying so.
    let created = Instant::now();
    let (mut members_ready, mut hub_ready) = (None::<Instant>, None::<Instant>);
    while members_ready.is_none() || hub_ready.is_none() {
        if created.elapsed() > Duration::from_secs(90) {
            dump(&hub, &members, "shop").await;
            anyhow::bail!(
                "shop did not become ready: members {members_ready:?}, hub {hub_ready:?}"
            );
        }
        if members_ready.is_none() {
            let mut all = true;
            for (member, want) in members.iter().zip(expected) {
                all &= ready_pods(member, "shop").await?.len() == want;
            }
            if all {
                members_ready = Some(Instant::now());
            }
        }
        if hub_ready.is_none() {
            if let Ok(s) = ud_status(&hub, "shop").await {
                if s["readyReplicas"] == 10 && s["replicas"] == 10 {
                    hub_ready = Some(Instant::now());
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (Some(members_ready), Some(hub_ready)) = (members_ready, hub_ready) else {
        anyhow::bail!("unreachable: both times are set");
    };
    let freshness = hub_ready.saturating_duration_since(members_ready);
    eprintln!(
        "freshness: members ready at {:?}, hub status ready at {:?} (lag {freshness:?})",
        members_ready - created,
        hub_ready - created
    );
    assert!(
        freshness < Duration::from_secs(2),
        "the hub status lagged the members by {freshness:?}"
    );
    let status = ud_status(&hub, "shop").await?;
    assert_eq!(status["subsetReplicas"], json!({"r1": 5, "r2": 3, "r3": 2}));
    let mut uids_before = Vec::new();
    for member in &members {
        let pods = ready_pods(member, "shop").await?;
        assert!(pods.values().all(|(_, image)| image == "nginx:1.25"));
        uids_before.push(
            pods.values()
                .map(|(uid, _)| uid.clone())
                .collect::<Vec<_>>(),
        );
    }

    // Image update: waves r3, r2, r1, observed through the hub status.
    let old_revision = status["updateStatus"]["updatedRevision"].clone();
    let driver = driving_replica(&hubs).await;
    eprintln!("replica {} drives the UnitedDeployment", hubs[driver].id);
    uds(&hub)
        .patch(
            "shop",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"template": {"cloneSetTemplate": {"spec": {"template": {
                "spec": {"containers": [{"name": "main", "image": "nginx:1.26"}]}}}}}}}),
            ),
        )
        .await?;
    let started = Instant::now();
    let mut seen_waves: Vec<String> = Vec::new();
    let mut killed = false;
    let mut hub_client = hub.clone();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "rollout did not finish; waves seen {seen_waves:?}"
        );
        let s = match ud_status(&hub_client, "shop").await {
            Ok(s) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Some(current) = s.pointer("/waveStatus/current").and_then(Value::as_str) {
            if seen_waves.last().map(String::as_str) != Some(current) {
                // When a wave starts, the subsets after it still run the old image.
                let index = ["r1", "r2", "r3"]
                    .iter()
                    .position(|n| *n == current)
                    .unwrap_or(0);
                let later: Vec<usize> = match current {
                    "r3" => vec![0, 1],
                    "r2" => vec![0],
                    _ => vec![],
                };
                for i in later {
                    let pods = ready_pods(&members[i], "shop").await?;
                    assert!(
                        pods.values().all(|(_, image)| image == "nginx:1.25"),
                        "wave {current} started but subset {} already updates",
                        ["r1", "r2", "r3"][i]
                    );
                }
                // ... and the subsets before it are updated and ready.
                let earlier: Vec<(usize, usize)> = match current {
                    "r2" => vec![(2, 2)],
                    "r1" => vec![(2, 2), (1, 3)],
                    _ => vec![],
                };
                for (i, want) in earlier {
                    let pods = ready_pods(&members[i], "shop").await?;
                    assert!(
                        pods.len() == want && pods.values().all(|(_, image)| image == "nginx:1.26"),
                        "wave {current} started before subset {} was updated and ready: {pods:?}",
                        ["r1", "r2", "r3"][i]
                    );
                }
                eprintln!(
                    "wave {current} (subset index {index}) at {:?}",
                    started.elapsed()
                );
                seen_waves.push(current.to_string());
            }
            // Kill the driving replica in the middle of the second wave.
            if current == "r2" && !killed {
                killed = true;
                eprintln!("killing {}", hubs[driver].id);
                hubs[driver].kill();
                let survivor = 1 - driver;
                hub_client = hubs[survivor].client().await?;
            }
        }
        let done = s["updateStatus"]["updatedRevision"] != old_revision
            && s["currentRevision"] == s["updateStatus"]["updatedRevision"]
            && s["updatedReadyReplicas"] == 10
            && s.pointer("/waveStatus/completed") == Some(&json!(["r3", "r2", "r1"]));
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        seen_waves,
        subset_names(&["r3", "r2", "r1"]),
        "each wave once, in order"
    );
    assert!(killed, "the driving replica was killed mid-rollout");
    for (member, before) in members.iter().zip(&uids_before) {
        let pods = ready_pods(member, "shop").await?;
        assert!(pods.values().all(|(_, image)| image == "nginx:1.26"));
        let mut after: Vec<String> = pods.values().map(|(uid, _)| uid.clone()).collect();
        let mut before = before.clone();
        after.sort();
        before.sort();
        assert_eq!(after, before, "pods were updated in place");
    }
    let survivor = 1 - driver;
    hubs[driver].restart().await?;

    // Adaptive: c1's kruise-local is killed, its agent reports it unreachable, c1 turns NotReady,
    // its replicas move to r2 and come back after it restarts.
    let hub = hubs[survivor].client().await?;
    let adaptive = json!([
        {"name": "r1", "clusters": ["c1"], "minReplicas": 4, "maxReplicas": 4},
        {"name": "r2", "clusters": ["c2"], "minReplicas": 3},
        {"name": "r3", "clusters": ["c3"], "minReplicas": 3, "maxReplicas": 3}]);
    uds(&hub)
        .create(
            &PostParams::default(),
            &united_deployment("api", "nginx:1.25", adaptive, json!({"type": "Adaptive"})),
        )
        .await?;
    wait_or_dump(Duration::from_secs(90), &hub, &members, "api", || async {
        for (member, want) in members.iter().zip([4usize, 3, 3]) {
            if ready_pods(member, "api").await?.len() != want {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await?;
    let c1_before: Vec<String> = ready_pods(&members[0], "api")
        .await?
        .into_values()
        .map(|(uid, _)| uid)
        .collect();
    let managed = api_all(
        &hub,
        "federation.kruise.io",
        "v1alpha1",
        "ManagedCluster",
        "managedclusters",
    );
    clusters[0].kill();
    let killed_at = Instant::now();
    wait_until(Duration::from_secs(20), || async {
        let c1 = serde_json::to_value(managed.get("c1").await?)?;
        Ok(c1["status"]["conditions"].as_array().is_some_and(|cs| {
            cs.iter().any(|c| {
                c["type"] == "Ready"
                    && c["status"] == "False"
                    && c["reason"] == "ClusterUnreachable"
            })
        }))
    })
    .await?;
    eprintln!(
        "c1 NotReady (ClusterUnreachable) {:?} after the kill",
        killed_at.elapsed()
    );
    let survivors = members[1..].to_vec();
    wait_until(Duration::from_secs(60), || async {
        Ok(ready_pods(&survivors[0], "api").await?.len() == 7)
    })
    .await?;
    eprintln!(
        "c1's replicas run in c2 {:?} after the kill",
        killed_at.elapsed()
    );
    // The Fixed UnitedDeployment moved nothing: its c1 Work keeps 5 replicas, c2 runs 3.
    let works = api(&hub, "federation.kruise.io", "v1alpha1", "Work", "works");
    let shop_c1 = serde_json::to_value(works.get("shop-r1-c1").await?)?;
    assert_eq!(shop_c1["spec"]["workload"]["spec"]["replicas"], 5);
    let shop_c2 = serde_json::to_value(works.get("shop-r2-c2").await?)?;
    assert_eq!(shop_c2["spec"]["workload"]["spec"]["replicas"], 3);
    assert_eq!(ready_pods(&members[1], "shop").await?.len(), 3);
    let api_status = ud_status(&hub, "api").await?;
    assert!(
        api_status["conditions"].as_array().is_some_and(|cs| cs
            .iter()
            .any(|c| { c["type"] == "SubsetFailure" && c["status"] == "True" })),
        "the failover is reported: {api_status}"
    );
    clusters[0].restart().await?;
    // kruise-local issues a new admin token at every start: the agent reads the new kubeconfig
    // when it restarts (until then its probes are refused and c1 stays NotReady).
    agents[0].stop();
    agents[0].restart()?;
    let members: Vec<Client> =
        futures::future::try_join_all(clusters.iter().map(|c| c.client())).await?;
    wait_or_dump(Duration::from_secs(90), &hub, &members, "api", || async {
        Ok(ready_pods(&members[1], "api").await?.len() == 3
            && ready_pods(&members[0], "api").await?.len() == 4)
    })
    .await?;
    let s = ud_status(&hub, "api").await?;
    assert_eq!(s["subsetReplicas"], json!({"r1": 4, "r2": 3, "r3": 3}));
    let c1_after: Vec<String> = ready_pods(&members[0], "api")
        .await?
        .into_values()
        .map(|(uid, _)| uid)
        .collect();
    eprintln!(
        "c1 pods kept across the outage: {} of {}",
        c1_after.iter().filter(|u| c1_before.contains(u)).count(),
        c1_before.len()
    );

    // Adaptive, unschedulable: with c3's nodes cordoned, r3's pods stay Pending; after
    // rescheduleCriticalSeconds the hub marks r3 Schedulable=False and runs its replicas in r2.
    // Once the nodes are schedulable again and unschedulableLastSeconds has passed, r3 gets
    // its share back.
    let c3_nodes = api_all(&members[2], "", "v1", "Node", "nodes");
    let cordon = |on: bool| {
        let c3_nodes = c3_nodes.clone();
        async move {
            for n in c3_nodes.list(&ListParams::default()).await?.items {
                let name = n.metadata.name.clone().unwrap_or_default();
                c3_nodes
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"spec": {"unschedulable": on}})),
                    )
                    .await?;
            }
            anyhow::Ok(())
        }
    };
    cordon(true).await?;
    let burst = json!([
        {"name": "r3", "clusters": ["c3"], "replicas": 4},
        {"name": "r2", "clusters": ["c2"]}]);
    uds(&hub)
        .create(
            &PostParams::default(),
            &united_deployment(
                "burst",
                "nginx:1.25",
                burst,
                json!({"type": "Adaptive", "adaptive": {
                    "rescheduleCriticalSeconds": 3, "unschedulableLastSeconds": 30}}),
            ),
        )
        .await?;
    let created = Instant::now();
    wait_or_dump(Duration::from_secs(60), &hub, &members, "burst", || async {
        let status = ud_status(&hub, "burst").await?;
        Ok(status["subsetStatuses"].as_array().is_some_and(|ss| {
            ss.iter().any(|s| {
                s["name"] == "r3"
                    && s["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Schedulable" && c["status"] == "False")
                    })
            })
        }))
    })
    .await?;
    eprintln!(
        "r3 marked unschedulable {:?} after creation",
        created.elapsed()
    );
    wait_or_dump(Duration::from_secs(90), &hub, &members, "burst", || async {
        Ok(ready_pods(&members[1], "burst").await?.len() == 10)
    })
    .await?;
    eprintln!(
        "r3's unschedulable replicas run in r2 {:?} after creation",
        created.elapsed()
    );
    assert!(ready_pods(&members[2], "burst").await?.is_empty());
    cordon(false).await?;
    wait_or_dump(Duration::from_secs(90), &hub, &members, "burst", || async {
        Ok(ready_pods(&members[2], "burst").await?.len() == 4
            && ready_pods(&members[1], "burst").await?.len() == 6)
    })
    .await?;
    Ok(())
}
