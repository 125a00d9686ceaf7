//! The controller loop: a cache of UnitedDeployments, ManagedClusters and Works fed by store
//! watches, a queue of UnitedDeployments to reconcile, and fenced writes.
//!
//! A replica reconciles a UnitedDeployment only while it owns the UnitedDeployment's shard; every
//! write it makes for it — the UnitedDeployment's status and all of its Works — is fenced by that
//! shard's lock, so a replica that lost the shard cannot commit. The status (which carries the
//! wave state) is written before the Works, so a wave is recorded before it starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use kruise_api::apps::v1alpha1::uniteddeployment::UnitedDeployment;
use kruise_apiserver::store::{EventKind, KeyValue, Revision, Store, StoreError, WatchEvent};
use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::placement::ClusterInfo;
use super::plan::{self, DesiredWork, Observed};
use super::workload::{REVISION_LABEL, SUBSET_LABEL};
use super::{CLUSTER_LABEL, OWNER_LABEL, SPEC_BASE_ANNOTATION};
use crate::link::stream::WORKS_PREFIX;
use crate::metrics::HubMetrics;
use crate::shard::{shard_of, FencedWriter, Ownership, ShardError};

/// Storage prefix of UnitedDeployments.
pub const UDS_PREFIX: &str = "/registry/apps.kruise.io/uniteddeployments/";
/// Storage prefix of ManagedClusters.
pub const CLUSTERS_PREFIX: &str = "/registry/federation.kruise.io/managedclusters/";

/// A failed reconcile or controller session.
#[derive(Debug, thiserror::Error)]
pub enum UdError {
    /// A stored UnitedDeployment does not decode.
    #[error("UnitedDeployment {key} is not valid: {message}")]
    Decode { key: String, message: String },
    /// A fenced write failed.
    #[error("writing {key} for UnitedDeployment {ud}: {source}")]
    Write {
        ud: String,
        key: String,
        #[source]
        source: ShardError,
    },
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A watch ended.
    #[error("the watch on {0} ended")]
    WatchEnded(&'static str),
}

/// The controller's view of the store.
#[derive(Default)]
struct Cache {
    uds: BTreeMap<String, KeyValue>,
    clusters: BTreeMap<String, KeyValue>,
    works: BTreeMap<String, KeyValue>,
    /// UnitedDeployment key -> keys of the Works it owns.
    owned: BTreeMap<String, BTreeSet<String>>,
}

impl Cache {
    fn put_work(&mut self, kv: KeyValue) {
        self.remove_work(&kv.key);
        if let Some(owner) = owner_key(&kv.key, &kv.value) {
            self.owned.entry(owner).or_default().insert(kv.key.clone());
        }
        self.works.insert(kv.key.clone(), kv);
    }

    fn remove_work(&mut self, key: &str) {
        if let Some(old) = self.works.remove(key) {
            if let Some(owner) = owner_key(&old.key, &old.value) {
                if let Some(set) = self.owned.get_mut(&owner) {
                    set.remove(key);
                    if set.is_empty() {
                        self.owned.remove(&owner);
                    }
                }
            }
        }
    }

    /// The Works owned by the UnitedDeployment at `ud_key`.
    fn works_of(&self, ud_key: &str) -> BTreeMap<String, KeyValue> {
        self.owned
            .get(ud_key)
            .into_iter()
            .flatten()
            .filter_map(|k| self.works.get(k).map(|kv| (k.clone(), kv.clone())))
            .collect()
    }
}

fn json_of(kv: &KeyValue) -> Option<Value> {
    serde_json::from_slice(&kv.value).ok()
}

/// `(namespace, name)` of a namespaced key under `prefix`.
fn split_key<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    key.strip_prefix(prefix)?.split_once('/')
}

/// The UnitedDeployment key owning a Work value.
fn owner_key(work_key: &str, value: &[u8]) -> Option<String> {
    let (ns, _) = split_key(work_key, WORKS_PREFIX)?;
    let work: Value = serde_json::from_slice(value).ok()?;
    let owner = work
        .pointer("/metadata/labels")?
        .get(OWNER_LABEL)?
        .as_str()?;
    Some(format!("{UDS_PREFIX}{ns}/{owner}"))
}

