//! The scheduler: binds pending pods to nodes (nodeSelector, node affinity, taints and
//! tolerations, resource fit, pod count) and marks the ones that fit nowhere
//! `PodScheduled=False, reason=Unschedulable` with a `FailedScheduling` Event, retrying them when
//! nodes or pods change.

pub mod plan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;

use crate::events::EventRecorder;
use crate::latency::LatencyModel;
use plan::{NodeInfo, Resources};

/// Bindings sent to the API server at once.
const BIND_CONCURRENCY: usize = 32;

/// Name pods use to ask for this scheduler.
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// The last unschedulable verdict per pod, to avoid repeating identical Events.
struct Verdict {
    message: String,
    recorded: Timestamp,
}

fn is_pending(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    pod.metadata.deletion_timestamp.is_none()
        && spec.is_some_and(|s| s.node_name.as_deref().unwrap_or("").is_empty())
        && spec
            .and_then(|s| s.scheduler_name.as_deref())
            .is_none_or(|n| n == SCHEDULER_NAME)
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
}

fn is_active_on_node(pod: &Pod) -> Option<&str> {
    let node = pod.spec.as_ref()?.node_name.as_deref()?;
    let terminal = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    (!terminal).then_some(node)
}

fn spawn_reflector<K>(api: Api<K>, notify: std::sync::Arc<Notify>) -> Store<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(async move {
        stream
            .applied_objects()
            .for_each(|_| {
                notify.notify_one();
                async {}
            })
            .await;
    });
    reader
}

/// Runs the scheduler until the task is dropped.
pub async fn run(client: Client, model: LatencyModel) {
    let notify = std::sync::Arc::new(Notify::new());
    let nodes = spawn_reflector(Api::<Node>::all(client.clone()), notify.clone());
    let pods = spawn_reflector(Api::<Pod>::all(client.clone()), notify.clone());
    if nodes.wait_until_ready().await.is_err() || pods.wait_until_ready().await.is_err() {
        return;
    }
    let recorder = EventRecorder::new(client.clone(), SCHEDULER_NAME, None);
    // Pods bound by this scheduler whose binding the pod cache has not shown yet.
    let mut assumed: HashMap<String, (String, Resources, Option<String>)> = HashMap::new();
    let mut verdicts: HashMap<String, Verdict> = HashMap::new();
    loop {
        let _ = tokio::time::timeout(Duration::from_secs(1), notify.notified()).await;
        let all_pods = pods.state();
        let mut infos: Vec<NodeInfo> = nodes
            .state()
            .iter()
            .map(|n| NodeInfo::from_node(n))
            .collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        let index: HashMap<String, usize> = infos
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name.clone(), i))
            .collect();
        let mut spread = plan::Spread::default();
        for p in &all_pods {
            if let Some(i) = is_active_on_node(p).and_then(|n| index.get(n)) {
                infos[*i].requested += plan::pod_requests(p);
                if let Some(owner) = plan::owner_of(p) {
                    spread.add(&owner, &infos[*i]);
                }
            }
            if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                assumed.remove(&p.uid().unwrap_or_default());
            }
        }
        let live: std::collections::HashSet<String> =
            all_pods.iter().filter_map(|p| p.uid()).collect();
        assumed.retain(|uid, _| live.contains(uid));
        verdicts.retain(|uid, _| live.contains(uid));
        for (node, req, owner) in assumed.values() {
            if let Some(i) = index.get(node) {
                infos[*i].requested += *req;
                if let Some(owner) = owner {
                    spread.add(owner, &infos[*i]);
                }
            }
        }

        let mut pending: Vec<&std::sync::Arc<Pod>> = all_pods
            .iter()
            .filter(|p| is_pending(p) && !assumed.contains_key(&p.uid().unwrap_or_default()))
            .collect();
        pending.sort_by_key(|p| {
            (
                std::cmp::Reverse(p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)),
                p.creation_timestamp().map(|t| t.0),
            )
        });
        let now = Timestamp::now();
        let delay = model.schedule_delay();
        let mut binds: Vec<(std::sync::Arc<Pod>, String)> = Vec::new();
        for pod in pending {
            if pod.creation_timestamp().is_some_and(|t| t.0 + delay > now) {
                continue;
            }
            let uid = pod.uid().unwrap_or_default();
            match plan::schedule(pod, &infos, &spread) {
                Ok(node) => {
                    // Assume the binding now so the next decisions see the node's new load.
                    let req = plan::pod_requests(pod);
                    let owner = plan::owner_of(pod);
                    infos[index[&node]].requested += req;
                    if let Some(owner) = &owner {
                        spread.add(owner, &infos[index[&node]]);
                    }
                    assumed.insert(uid.clone(), (node.clone(), req, owner));
                    verdicts.remove(&uid);
                    binds.push((pod.clone(), node));
                }
                Err(message) => {
                    let repeat = verdicts.get(&uid).is_some_and(|v| {
                        v.message == message
                            && now.duration_since(v.recorded)
                                < k8s_openapi::jiff::SignedDuration::from_secs(60)
                    });
                    if !repeat {
                        mark_unschedulable(&client, pod, &message, now).await;
                        recorder.emit(pod, true, "FailedScheduling", &message);
                        verdicts.insert(
                            uid,
                            Verdict {
                                message,
                                recorded: now,
                            },
                        );
                    }
                }
            }
        }
        let results: Vec<(std::sync::Arc<Pod>, String, bool)> = futures::stream::iter(binds)
            .map(|(pod, node)| {
                let client = client.clone();
                async move {
                    let ok = bind(&client, &pod, &node).await;
                    (pod, node, ok)
                }
            })
            .buffer_unordered(BIND_CONCURRENCY)
            .collect()
            .await;
        if !results.is_empty() {
            tracing::debug!(
                bound = results.iter().filter(|r| r.2).count(),
                failed = results.iter().filter(|r| !r.2).count(),
                "scheduling round"
            );
        }
        for (pod, node, ok) in results {
            if ok {
                let msg = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.namespace().unwrap_or_default(),
                    pod.name_any()
                );
                recorder.emit(&pod, false, "Scheduled", &msg);
            } else {
                // Retried next round from a fresh view.
                assumed.remove(&pod.uid().unwrap_or_default());
            }
        }
    }
}

async fn bind(client: &Client, pod: &Pod, node: &str) -> bool {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let binding = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": pod.name_any(), "namespace": pod.namespace(), "uid": pod.uid()},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    match api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &pod.name_any(),
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => true,
        Err(err) => {
            tracing::debug!(pod = %pod.name_any(), %node, %err, "binding failed");
            false
        }
    }
}

async fn mark_unschedulable(client: &Client, pod: &Pod, message: &str, now: Timestamp) {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace().unwrap_or_default());
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastTransitionTime": Timestamp::now().round(k8s_openapi::jiff::Unit::Second).unwrap_or(now).to_string(),
    }]}});
    if let Err(err) = api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Strategic(patch),
        )
        .await
    {
        tracing::debug!(pod = %pod.name_any(), %err, "marking pod unschedulable failed");
    }
}
