//! The hub -> agent half of a Sync stream: the cluster's Works from a revision on, or a full
//! snapshot when that revision is no longer in the store's history.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kruise_apiserver::store::{EventKind, KeyValue, Revision, Store, StoreError, WatchEvent};
use kruise_proto::federation::{
    hub_message, work_event, HubMessage, SnapshotEnd, SnapshotStart, WorkEvent,
};
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::Status;
use tracing::debug;

use crate::metrics::HubMetrics;

/// Storage prefix of all Works.
pub const WORKS_PREFIX: &str = "/registry/federation.kruise.io/works/";

/// Why a stream of Works ended.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The agent went away.
    #[error("agent disconnected")]
    Disconnected,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// The target cluster of a stored Work, and whether it is being deleted.
fn work_target(value: &[u8]) -> Option<(String, bool)> {
    let work: Value = serde_json::from_slice(value).ok()?;
    let cluster = work.pointer("/spec/cluster")?.as_str()?.to_string();
    let deleting = work.pointer("/metadata/deletionTimestamp").is_some();
    Some((cluster, deleting))
}

/// `(namespace, name)` from a Work key.
fn work_name(key: &str) -> Option<(String, String)> {
    let rest = key.strip_prefix(WORKS_PREFIX)?;
    let (ns, name) = rest.split_once('/')?;
    Some((ns.to_string(), name.to_string()))
}

/// The Work JSON with `resourceVersion` set, as the agent sees it.
fn work_json(kv: &KeyValue) -> Vec<u8> {
    match serde_json::from_slice::<Value>(&kv.value) {
        Ok(mut work) => {
            if let Some(meta) = work.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert(
                    "resourceVersion".into(),
                    Value::String(kv.mod_revision.to_string()),
                );
            }
            serde_json::to_vec(&work).unwrap_or_else(|_| kv.value.to_vec())
        }
        Err(_) => kv.value.to_vec(),
    }
}

fn event(kind: work_event::Type, kv: &KeyValue, revision: Revision) -> Option<WorkEvent> {
    let (namespace, name) = work_name(&kv.key)?;
    let work_json = match kind {
        work_event::Type::Upsert => work_json(kv),
        _ => Vec::new(),
    };
    Some(WorkEvent {
        r#type: kind as i32,
        namespace,
        name,
        revision,
        work_json,
    })
}

/// The part of a stored Work the agent acts on: everything but its status and the bookkeeping
/// fields every write changes.
fn desired(value: &[u8]) -> Option<Value> {
    let mut work: Value = serde_json::from_slice(value).ok()?;
    let object = work.as_object_mut()?;
    object.remove("status");
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    Some(work)
}

/// Whether a Put only changed the Work's status (the agent's own report echoed back), so the
/// agent has nothing to apply.
pub fn status_only(change: &WatchEvent) -> bool {
    let Some(prev) = change.prev.as_ref() else {
        return false;
    };
    change.kind == EventKind::Put
        && matches!(
            (desired(&prev.value), desired(&change.kv.value)),
            (Some(before), Some(now)) if before == now
        )
}

/// What an agent of `cluster` must hear about a store change, if anything. A status-only write
/// yields nothing: the agent applied that spec already, and echoing its own reports back would
/// make it re-apply and report again.
pub fn event_for(cluster: &str, change: &WatchEvent) -> Option<WorkEvent> {
    let now = work_target(&change.kv.value);
    let before = change.prev.as_ref().and_then(|p| work_target(&p.value));
    let mine = |t: &Option<(String, bool)>| t.as_ref().is_some_and(|(c, _)| c == cluster);
    let revision = change.kv.mod_revision;
    match change.kind {
        EventKind::Put if mine(&now) && status_only(change) => None,
        EventKind::Put if mine(&now) => {
            let deleting = now.as_ref().is_some_and(|(_, d)| *d);
            let kind = if deleting {
                work_event::Type::Delete
            } else {
                work_event::Type::Upsert
            };
            event(kind, &change.kv, revision)
        }
        // Moved to another cluster: gone from this one.
        EventKind::Put if mine(&before) => event(work_event::Type::Delete, &change.kv, revision),
        EventKind::Delete if mine(&before) || mine(&now) => {
            event(work_event::Type::Delete, &change.kv, revision)
        }
        EventKind::Put | EventKind::Delete => None,
    }
}

fn message(m: hub_message::Message) -> Result<HubMessage, Status> {
    Ok(HubMessage { message: Some(m) })
}

/// Sends every Work of `cluster` as a snapshot; returns the revision it was read at.
async fn snapshot(
    store: &Arc<dyn Store>,
    cluster: &str,
    tx: &mpsc::Sender<Result<HubMessage, Status>>,
    metrics: &HubMetrics,
) -> Result<Revision, StreamError> {
    let list = store.list(WORKS_PREFIX, None, None).await?;
    let revision = list.revision;
    let send = |m| async {
        tx.send(message(m))
            .await
            .map_err(|_| StreamError::Disconnected)
    };
    send(hub_message::Message::SnapshotStart(SnapshotStart {
        revision,
    }))
    .await?;
    for kv in &list.items {
        let Some((target, deleting)) = work_target(&kv.value) else {
            continue;
        };
        if target != cluster || deleting {
            continue;
        }
        if let Some(ev) = event(work_event::Type::Upsert, kv, kv.mod_revision) {
            send(hub_message::Message::Work(ev)).await?;
            metrics.work_event("snapshot");
        }
    }
    send(hub_message::Message::SnapshotEnd(SnapshotEnd { revision })).await?;
    debug!(cluster, revision, "sent snapshot");
    Ok(revision)
}

