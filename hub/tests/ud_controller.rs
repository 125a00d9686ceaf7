//! The UnitedDeployment controller over the embedded store: Works per (subset, cluster), status
//! from Work reports, waves one subset at a time (also across a controller restart), and
//! adaptive failover when a cluster turns NotReady.
//!
//! The member agents are played by the test: it writes Work status the way the link does.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kruise_apiserver::store::{MemoryStore, Store, StoreError};
use kruise_hub::metrics::HubMetrics;
use kruise_hub::shard::{FencedWriter, Ownership};
use kruise_hub::ud::controller::{CLUSTERS_PREFIX, UDS_PREFIX};
use kruise_hub::ud::UdController;
use serde_json::{json, Value};
use tokio::sync::watch;

const WORKS: &str = "/registry/federation.kruise.io/works/default/";

struct Hub {
    store: Arc<dyn Store>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn start(store: Arc<dyn Store>) -> Hub {
    let (stop, rx) = watch::channel(false);
    let controller = Arc::new(
        UdController::new(
            store.clone(),
            FencedWriter::Solo(store.clone()),
            Ownership::all(),
            Arc::new(HubMetrics::default()),
        )
        .with_resync(Duration::from_millis(100)),
    );
    let task = tokio::spawn(controller.run(rx));
    Hub { store, stop, task }
}

impl Hub {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn put(store: &Arc<dyn Store>, key: &str, value: Value) {
    let bytes = Bytes::from(serde_json::to_vec(&value).expect("json"));
    loop {
        match store.get(key).await.expect("get") {
            Some(kv) => match store.update(key, bytes.clone(), kv.mod_revision).await {
                Ok(_) => return,
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => panic!("update {key}: {e}"),
            },
            None => match store.create(key, bytes.clone()).await {
                Ok(_) => return,
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => panic!("create {key}: {e}"),
            },
        }
    }
}

/// Read-modify-write of a stored object.
async fn modify(store: &Arc<dyn Store>, key: &str, f: impl Fn(&mut Value, i64)) {
    loop {
        let kv = store.get(key).await.expect("get").expect("exists");
        let mut v: Value = serde_json::from_slice(&kv.value).expect("json");
        f(&mut v, kv.mod_revision);
        let bytes = Bytes::from(serde_json::to_vec(&v).expect("json"));
        match store.update(key, bytes, kv.mod_revision).await {
            Ok(_) => return,
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => panic!("update {key}: {e}"),
        }
    }
}

async fn get(store: &Arc<dyn Store>, key: &str) -> Option<Value> {
    let kv = store.get(key).await.expect("get")?;
    serde_json::from_slice(&kv.value).ok()
}

async fn works(store: &Arc<dyn Store>) -> Vec<Value> {
    store
        .list(WORKS, None, None)
        .await
        .expect("list")
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn cluster(name: &str, ready: bool) -> Value {
    json!({"apiVersion": "federation.kruise.io/v1alpha1", "kind": "ManagedCluster",
        "metadata": {"name": name, "labels": {"region": name}},
        "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}})
}

fn ud(image: &str, adaptive: bool) -> Value {
    let mut subsets = json!([
        {"name": "r1", "clusters": ["c1"], "replicas": "50%"},
        {"name": "r2", "clusters": ["c2"], "replicas": "30%"},
        {"name": "r3", "clusters": ["c3"]}]);
    let mut topology = json!({});
    if adaptive {
        subsets = json!([
            {"name": "r1", "clusters": ["c1"], "minReplicas": 5, "maxReplicas": 5},
            {"name": "r2", "clusters": ["c2"], "minReplicas": 3},
            {"name": "r3", "clusters": ["c3"], "minReplicas": 2, "maxReplicas": 2}]);
        topology["scheduleStrategy"] = json!({"type": "Adaptive"});
    }
    topology["subsets"] = subsets;
    json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "UnitedDeployment",
        "metadata": {"name": "shop", "namespace": "default", "uid": "ud-uid", "generation": 1},
        "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"cloneSetTemplate": {"spec": {
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {"metadata": {"labels": {"app": "shop"}},
                    "spec": {"containers": [{"name": "shop", "image": image}]}},
                "updateStrategy": {"type": "InPlaceIfPossible"}}}},
            "topology": topology,
            "updateStrategy": {"type": "Manual", "waves": {"unit": "Subset",
                "order": ["r3", "r2", "r1"], "progressDeadlineSeconds": 600}}}})
}

