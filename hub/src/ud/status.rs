//! UnitedDeployment status from the status its Works report.
//!
//! A Work's report is *fresh* when its `observedRevision` is newer than the revision its current
//! spec replaced (annotation [`SPEC_BASE_ANNOTATION`](super::SPEC_BASE_ANNOTATION)): only then do
//! its counts describe the current template and replicas. Updated counts come only from fresh
//! reports of Works on the update revision.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kruise_api::apps::v1alpha1::uniteddeployment::{
    UnitedDeploymentClusterStatus, UnitedDeploymentCondition, UnitedDeploymentStatus,
    UnitedDeploymentSubsetStatus,
};
use kruise_api::federation::v1alpha1::work::WorkloadStatus;
use serde_json::Value;

use super::workload::REVISION_LABEL;
use super::SPEC_BASE_ANNOTATION;

/// What the controller reads from one Work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkView {
    /// Subset.
    pub subset: String,
    /// Cluster.
    pub cluster: String,
    /// Revision label of its template.
    pub revision: String,
    /// Replicas in its spec.
    pub replicas: i32,
    /// Partition in its spec.
    pub partition: i32,
    /// The agent's last report describes the current spec.
    pub fresh: bool,
    /// `Applied=True`.
    pub applied: bool,
    /// `Available=True`.
    pub available: bool,
    /// Reported workload counts.
    pub workload: WorkloadStatus,
}

fn condition_true(work: &Value, ty: &str) -> bool {
    work.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

fn as_i32(v: Option<&Value>) -> i32 {
    v.and_then(Value::as_i64).unwrap_or(0) as i32
}

/// Reads a Work object.
pub fn view(work: &Value, subset: &str, cluster: &str) -> WorkView {
    let base: i64 = work
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(SPEC_BASE_ANNOTATION))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let observed: Option<i64> = work
        .pointer("/status/observedRevision")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    let spec = work.pointer("/spec/workload/spec");
    let partition = spec
        .and_then(|s| {
            s.pointer("/updateStrategy/partition")
                .or_else(|| s.pointer("/updateStrategy/rollingUpdate/partition"))
        })
        .and_then(Value::as_i64)
        .unwrap_or(0) as i32;
    WorkView {
        subset: subset.to_string(),
        cluster: cluster.to_string(),
        revision: work
            .pointer("/metadata/labels")
            .and_then(|l| l.get(REVISION_LABEL))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        replicas: as_i32(spec.and_then(|s| s.get("replicas"))),
        partition,
        fresh: observed.is_some_and(|o| o > base),
        applied: condition_true(work, "Applied"),
        available: condition_true(work, "Available"),
        workload: work
            .pointer("/status/workloadStatus")
            .and_then(|w| serde_json::from_value(w.clone()).ok())
            .unwrap_or_default(),
    }
}

impl WorkView {
    /// On `revision`, reporting on its current spec, applied, available, with every pod above
    /// the partition updated and ready.
    pub fn rolled(&self, revision: &str) -> bool {
        let wanted = (self.replicas - self.partition).max(0);
        self.revision == revision
            && (self.replicas == 0
                || (self.fresh
                    && self.applied
                    && self.available
                    && self.workload.updated_ready_replicas >= wanted
                    && self.workload.replicas >= self.replicas))
    }

    /// Updated pods counted for `revision`.
    fn updated(&self, revision: &str) -> (i32, i32) {
        if self.revision == revision && self.fresh {
            (
                self.workload.updated_replicas,
                self.workload.updated_ready_replicas,
            )
        } else {
            (0, 0)
        }
    }
}

/// The selector in string form (`k=v,k2 in (a,b)`), for the scale subresource.
pub fn selector_string(selector: &LabelSelector) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

/// Sets `condition` in `conditions`, keeping the transition time when the status is unchanged.
pub fn set_condition(
    conditions: &mut Vec<UnitedDeploymentCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    let next = UnitedDeploymentCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        last_transition_time: Some(super::to_time(now)),
        reason: Some(reason.to_string()),
        message: Some(message.to_string()),
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            let time = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                next.last_transition_time.clone()
            };
            *existing = UnitedDeploymentCondition {
                last_transition_time: time,
                ..next
            };
        }
        None => conditions.push(next),
    }
}

/// The counters of the status: totals, per-subset replicas and statuses.
pub struct Counts<'a> {
    /// Works of the UnitedDeployment after this reconcile's writes (views).
    pub works: &'a [WorkView],
    /// Subsets in spec order with the replicas written for them.
    pub subset_replicas: &'a [(String, i32)],
    /// Partition per subset.
    pub partitions: &'a BTreeMap<String, i32>,
    /// The update revision.
    pub update_revision: &'a str,
}