fn cluster_info(kv: &KeyValue) -> Option<ClusterInfo> {
    let v = json_of(kv)?;
    let name = v.pointer("/metadata/name")?.as_str()?.to_string();
    let labels = v
        .pointer("/metadata/labels")
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let ready = v
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        });
    let allocatable = |key: &str| {
        v.pointer(&format!("/status/capacity/allocatable/{key}"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let capacity = allocatable("pods")
        .and_then(|p| p.parse::<i64>().ok())
        .or_else(|| allocatable("cpu").as_deref().and_then(millicores));
    Some(ClusterInfo {
        name,
        labels,
        ready,
        capacity,
    })
}

/// A cpu quantity (`8`, `1.5`, `8000m`) in millicores.
fn millicores(q: &str) -> Option<i64> {
    match q.strip_suffix('m') {
        Some(milli) => milli.parse().ok(),
        None => q
            .parse::<f64>()
            .ok()
            .map(|cores| (cores * 1000.0).round() as i64),
    }
}

fn random_uid() -> String {
    let b: [u8; 16] = rand::random();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn stamp(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The UnitedDeployment controller of one hub replica.
pub struct UdController {
    store: Arc<dyn Store>,
    writer: FencedWriter,
    ownership: Ownership,
    metrics: Arc<HubMetrics>,
    resync: Duration,
    pending: Mutex<BTreeMap<String, BTreeMap<String, DateTime<Utc>>>>,
}

impl UdController {
    /// A controller over the hub's store, writing through `writer` for the shards in `ownership`.
    pub fn new(
        store: Arc<dyn Store>,
        writer: FencedWriter,
        ownership: Ownership,
        metrics: Arc<HubMetrics>,
    ) -> Self {
        UdController {
            store,
            writer,
            ownership,
            metrics,
            resync: Duration::from_secs(2),
            pending: Mutex::default(),
        }
    }

    /// Sets how often every owned UnitedDeployment is reconciled even without events (wave
    /// deadlines and failover timers are checked then). Defaults to two seconds.
    pub fn with_resync(mut self, resync: Duration) -> Self {
        self.resync = resync;
        self
    }

    /// Runs until `shutdown` turns true, restarting the watch session after errors.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.session(&mut shutdown).await {
                Ok(()) => return,
                Err(e) => {
                    warn!(error = %e, "UnitedDeployment controller session ended; restarting")
                }
            }
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { return },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn load(&self, prefix: &str) -> Result<(BTreeMap<String, KeyValue>, Revision), UdError> {
        let list = self.store.list(prefix, None, None).await?;
        let revision = list.revision;
        Ok((
            list.items
                .into_iter()
                .map(|kv| (kv.key.clone(), kv))
                .collect(),
            revision,
        ))
    }

    async fn session(&self, shutdown: &mut watch::Receiver<bool>) -> Result<(), UdError> {
        let (uds, ud_rev) = self.load(UDS_PREFIX).await?;
        let (clusters, cl_rev) = self.load(CLUSTERS_PREFIX).await?;
        let (works, w_rev) = self.load(WORKS_PREFIX).await?;
        let mut cache = Cache {
            uds,
            clusters,
            ..Cache::default()
        };
        for kv in works.into_values() {
            cache.put_work(kv);
        }
        let mut ud_watch = self.store.watch(UDS_PREFIX, ud_rev).await?;
        let mut cl_watch = self.store.watch(CLUSTERS_PREFIX, cl_rev).await?;
        let mut w_watch = self.store.watch(WORKS_PREFIX, w_rev).await?;
        let mut owned = self.ownership.subscribe();
        let mut tick = tokio::time::interval(self.resync);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Owners of Works are queued too, so Works of UnitedDeployments deleted while no
        // replica ran are removed.
        let mut queue: BTreeSet<String> = cache
            .uds
            .keys()
            .chain(cache.owned.keys())
            .cloned()
            .collect();
        info!(uds = cache.uds.len(), "UnitedDeployment controller started");
        loop {
            self.drain(&mut cache, &mut queue).await;
            tokio::select! {
                _ = shutdown.changed() => if *shutdown.borrow() { return Ok(()) },
                _ = tick.tick() => queue.extend(cache.uds.keys().cloned()),
                changed = owned.changed() => {
                    if changed.is_ok() {
                        queue.extend(cache.uds.keys().cloned());
                    }
                }
                ev = ud_watch.next() => {
                    let ev = ev.ok_or(UdError::WatchEnded("uniteddeployments"))??;
                    queue.insert(ev.kv.key.clone());
                    apply_event(&mut cache.uds, ev);
                }
                ev = cl_watch.next() => {
                    let ev = ev.ok_or(UdError::WatchEnded("managedclusters"))??;
                    apply_event(&mut cache.clusters, ev);
                    queue.extend(cache.uds.keys().cloned());
                }
                ev = w_watch.next() => {
                    let ev = ev.ok_or(UdError::WatchEnded("works"))??;
                    let owner = owner_key(&ev.kv.key, &ev.kv.value).or_else(|| {
                        ev.prev.as_ref().and_then(|p| owner_key(&p.key, &p.value))
                    });
                    if let Some(owner) = owner {
                        queue.insert(owner);
                    }
                    match ev.kind {
                        EventKind::Put => cache.put_work(ev.kv),
                        EventKind::Delete => cache.remove_work(&ev.kv.key),
                    }
                }
            }
        }
    }

    /// Reconciles every queued UnitedDeployment this replica owns.
    async fn drain(&self, cache: &mut Cache, queue: &mut BTreeSet<String>) {
        while let Some(key) = queue.pop_first() {
            let Some((ns, name)) = split_key(&key, UDS_PREFIX) else {
                continue;
            };
            let shard = shard_of(ns, name);
            // The guard holds off a handover of the shard until this reconcile is done.
            let Some(guard) = self.ownership.begin(shard) else {
                continue;
            };
            let result = self
                .reconcile(cache, &key, shard, guard.token(), Utc::now())
                .await;
            drop(guard);
            self.metrics.ud_reconcile(match &result {
                Ok(()) => "ok",
                Err(UdError::Write {
                    source: ShardError::Fenced { .. },
                    ..
                }) => "fenced",
                Err(UdError::Write {
                    source: ShardError::Conflict { .. },
                    ..
                }) => "conflict",
                Err(_) => "error",
            });
            match result {
                Ok(()) => {}
                Err(UdError::Write {
                    source: ShardError::Conflict { .. },
                    ..
                }) => debug!(ud = %key, "stale cache; retrying on the next event"),
                Err(
                    e @ UdError::Write {
                        source: ShardError::Fenced { .. },
                        ..
                    },
                ) => {
                    self.metrics.fenced_writes.inc();
                    warn!(ud = %key, error = %e, "lost the shard while reconciling");
                }
                // Re-reported every resync until the object is fixed: keep it out of the warn log.
                Err(e @ UdError::Decode { .. }) => debug!(ud = %key, error = %e, "skipping"),
                Err(e) => warn!(ud = %key, error = %e, "reconciling the UnitedDeployment failed"),
            }
        }
    }

    /// One reconcile of the UnitedDeployment at `key` (deleted ones get their Works removed).
    async fn reconcile(
        &self,
        cache: &mut Cache,
        key: &str,
        shard: u32,
        token: i64,
        now: DateTime<Utc>,
    ) -> Result<(), UdError> {
        let (ns, name) = split_key(key, UDS_PREFIX).unwrap_or_default();
        let works = cache.works_of(key);
        let Some(ud_kv) = cache.uds.get(key).cloned() else {
            for (wkey, kv) in &works {
                self.delete_work(key, shard, token, wkey, kv.mod_revision)
                    .await?;
                cache.remove_work(wkey);
                info!(ud = %key, work = %wkey, "UnitedDeployment gone: deleted its Work");
            }
            if let Ok(mut p) = self.pending.lock() {
                p.remove(key);
            }
            return Ok(());
        };
        let mut raw: Value = serde_json::from_slice(&ud_kv.value).map_err(|e| UdError::Decode {
            key: key.to_string(),
            message: e.to_string(),
        })?;
        let ud: UnitedDeployment =
            serde_json::from_value(raw.clone()).map_err(|e| UdError::Decode {
                key: key.to_string(),
                message: e.to_string(),
            })?;
        let clusters: Vec<ClusterInfo> = cache.clusters.values().filter_map(cluster_info).collect();
        let work_values: BTreeMap<String, Value> = works
            .iter()
            .filter_map(|(k, kv)| {
                let (_, wname) = split_key(k, WORKS_PREFIX)?;
                Some((wname.to_string(), json_of(kv)?))
            })
            .collect();
        let pending_since = self
            .pending
            .lock()
            .ok()
            .and_then(|p| p.get(key).cloned())
            .unwrap_or_default();
        let plan = plan::plan(&Observed {
            ud: &ud,
            clusters: &clusters,
            works: &work_values,
            pending_since: &pending_since,
            now,
        });
        if let Ok(mut p) = self.pending.lock() {
            p.insert(key.to_string(), plan.pending_since.clone());
        }
        // Status first: a wave is recorded before its Works change.
        let status = serde_json::to_value(&plan.status).unwrap_or(Value::Null);
        if raw.get("status") != Some(&status) {
            raw["status"] = status;
            if let Some(meta) = raw.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            let kv = self
                .write(key, shard, token, key, &raw, ud_kv.mod_revision)
                .await?;
            cache.uds.insert(key.to_string(), kv);
            debug!(ud = %key, "status written");
        }
        let Some(desired) = plan.works else {
            return Ok(());
        };
        let ud_uid = ud.metadata.uid.clone().unwrap_or_default();
        for d in &desired {
            let wkey = format!("{WORKS_PREFIX}{ns}/{}", d.name);
            let current = works.get(&wkey);
            let next = desired_work(ns, name, &ud_uid, d, current, now);
            let Some(next) = next else {
                continue;
            };
            let expected = current.map(|kv| kv.mod_revision).unwrap_or(0);
            let kv = self
                .write(key, shard, token, &wkey, &next, expected)
                .await?;
            self.metrics
                .ud_work_write(if expected == 0 { "create" } else { "update" });
            info!(ud = %key, work = %d.name, cluster = %d.cluster, revision = %d.revision,
                replicas = d.manifest.pointer("/spec/replicas").and_then(|r| r.as_i64()).unwrap_or(0),
                "Work written");
            cache.put_work(kv);
        }
        for wname in &plan.delete {
            let wkey = format!("{WORKS_PREFIX}{ns}/{wname}");
            if let Some(kv) = works.get(&wkey) {
                self.delete_work(key, shard, token, &wkey, kv.mod_revision)
                    .await?;
                cache.remove_work(&wkey);
                info!(ud = %key, work = %wname, "Work no longer placed: deleted");
            }
        }
        Ok(())
    }

    /// Writes `value` at `key` (created when `expected` is 0) fenced by `shard`.
    async fn write(
        &self,
        ud: &str,
        shard: u32,
        token: i64,
        key: &str,
        value: &Value,
        expected: Revision,
    ) -> Result<KeyValue, UdError> {
        let bytes = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
        let err = |source| UdError::Write {
            ud: ud.to_string(),
            key: key.to_string(),
            source,
        };
        match (&self.writer, expected) {
            (FencedWriter::Solo(store), 0) => store.create(key, bytes).await.map_err(|e| {
                err(match e {
                    StoreError::AlreadyExists { key } => ShardError::Conflict {
                        key,
                        expected: 0,
                        actual: -1,
                    },
                    other => ShardError::Store(other),
                })
            }),
            (FencedWriter::Etcd(locks), _) => locks
                .fenced_put(shard, token, key, bytes, expected)
                .await
                .map_err(err),
            (writer, _) => writer
                .update(shard, token, key, bytes, expected)
                .await
                .map_err(err),
        }
    }

    async fn delete_work(
        &self,
        ud: &str,
        shard: u32,
        token: i64,
        key: &str,
        expected: Revision,
    ) -> Result<(), UdError> {
        let err = |source| UdError::Write {
            ud: ud.to_string(),
            key: key.to_string(),
            source,
        };
        let result = match &self.writer {
            FencedWriter::Solo(store) => match store.delete(key, Some(expected)).await {
                Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
                Err(StoreError::Conflict {
                    key,
                    expected,
                    actual,
                }) => Err(ShardError::Conflict {
                    key,
                    expected,
                    actual,
                }),
                Err(e) => Err(ShardError::Store(e)),
            },
            FencedWriter::Etcd(locks) => locks
                .fenced_delete(shard, token, key, expected)
                .await
                .map(|_| ()),
        };
        result.map_err(err)?;
        self.metrics.ud_work_write("delete");
        Ok(())
    }
}

fn apply_event(map: &mut BTreeMap<String, KeyValue>, ev: WatchEvent) {
    match ev.kind {
        EventKind::Put => {
            map.insert(ev.kv.key.clone(), ev.kv);
        }
        EventKind::Delete => {
            map.remove(&ev.kv.key);
        }
    }
}

/// The Work to store for `d`, or `None` when `current` already matches.
fn desired_work(
    ns: &str,
    ud: &str,
    ud_uid: &str,
    d: &DesiredWork,
    current: Option<&KeyValue>,
    now: DateTime<Utc>,
) -> Option<Value> {
    let labels = json!({
        OWNER_LABEL: ud,
        SUBSET_LABEL: d.subset,
        CLUSTER_LABEL: d.cluster,
        REVISION_LABEL: d.revision,
    });
    let spec = json!({"cluster": d.cluster, "workload": d.manifest});
    match current.and_then(|kv| json_of(kv).map(|v| (kv, v))) {
        Some((kv, mut existing)) => {
            let same_labels = labels.as_object().is_some_and(|l| {
                l.iter().all(|(k, v)| {
                    existing.pointer("/metadata/labels").and_then(|m| m.get(k)) == Some(v)
                })
            });
            let same_spec = existing.get("spec") == Some(&spec);
            if same_labels && same_spec {
                return None;
            }
            if !existing["metadata"]["labels"].is_object() {
                existing["metadata"]["labels"] = json!({});
            }
            if let Some(l) = labels.as_object() {
                for (k, v) in l {
                    existing["metadata"]["labels"][k] = v.clone();
                }
            }
            if !same_spec {
                existing["spec"] = spec;
                if !existing["metadata"]["annotations"].is_object() {
                    existing["metadata"]["annotations"] = json!({});
                }
                existing["metadata"]["annotations"][SPEC_BASE_ANNOTATION] =
                    json!(kv.mod_revision.to_string());
                let generation = existing
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                existing["metadata"]["generation"] = json!(generation + 1);
            }
            if let Some(meta) = existing.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("resourceVersion");
            }
            Some(existing)
        }
        None => Some(json!({
            "apiVersion": "federation.kruise.io/v1alpha1",
            "kind": "Work",
            "metadata": {
                "name": d.name,
                "namespace": ns,
                "uid": random_uid(),
                "creationTimestamp": stamp(now),
                "generation": 1,
                "labels": labels,
                "annotations": {SPEC_BASE_ANNOTATION: "0"},
                "ownerReferences": [{
                    "apiVersion": "apps.kruise.io/v1alpha1",
                    "kind": "UnitedDeployment",
                    "name": ud,
                    "uid": ud_uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "spec": spec,
        })),
    }
}