fn work_key(subset: &str, cluster: &str) -> String {
    format!("{WORKS}shop-{subset}-{cluster}")
}

fn image(work: &Value) -> String {
    work.pointer("/spec/workload/spec/template/spec/containers/0/image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn replicas(work: &Value) -> i64 {
    work.pointer("/spec/workload/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(-1)
}

/// Plays the member agent: reports the Work's workload as fully updated and ready, or with
/// `ready` ready pods and nothing updated.
async fn report(store: &Arc<dyn Store>, key: &str, ready: Option<i64>) {
    modify(store, key, |w, rev| {
        let replicas = replicas(w);
        let (r, u) = match ready {
            None => (replicas, replicas),
            Some(r) => (r, 0),
        };
        w["status"] = json!({"observedRevision": rev.to_string(),
            "conditions": [{"type": "Applied", "status": "True"},
                           {"type": "Available", "status": if r >= replicas { "True" } else { "False" }}],
            "workloadStatus": {"replicas": replicas, "readyReplicas": r, "updatedReplicas": u,
                               "updatedReadyReplicas": u, "availableReplicas": r}});
    })
    .await;
}

async fn ud_status(store: &Arc<dyn Store>) -> Value {
    get(store, &format!("{UDS_PREFIX}default/shop"))
        .await
        .map(|u| u["status"].clone())
        .unwrap_or(Value::Null)
}

async fn setup(adaptive: bool) -> Hub {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for c in ["c1", "c2", "c3"] {
        put(&store, &format!("{CLUSTERS_PREFIX}{c}"), cluster(c, true)).await;
    }
    put(
        &store,
        &format!("{UDS_PREFIX}default/shop"),
        ud("shop:1", adaptive),
    )
    .await;
    start(store)
}

#[tokio::test]
async fn places_five_three_two_and_aggregates_status() {
    let hub = setup(false).await;
    let store = hub.store.clone();
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    for (subset, cluster, n) in [("r1", "c1", 5), ("r2", "c2", 3), ("r3", "c3", 2)] {
        let w = get(&store, &work_key(subset, cluster)).await.expect("work");
        assert_eq!(w["spec"]["cluster"], cluster);
        assert_eq!(replicas(&w), n, "{subset}");
        assert_eq!(w["spec"]["workload"]["kind"], "CloneSet");
        assert_eq!(
            w["spec"]["workload"]["metadata"]["name"],
            format!("shop-{subset}")
        );
        assert_eq!(
            w["metadata"]["labels"]["apps.kruise.io/subset-name"],
            subset
        );
        assert_eq!(w["metadata"]["ownerReferences"][0]["uid"], "ud-uid");
    }
    for (subset, cluster) in [("r1", "c1"), ("r2", "c2"), ("r3", "c3")] {
        report(&store, &work_key(subset, cluster), None).await;
    }
    let reported = std::time::Instant::now();
    eventually("status aggregated", || async {
        let s = ud_status(&store).await;
        s["replicas"] == 10 && s["readyReplicas"] == 10 && s["updatedReadyReplicas"] == 10
    })
    .await;
    assert!(
        reported.elapsed() < Duration::from_secs(2),
        "the hub status followed the Work reports in {:?}",
        reported.elapsed()
    );
    let s = ud_status(&store).await;
    assert_eq!(s["subsetReplicas"], json!({"r1": 5, "r2": 3, "r3": 2}));
    assert_eq!(s["currentRevision"], s["updateStatus"]["updatedRevision"]);
    assert_eq!(s["observedGeneration"], 1);
    assert_eq!(s["labelSelector"], "app=shop");

    // A subset removed from the spec loses its Work; its replicas go to the others.
    modify(&store, &format!("{UDS_PREFIX}default/shop"), |u, _| {
        u["spec"]["topology"]["subsets"] = json!([
            {"name": "r1", "clusters": ["c1"], "replicas": "50%"},
            {"name": "r2", "clusters": ["c2"]}]);
    })
    .await;
    eventually("r3 Work deleted", || async {
        get(&store, &work_key("r3", "c3")).await.is_none()
    })
    .await;
    let r2 = get(&store, &work_key("r2", "c2")).await.expect("r2");
    assert_eq!(replicas(&r2), 5);
    hub.stop().await;
}

#[tokio::test]
async fn waves_roll_one_subset_at_a_time_across_a_restart() {
    let hub = setup(false).await;
    let store = hub.store.clone();
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    let units = [("r3", "c3"), ("r2", "c2"), ("r1", "c1")];
    for (s, c) in units {
        report(&store, &work_key(s, c), None).await;
    }
    let v1 = ud_status(&store).await["currentRevision"].clone();
    modify(&store, &format!("{UDS_PREFIX}default/shop"), |u, _| {
        u["spec"]["template"]["cloneSetTemplate"]["spec"]["template"]["spec"]["containers"][0]
            ["image"] = json!("shop:2");
    })
    .await;
    // Wave 1: r3 only.
    eventually("r3 gets shop:2", || async {
        image(&get(&store, &work_key("r3", "c3")).await.expect("r3")) == "shop:2"
    })
    .await;
    let s = ud_status(&store).await;
    assert_eq!(s["waveStatus"]["current"], "r3");
    assert_eq!(s["currentRevision"], v1, "the rollout is not complete");
    for (subset, cluster) in [("r2", "c2"), ("r1", "c1")] {
        assert_eq!(
            image(&get(&store, &work_key(subset, cluster)).await.expect("w")),
            "shop:1"
        );
    }
    // r3's pods are updated and ready: wave 2 (r2) starts.
    report(&store, &work_key("r3", "c3"), None).await;
    eventually("r2 gets shop:2", || async {
        image(&get(&store, &work_key("r2", "c2")).await.expect("r2")) == "shop:2"
    })
    .await;
    assert_eq!(
        image(&get(&store, &work_key("r1", "c1")).await.expect("r1")),
        "shop:1"
    );
    assert_eq!(
        ud_status(&store).await["waveStatus"]["completed"],
        json!(["r3"])
    );

    // The replica restarts mid-wave: the new one resumes r2 and neither skips nor repeats it.
    let store = hub.store.clone();
    hub.stop().await;
    let before = ud_status(&store).await["waveStatus"].clone();
    let hub = start(store.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        ud_status(&store).await["waveStatus"],
        before,
        "wave state kept"
    );
    assert_eq!(
        image(&get(&store, &work_key("r1", "c1")).await.expect("r1")),
        "shop:1"
    );
    report(&store, &work_key("r2", "c2"), None).await;
    eventually("r1 gets shop:2", || async {
        image(&get(&store, &work_key("r1", "c1")).await.expect("r1")) == "shop:2"
    })
    .await;
    report(&store, &work_key("r1", "c1"), None).await;
    eventually("rollout complete", || async {
        let s = ud_status(&store).await;
        s["currentRevision"] == s["updateStatus"]["updatedRevision"]
            && s["waveStatus"]["completed"] == json!(["r3", "r2", "r1"])
            && s["updatedReadyReplicas"] == 10
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn wave_deadline_halts_the_rollout() {
    let hub = setup(false).await;
    let store = hub.store.clone();
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    modify(&store, &format!("{UDS_PREFIX}default/shop"), |u, _| {
        u["spec"]["template"]["cloneSetTemplate"]["spec"]["template"]["spec"]["containers"][0]
            ["image"] = json!("shop:2");
        u["spec"]["updateStrategy"]["waves"]["progressDeadlineSeconds"] = json!(1);
    })
    .await;
    eventually("deadline condition", || async {
        let s = ud_status(&store).await;
        s["waveStatus"]["deadlineExceeded"] == true
            && s["conditions"].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["type"] == "WaveProgressing"
                        && c["status"] == "False"
                        && c["reason"] == "ProgressDeadlineExceeded"
                })
            })
    })
    .await;
    assert_eq!(
        image(&get(&store, &work_key("r2", "c2")).await.expect("r2")),
        "shop:1",
        "the next wave never started"
    );
    hub.stop().await;
}

#[tokio::test]
async fn adaptive_moves_replicas_off_a_lost_cluster_and_back() {
    let hub = setup(true).await;
    let store = hub.store.clone();
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    for (s, c) in [("r1", "c1"), ("r2", "c2"), ("r3", "c3")] {
        report(&store, &work_key(s, c), None).await;
    }
    put(
        &store,
        &format!("{CLUSTERS_PREFIX}c1"),
        cluster("c1", false),
    )
    .await;
    // Make before break: r2 grows first, c1 keeps its five replicas.
    eventually("r2 scaled to 8", || async {
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")) == 8
    })
    .await;
    assert_eq!(
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")),
        5
    );
    assert_eq!(
        replicas(&get(&store, &work_key("r3", "c3")).await.expect("r3")),
        2
    );
    // Replacements ready: the lost cluster's Work goes to zero (it is not deleted).
    report(&store, &work_key("r2", "c2"), None).await;
    eventually("c1 released", || async {
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")) == 0
    })
    .await;
    // Recovery: c1 comes back first, r2 shrinks once c1's pods are ready.
    put(&store, &format!("{CLUSTERS_PREFIX}c1"), cluster("c1", true)).await;
    eventually("c1 back to 5", || async {
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")) == 5
    })
    .await;
    assert_eq!(
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")),
        8
    );
    report(&store, &work_key("r1", "c1"), None).await;
    eventually("r2 back to 3", || async {
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")) == 3
    })
    .await;
    hub.stop().await;
}

#[tokio::test]
async fn fixed_moves_nothing_when_a_cluster_is_lost() {
    let hub = setup(false).await;
    let store = hub.store.clone();
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    put(
        &store,
        &format!("{CLUSTERS_PREFIX}c1"),
        cluster("c1", false),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (subset, cluster, n) in [("r1", "c1", 5), ("r2", "c2", 3), ("r3", "c3", 2)] {
        let w = get(&store, &work_key(subset, cluster)).await.expect("work");
        assert_eq!(replicas(&w), n, "{subset}");
    }
    hub.stop().await;
}

#[tokio::test]
async fn adaptive_moves_pods_that_stay_unschedulable() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    for c in ["c1", "c2", "c3"] {
        put(&store, &format!("{CLUSTERS_PREFIX}{c}"), cluster(c, true)).await;
    }
    let mut spec = ud("shop:1", true);
    spec["spec"]["topology"]["scheduleStrategy"]["adaptive"] =
        json!({"rescheduleCriticalSeconds": 1, "unschedulableLastSeconds": 300});
    put(&store, &format!("{UDS_PREFIX}default/shop"), spec).await;
    let hub = start(store.clone());
    eventually("three Works", || async { works(&store).await.len() == 3 }).await;
    for (s, c) in [("r2", "c2"), ("r3", "c3")] {
        report(&store, &work_key(s, c), None).await;
    }
    // r1 runs two of its five pods; three stay unschedulable.
    modify(&store, &work_key("r1", "c1"), |w, rev| {
        w["status"] = json!({"observedRevision": rev.to_string(),
            "conditions": [{"type": "Applied", "status": "True"},
                           {"type": "Available", "status": "False"}],
            "workloadStatus": {"replicas": 5, "readyReplicas": 2, "updatedReplicas": 5,
                               "updatedReadyReplicas": 2, "availableReplicas": 2,
                               "unschedulableReplicas": 3}});
    })
    .await;
    // Not before rescheduleCriticalSeconds.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")),
        3
    );
    eventually("three replicas move to r2", || async {
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")) == 6
    })
    .await;
    let s = ud_status(&store).await;
    let r1 = &s["subsetStatuses"][0];
    assert_eq!(r1["name"], "r1");
    assert_eq!(r1["conditions"][0]["type"], "Schedulable");
    assert_eq!(r1["conditions"][0]["status"], "False");
    // r1 keeps its pods until r2's replacements are ready, then keeps its two running ones.
    assert_eq!(
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")),
        5
    );
    report(&store, &work_key("r2", "c2"), None).await;
    eventually("r1 pinned to its ready pods", || async {
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")) == 2
    })
    .await;
    // Stable while r1's report is stale: nothing oscillates.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        replicas(&get(&store, &work_key("r1", "c1")).await.expect("r1")),
        2
    );
    assert_eq!(
        replicas(&get(&store, &work_key("r2", "c2")).await.expect("r2")),
        6
    );
    hub.stop().await;
}