/// Streams `cluster`'s Works after `resume` (0 = snapshot first) into `tx` until the agent goes
/// away. `tx` is bounded: a slow agent stops this loop from reading further changes instead of
/// queueing them in memory.
pub async fn stream_works(
    store: Arc<dyn Store>,
    cluster: String,
    resume: Revision,
    tx: mpsc::Sender<Result<HubMessage, Status>>,
    metrics: Arc<HubMetrics>,
) -> Result<(), StreamError> {
    let mut after = resume;
    let mut need_snapshot = resume <= 0;
    loop {
        if need_snapshot {
            after = snapshot(&store, &cluster, &tx, &metrics).await?;
            need_snapshot = false;
        }
        let mut changes = match store.watch(WORKS_PREFIX, after).await {
            Ok(changes) => changes,
            Err(StoreError::Compacted { .. }) => {
                need_snapshot = true;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        while let Some(item) = changes.next().await {
            match item {
                Ok(change) => {
                    after = change.kv.mod_revision;
                    let own = work_target(&change.kv.value).is_some_and(|(c, _)| c == cluster);
                    if own && status_only(&change) {
                        metrics.work_event("status_only_suppressed");
                    }
                    if let Some(ev) = event_for(&cluster, &change) {
                        let kind = if ev.r#type == work_event::Type::Delete as i32 {
                            "delete"
                        } else {
                            "upsert"
                        };
                        tx.send(message(hub_message::Message::Work(ev)))
                            .await
                            .map_err(|_| StreamError::Disconnected)?;
                        metrics.work_event(kind);
                    }
                }
                Err(StoreError::Compacted { .. }) => {
                    debug!(
                        cluster,
                        after, "resume revision compacted: sending a snapshot"
                    );
                    need_snapshot = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if !need_snapshot {
            // The watch ended without an error (store restarting): resume from where it was.
            if tx.is_closed() {
                return Err(StreamError::Disconnected);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn kv(name: &str, cluster: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: format!("{WORKS_PREFIX}default/{name}"),
            value: Bytes::from(
                serde_json::to_vec(&serde_json::json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"cluster": cluster, "workload": {}}}))
                .unwrap_or_default(),
            ),
            create_revision: rev,
            mod_revision: rev,
        }
    }

    #[test]
    fn events_filter_by_cluster_and_follow_moves() {
        let put = WatchEvent {
            kind: EventKind::Put,
            kv: kv("w", "c1", 5),
            prev: None,
        };
        let ev = event_for("c1", &put).expect("own work");
        assert_eq!(ev.r#type, work_event::Type::Upsert as i32);
        assert_eq!(
            (ev.namespace.as_str(), ev.name.as_str(), ev.revision),
            ("default", "w", 5)
        );
        let body: Value = serde_json::from_slice(&ev.work_json).expect("json");
        assert_eq!(body["metadata"]["resourceVersion"], "5");
        assert!(event_for("c2", &put).is_none());

        let moved = WatchEvent {
            kind: EventKind::Put,
            kv: kv("w", "c2", 6),
            prev: Some(kv("w", "c1", 5)),
        };
        assert_eq!(
            event_for("c1", &moved).map(|e| e.r#type),
            Some(work_event::Type::Delete as i32)
        );
        assert_eq!(
            event_for("c2", &moved).map(|e| e.r#type),
            Some(work_event::Type::Upsert as i32)
        );
        let deleted = WatchEvent {
            kind: EventKind::Delete,
            kv: kv("w", "c2", 7),
            prev: Some(kv("w", "c2", 6)),
        };
        assert_eq!(event_for("c2", &deleted).map(|e| e.revision), Some(7));
        assert!(event_for("c1", &deleted).is_none());
    }

    fn with(kv: &KeyValue, rev: i64, edit: impl FnOnce(&mut Value)) -> KeyValue {
        let mut work: Value = serde_json::from_slice(&kv.value).expect("json");
        edit(&mut work);
        KeyValue {
            key: kv.key.clone(),
            value: Bytes::from(serde_json::to_vec(&work).expect("json")),
            create_revision: kv.create_revision,
            mod_revision: rev,
        }
    }

    #[test]
    fn status_only_writes_are_not_echoed_but_spec_and_deletion_changes_are() {
        let base = kv("w", "c1", 5);
        let reported = with(&base, 6, |w| {
            w["status"] = serde_json::json!({"observedRevision": "5"});
            w["metadata"]["resourceVersion"] = serde_json::json!("6");
        });
        let put = |kv: KeyValue, prev: &KeyValue| WatchEvent {
            kind: EventKind::Put,
            kv,
            prev: Some(prev.clone()),
        };
        let echo = put(reported.clone(), &base);
        assert!(status_only(&echo));
        assert!(event_for("c1", &echo).is_none());

        let rescaled = with(&reported, 7, |w| {
            w["spec"]["workload"] = serde_json::json!({"spec": {"replicas": 3}})
        });
        let ev = event_for("c1", &put(rescaled.clone(), &reported)).expect("spec change");
        assert_eq!(
            (ev.r#type, ev.revision),
            (work_event::Type::Upsert as i32, 7)
        );

        let annotated = with(&rescaled, 8, |w| {
            w["metadata"]["annotations"] = serde_json::json!({"base": "7"})
        });
        assert!(event_for("c1", &put(annotated.clone(), &rescaled)).is_some());

        let deleting = with(&annotated, 9, |w| {
            w["metadata"]["deletionTimestamp"] = serde_json::json!("2026-01-01T00:00:00Z")
        });
        assert_eq!(
            event_for("c1", &put(deleting, &annotated)).map(|e| e.r#type),
            Some(work_event::Type::Delete as i32)
        );

        // Without the previous value nothing can be judged: forward it.
        let unknown = WatchEvent {
            kind: EventKind::Put,
            kv: reported,
            prev: None,
        };
        assert!(event_for("c1", &unknown).is_some());
    }
}
