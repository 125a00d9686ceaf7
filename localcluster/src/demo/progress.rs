//! Live progress of a federated UnitedDeployment: per member cluster, the hub's Works for it and
//! the desired, ready and updated pods of its subset workloads; on the hub, the
//! UnitedDeployment's aggregated status once its controller writes one.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::Value;

use super::manifest::Target;
use super::members::Member;
use super::placement::{self, Row, SUBSET_LABEL};
use super::DemoError;

/// What one member cluster runs for the target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterProgress {
    /// Works on the hub addressed to this cluster.
    pub works: usize,
    /// Sum of `spec.replicas` of the subset workloads in the cluster.
    pub desired: i64,
    /// Subset pods that are not terminating.
    pub pods: usize,
    /// Of those, Ready ones.
    pub ready: usize,
    /// Of those, ones on their workload's update revision.
    pub updated: usize,
}

impl std::fmt::Display for ClusterProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "works {}  desired {}  pods {}  ready {}  updated {}",
            self.works, self.desired, self.pods, self.ready, self.updated
        )
    }
}

/// The target's status on the hub.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubProgress {
    /// Not on the hub (yet, or deleted).
    Missing,
    /// Stored, without a status written by a controller.
    Accepted,
    /// The aggregated status: replicas, ready and updated out of `spec.replicas`, and the
    /// update wave in progress, if any.
    Status {
        ready: i64,
        updated: i64,
        replicas: i64,
        desired: i64,
        wave: Option<String>,
    },
}