/// Fills the counters of `status` from Work reports; keeps subset conditions.
pub fn aggregate(status: &mut UnitedDeploymentStatus, counts: &Counts<'_>) {
    let (mut replicas, mut ready, mut updated, mut updated_ready) = (0, 0, 0, 0);
    for w in counts.works {
        replicas += w.workload.replicas;
        ready += w.workload.ready_replicas;
        let (u, ur) = w.updated(counts.update_revision);
        updated += u;
        updated_ready += ur;
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.updated_replicas = updated;
    status.updated_ready_replicas = Some(updated_ready);
    status.subset_replicas = Some(counts.subset_replicas.iter().cloned().collect());
    let mut per_cluster: Vec<UnitedDeploymentClusterStatus> = counts
        .works
        .iter()
        .map(|w| {
            let (u, ur) = w.updated(counts.update_revision);
            UnitedDeploymentClusterStatus {
                cluster: w.cluster.clone(),
                subset: w.subset.clone(),
                desired_replicas: w.replicas,
                replicas: w.workload.replicas,
                ready_replicas: w.workload.ready_replicas,
                updated_replicas: u,
                updated_ready_replicas: ur,
                unschedulable_replicas: w.workload.unschedulable_replicas,
            }
        })
        .collect();
    per_cluster.sort_by(|a, b| (&a.subset, &a.cluster).cmp(&(&b.subset, &b.cluster)));
    status.cluster_statuses = Some(per_cluster);
    let prior: BTreeMap<String, UnitedDeploymentSubsetStatus> = status
        .subset_statuses
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| s.name.clone().map(|n| (n, s)))
        .collect();
    status.subset_statuses = Some(
        counts
            .subset_replicas
            .iter()
            .map(|(name, _)| {
                let of = counts.works.iter().filter(|w| &w.subset == name);
                let (r, rr) = of.fold((0, 0), |(r, rr), w| {
                    (r + w.workload.replicas, rr + w.workload.ready_replicas)
                });
                UnitedDeploymentSubsetStatus {
                    name: Some(name.clone()),
                    replicas: Some(r),
                    ready_replicas: Some(rr),
                    partition: Some(counts.partitions.get(name).copied().unwrap_or(0)),
                    reserved_pods: None,
                    conditions: prior.get(name).and_then(|p| p.conditions.clone()),
                }
            })
            .collect(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn work(rev: &str, replicas: i32, observed: &str, ws: Value) -> Value {
        json!({"metadata": {"labels": {REVISION_LABEL: rev},
                "annotations": {SPEC_BASE_ANNOTATION: "10"}},
            "spec": {"workload": {"spec": {"replicas": replicas}}},
            "status": {"observedRevision": observed,
                "conditions": [{"type": "Applied", "status": "True"},
                               {"type": "Available", "status": "True"}],
                "workloadStatus": ws}})
    }

    #[test]
    fn stale_reports_do_not_count_as_rolled() {
        let ws = json!({"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3,
                        "updatedReadyReplicas": 3});
        let stale = view(&work("rev2", 3, "10", ws.clone()), "a", "c1");
        assert!(!stale.fresh);
        assert!(!stale.rolled("rev2"));
        let fresh = view(&work("rev2", 3, "11", ws), "a", "c1");
        assert!(fresh.rolled("rev2"));
        assert!(!fresh.rolled("rev3"));
    }

    #[test]
    fn aggregates_counts_per_subset() {
        let ws = |r, u| {
            json!({"replicas": r, "readyReplicas": r, "updatedReplicas": u,
                               "updatedReadyReplicas": u})
        };
        let works = [
            view(&work("rev2", 5, "12", ws(5, 5)), "r1", "c1"),
            view(&work("rev1", 3, "12", ws(3, 3)), "r2", "c2"),
            view(&work("rev2", 2, "12", ws(2, 1)), "r3", "c3"),
        ];
        let subsets = [
            ("r1".to_string(), 5),
            ("r2".to_string(), 3),
            ("r3".to_string(), 2),
        ];
        let mut status = UnitedDeploymentStatus::default();
        aggregate(
            &mut status,
            &Counts {
                works: &works,
                subset_replicas: &subsets,
                partitions: &BTreeMap::new(),
                update_revision: "rev2",
            },
        );
        assert_eq!(status.replicas, 10);
        assert_eq!(status.ready_replicas, Some(10));
        assert_eq!(status.updated_replicas, 6, "rev1 pods are not updated");
        let clusters = status.cluster_statuses.clone().expect("per-cluster status");
        let rows: Vec<(&str, &str, i32, i32, i32)> = clusters
            .iter()
            .map(|c| {
                (
                    c.subset.as_str(),
                    c.cluster.as_str(),
                    c.desired_replicas,
                    c.ready_replicas,
                    c.updated_ready_replicas,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("r1", "c1", 5, 5, 5),
                ("r2", "c2", 3, 3, 0),
                ("r3", "c3", 2, 2, 1)
            ]
        );
        assert_eq!(status.updated_ready_replicas, Some(6));
        let subsets = status.subset_statuses.expect("subset statuses");
        assert_eq!(subsets[1].replicas, Some(3));
        assert_eq!(status.subset_replicas.expect("map")["r1"], 5);
    }

    #[test]
    fn selector_string_form() {
        let sel: LabelSelector = serde_json::from_value(json!({"matchLabels": {"app": "shop"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}))
        .expect("selector");
        assert_eq!(selector_string(&sel), "app=shop,tier in (a,b)");
    }
}
