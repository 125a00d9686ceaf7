//! The UnitedDeployment controller against a real etcd: while another replica holds the shard
//! lock of a UnitedDeployment, a replica that still believes it owns the shard writes none of
//! its Works nor its status; once the lock is free again its writes go through.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_apiserver::store::{EtcdStore, Store};
use kruise_hub::metrics::HubMetrics;
use kruise_hub::shard::{shard_of, FencedWriter, Ownership, ShardLocks};
use kruise_hub::ud::controller::{CLUSTERS_PREFIX, UDS_PREFIX};
use kruise_hub::ud::UdController;
use serde_json::json;

const WORKS: &str = "/registry/federation.kruise.io/works/default/";

#[tokio::test]
async fn a_replica_without_the_shard_lock_writes_nothing() {
    let etcd = match EtcdProcess::start().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    let store = EtcdStore::connect(&[etcd.endpoint()], "")
        .await
        .expect("connect etcd");
    let client = store.client().clone();
    let store: Arc<dyn Store> = Arc::new(store);
    let locks = ShardLocks::new(client.clone(), "/ud-fencing");
    let shard = shard_of("default", "shop");
    let mut c = client.clone();
    let lease = c.lease_grant(30, None).await.expect("lease").id();
    let other = locks
        .try_acquire(shard, "other-replica", lease)
        .await
        .expect("acquire")
        .expect("free lock");

    let cluster = json!({"apiVersion": "federation.kruise.io/v1alpha1", "kind": "ManagedCluster",
        "metadata": {"name": "c1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    store
        .create(
            &format!("{CLUSTERS_PREFIX}c1"),
            Bytes::from(cluster.to_string()),
        )
        .await
        .expect("cluster");
    let ud = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "UnitedDeployment",
        "metadata": {"name": "shop", "namespace": "default", "uid": "u1", "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop"}},
            "template": {"deploymentTemplate": {"spec": {
                "selector": {"matchLabels": {"app": "shop"}},
                "template": {"metadata": {"labels": {"app": "shop"}},
                    "spec": {"containers": [{"name": "shop", "image": "shop:1"}]}}}}},
            "topology": {"subsets": [{"name": "r1", "clusters": ["c1"]}]}}});
    let ud_key = format!("{UDS_PREFIX}default/shop");
    store
        .create(&ud_key, Bytes::from(ud.to_string()))
        .await
        .expect("ud");

    // This replica believes it owns every shard (token 0), but "other-replica" holds the lock.
    let metrics = Arc::new(HubMetrics::default());
    let (stop, rx) = tokio::sync::watch::channel(false);
    let controller = Arc::new(
        UdController::new(
            store.clone(),
            FencedWriter::Etcd(locks.clone()),
            Ownership::all(),
            metrics.clone(),
        )
        .with_resync(Duration::from_millis(100)),
    );
    let task = tokio::spawn(controller.run(rx));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metrics.fenced_writes.get() < 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no fenced write seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let works = store.list(WORKS, None, None).await.expect("list");
    assert!(works.items.is_empty(), "a fenced replica created a Work");
    let stored = store.get(&ud_key).await.expect("get").expect("ud");
    let value: serde_json::Value = serde_json::from_slice(&stored.value).expect("json");
    assert!(
        value.get("status").is_none(),
        "a fenced replica wrote status"
    );

    // The other replica lets go: the writes go through.
    assert!(locks.release(shard, other).await.expect("release"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let works = store.list(WORKS, None, None).await.expect("list");
        if works.items.len() == 1 {
            let w: serde_json::Value = serde_json::from_slice(&works.items[0].value).expect("json");
            assert_eq!(w["spec"]["workload"]["kind"], "Deployment");
            assert_eq!(w["spec"]["workload"]["spec"]["replicas"], 2);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no Work after release"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = task.await;
}