impl std::fmt::Display for HubProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HubProgress::Missing => write!(f, "not on the hub"),
            HubProgress::Accepted => write!(f, "accepted; no status from a controller yet"),
            HubProgress::Status {
                ready,
                updated,
                replicas,
                desired,
                wave,
            } => {
                write!(
                    f,
                    "status: {replicas} of {desired} replicas, {ready} ready, {updated} updated"
                )?;
                match wave {
                    Some(wave) => write!(f, "; updating wave {wave}"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// One observation of everything the demo shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub hub: HubProgress,
    /// Per member cluster, in the demo's order.
    pub clusters: Vec<(String, ClusterProgress)>,
    /// The placement table's rows.
    pub placement: Vec<Row>,
}

impl Snapshot {
    /// All of the target's pods exist and are Ready (and no more than that).
    pub fn complete(&self, target: &Target) -> bool {
        let (pods, ready) = self
            .clusters
            .iter()
            .fold((0, 0), |(p, r), (_, c)| (p + c.pods, r + c.ready));
        let want = usize::try_from(target.replicas).unwrap_or(0);
        pods == want && ready == want
    }

    /// Total Works addressed to the member clusters.
    pub fn works(&self) -> usize {
        self.clusters.iter().map(|(_, c)| c.works).sum()
    }

    /// Total Ready subset pods.
    pub fn ready(&self) -> usize {
        self.clusters.iter().map(|(_, c)| c.ready).sum()
    }
}

/// Whether a pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Whether a pod's revision label names `revision` (full name, or its short hash suffix).
fn on_revision(pod: &Pod, revision: &str) -> bool {
    let Some(label) = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash"))
    else {
        return false;
    };
    !revision.is_empty()
        && (label == revision || revision.rsplit_once('-').is_some_and(|(_, h)| h == label))
}

/// A cluster's progress from its subset workloads (as JSON) and their pods.
pub fn cluster_progress(works: usize, workloads: &[Value], pods: &[Pod]) -> ClusterProgress {
    let update_revision: BTreeMap<&str, &str> = workloads
        .iter()
        .filter_map(|w| {
            Some((
                w.pointer("/metadata/uid")?.as_str()?,
                w.pointer("/status/updateRevision")?.as_str()?,
            ))
        })
        .collect();
    let live: Vec<&Pod> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let updated = live
        .iter()
        .filter(|p| {
            let owner = p
                .metadata
                .owner_references
                .as_ref()
                .and_then(|os| os.iter().find(|o| o.controller == Some(true)));
            owner
                .and_then(|o| update_revision.get(o.uid.as_str()))
                .is_some_and(|rev| on_revision(p, rev))
        })
        .count();
    ClusterProgress {
        works,
        desired: workloads
            .iter()
            .filter_map(|w| w.pointer("/spec/replicas").and_then(Value::as_i64))
            .sum(),
        pods: live.len(),
        ready: live.iter().filter(|p| pod_ready(p)).count(),
        updated,
    }
}

/// The hub's view of the target from the UnitedDeployment object.
pub fn hub_progress(ud: Option<&Value>) -> HubProgress {
    let Some(ud) = ud else {
        return HubProgress::Missing;
    };
    let desired = ud
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    match ud.get("status").and_then(Value::as_object) {
        Some(status) if status.contains_key("replicas") => {
            let count = |field: &str| status.get(field).and_then(Value::as_i64).unwrap_or(0);
            let updated = count("updatedReplicas");
            // The wave field keeps naming the last wave after the rollout is done.
            let wave = ud
                .pointer("/status/waveStatus/current")
                .and_then(Value::as_str)
                .filter(|w| !w.is_empty() && updated < desired)
                .map(String::from);
            HubProgress::Status {
                ready: count("readyReplicas"),
                updated,
                replicas: count("replicas"),
                desired,
                wave,
            }
        }
        _ => HubProgress::Accepted,
    }
}

fn api_of(client: &Client, group: &str, kind: &str, plural: &str, ns: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, "v1alpha1", kind);
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

fn to_values(objects: Vec<DynamicObject>) -> Vec<Value> {
    objects
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect()
}

/// Reads the hub and the member clusters.
pub async fn observe(
    hub: &Client,
    members: &[Member],
    target: &Target,
) -> Result<Snapshot, DemoError> {
    let ns = target.namespace.as_str();
    let ud = api_of(
        hub,
        "apps.kruise.io",
        "UnitedDeployment",
        "uniteddeployments",
        ns,
    )
    .get_opt(&target.name)
    .await
    .map_err(DemoError::api(format!(
        "reading UnitedDeployment {ns}/{}",
        target.name
    )))?
    .and_then(|o| serde_json::to_value(o).ok());
    let works = to_values(
        api_of(hub, "federation.kruise.io", "Work", "works", ns)
            .list(&ListParams::default())
            .await
            .map_err(DemoError::api("listing Works on the hub"))?
            .items,
    );
    let mut selector: Vec<String> = target
        .match_labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    selector.push(SUBSET_LABEL.to_string());
    let selected = ListParams::default().labels(&selector.join(","));
    let mut clusters = Vec::new();
    let mut rows = Vec::new();
    for member in members {
        let for_cluster = works
            .iter()
            .filter(|w| w.pointer("/spec/cluster").and_then(Value::as_str) == Some(member.name))
            .count();
        let what = |thing: &str| format!("listing {thing} in {}", member.name);
        let workloads = to_values(
            api_of(
                &member.client,
                "apps.kruise.io",
                "CloneSet",
                "clonesets",
                ns,
            )
            .list(&selected)
            .await
            .map_err(DemoError::api(what("subset CloneSets")))?
            .items,
        );
        let pods = Api::<Pod>::namespaced(member.client.clone(), ns)
            .list(&selected)
            .await
            .map_err(DemoError::api(what("subset pods")))?
            .items;
        let nodes = Api::<Node>::all(member.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(DemoError::api(what("nodes")))?
            .items;
        clusters.push((
            member.name.to_string(),
            cluster_progress(for_cluster, &workloads, &pods),
        ));
        rows.extend(placement::rows(member.name, &pods, &nodes));
    }
    Ok(Snapshot {
        hub: hub_progress(ud.as_ref()),
        clusters,
        placement: rows,
    })
}

/// Remembers the last line shown per subject, so only changes are printed.
#[derive(Default)]
pub struct Changes {
    last: BTreeMap<String, String>,
}

impl Changes {
    /// The `(subject, line)` pairs of `snapshot` that differ from the previous call.
    pub fn of(&mut self, target: &Target, snapshot: &Snapshot) -> Vec<(String, String)> {
        let lines = std::iter::once((
            "hub".to_string(),
            format!(
                "UnitedDeployment {}/{} {}",
                target.namespace, target.name, snapshot.hub
            ),
        ))
        .chain(
            snapshot
                .clusters
                .iter()
                .map(|(name, c)| (name.clone(), c.to_string())),
        );
        let mut changed = Vec::new();
        for (subject, line) in lines {
            if self.last.get(&subject) != Some(&line) {
                self.last.insert(subject.clone(), line.clone());
                changed.push((subject, line));
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn pod(name: &str, owner_uid: &str, hash: &str, ready: bool) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name,
                "labels": {"controller-revision-hash": hash, SUBSET_LABEL: "subset-r1"},
                "ownerReferences": [{"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                    "name": "shop-subset-r1", "uid": owner_uid, "controller": true}]},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .expect("pod")
    }

    #[test]
    fn counts_desired_ready_and_updated_pods() {
        let workloads = [json!({"metadata": {"uid": "u1"},
            "spec": {"replicas": 5}, "status": {"updateRevision": "shop-subset-r1-7c9f"}})];
        let mut gone = pod("p5", "u1", "7c9f", true);
        gone.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let pods = [
            pod("p1", "u1", "7c9f", true),
            pod("p2", "u1", "shop-subset-r1-7c9f", false),
            pod("p3", "u1", "old", true),
            pod("p4", "other", "7c9f", true),
            gone,
        ];
        let progress = cluster_progress(1, &workloads, &pods);
        assert_eq!(
            progress,
            ClusterProgress {
                works: 1,
                desired: 5,
                pods: 4,
                ready: 3,
                updated: 2
            }
        );
        assert_eq!(
            progress.to_string(),
            "works 1  desired 5  pods 4  ready 3  updated 2"
        );
    }

    #[test]
    fn hub_progress_follows_the_ud_status() {
        assert_eq!(hub_progress(None), HubProgress::Missing);
        let accepted = json!({"spec": {"replicas": 10}});
        assert_eq!(hub_progress(Some(&accepted)), HubProgress::Accepted);
        let status =
            json!({"spec": {"replicas": 10}, "status": {"replicas": 10, "readyReplicas": 7}});
        assert_eq!(
            hub_progress(Some(&status)).to_string(),
            "status: 10 of 10 replicas, 7 ready, 0 updated"
        );
        let rolling = json!({"spec": {"replicas": 10}, "status": {"replicas": 10,
            "readyReplicas": 9, "updatedReplicas": 2,
            "waveStatus": {"current": "subset-r2", "completed": ["subset-r3"]}}});
        assert_eq!(
            hub_progress(Some(&rolling)).to_string(),
            "status: 10 of 10 replicas, 9 ready, 2 updated; updating wave subset-r2"
        );
        let done = json!({"spec": {"replicas": 10}, "status": {"replicas": 10,
            "readyReplicas": 10, "updatedReplicas": 10, "waveStatus": {"current": "subset-r1"}}});
        assert_eq!(
            hub_progress(Some(&done)).to_string(),
            "status: 10 of 10 replicas, 10 ready, 10 updated"
        );
    }

    #[test]
    fn changes_report_each_line_once_and_completion_needs_every_pod_ready() {
        let target = Target {
            namespace: "default".into(),
            name: "shop".into(),
            replicas: 3,
            match_labels: Default::default(),
        };
        let progress = |pods, ready| ClusterProgress {
            works: 1,
            desired: 3,
            pods,
            ready,
            updated: pods,
        };
        let mut snapshot = Snapshot {
            hub: HubProgress::Accepted,
            clusters: vec![("member-r1".into(), progress(3, 2))],
            placement: Vec::new(),
        };
        let mut changes = Changes::default();
        let first = changes.of(&target, &snapshot);
        assert_eq!(first.len(), 2);
        assert_eq!(
            first[0].1,
            "UnitedDeployment default/shop accepted; no status from a controller yet"
        );
        assert!(changes.of(&target, &snapshot).is_empty());
        assert!(!snapshot.complete(&target));
        snapshot.clusters[0].1 = progress(3, 3);
        assert_eq!(
            changes.of(&target, &snapshot),
            [(
                "member-r1".to_string(),
                "works 1  desired 3  pods 3  ready 3  updated 3".to_string()
            )]
        );
        assert!(snapshot.complete(&target));
        snapshot.clusters[0].1 = progress(4, 4);
        assert!(!snapshot.complete(&target), "a surplus pod is not done yet");
    }
}
