//! One reconcile of a UnitedDeployment as a pure function: from the UnitedDeployment, the
//! ManagedClusters and its Works to the status to store and the Works to write or delete.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use kruise_api::apps::v1alpha1::uniteddeployment::{
    UnitedDeployment, UnitedDeploymentStatus, UpdateStatus, ADAPTIVE,
};
use serde_json::{json, Map, Value};

use super::failover::{self, Unit};
use super::placement::{self, ClusterInfo, SubsetPlacement};
use super::status::{self, Counts, WorkView};
use super::waves::{self, UnitProgress, CONDITION_WAVE_PROGRESSING};
use super::work_name;
use super::workload::{self, WorkloadInput, SUBSET_LABEL};

/// Subset condition type set while a subset cannot schedule (as upstream).
pub const CONDITION_SCHEDULABLE: &str = "Schedulable";
/// Default `rescheduleCriticalSeconds`.
pub const DEFAULT_RESCHEDULE_CRITICAL_SECONDS: i32 = 30;
/// Default `unschedulableLastSeconds`.
pub const DEFAULT_UNSCHEDULABLE_DURATION: i32 = 300;

/// What one reconcile sees.
pub struct Observed<'a> {
    /// The UnitedDeployment.
    pub ud: &'a UnitedDeployment,
    /// Every ManagedCluster.
    pub clusters: &'a [ClusterInfo],
    /// The UnitedDeployment's Works by name.
    pub works: &'a BTreeMap<String, Value>,
    /// Since when each subset has had unschedulable pods (kept by the caller).
    pub pending_since: &'a BTreeMap<String, DateTime<Utc>>,
    /// The current time.
    pub now: DateTime<Utc>,
}

/// A Work the UnitedDeployment should have.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredWork {
    /// Work name.
    pub name: String,
    /// Subset.
    pub subset: String,
    /// Target cluster.
    pub cluster: String,
    /// Revision of the template it carries.
    pub revision: String,
    /// The subset workload.
    pub manifest: Value,
}

/// The outcome of one reconcile.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Status to store.
    pub status: UnitedDeploymentStatus,
    /// Works to have; `None` leaves the Works as they are (the spec cannot be placed).
    pub works: Option<Vec<DesiredWork>>,
    /// Works to delete.
    pub delete: Vec<String>,
    /// Subsets with unschedulable pods now, and since when.
    pub pending_since: BTreeMap<String, DateTime<Utc>>,
}

fn subset_and_cluster(work: &Value) -> (String, String) {
    let subset = work
        .pointer("/metadata/labels")
        .and_then(|l| l.get(SUBSET_LABEL))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let cluster = work
        .pointer("/spec/cluster")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (subset.to_string(), cluster.to_string())
}

fn failed_plan(ud: &UnitedDeployment, message: String, now: DateTime<Utc>) -> Plan {
    let mut status = ud.status.clone().unwrap_or_default();
    status.observed_generation = ud.metadata.generation;
    let mut conditions = status.conditions.take().unwrap_or_default();
    status::set_condition(
        &mut conditions,
        "SubsetProvisioned",
        "False",
        "PlacementFailed",
        &message,
        now,
    );
    status.conditions = Some(conditions);
    Plan {
        status,
        works: None,
        delete: Vec::new(),
        pending_since: BTreeMap::new(),
    }
}

/// Whether a subset is marked unschedulable, per its prior condition and pending pods.
fn unschedulable(
    prior: Option<&UnitedDeploymentStatus>,
    subset: &str,
    since: Option<&DateTime<Utc>>,
    critical: i64,
    duration: i64,
    now: DateTime<Utc>,
) -> bool {
    let marked = prior
        .and_then(|s| s.subset_statuses.as_ref())
        .and_then(|ss| ss.iter().find(|s| s.name.as_deref() == Some(subset)))
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == CONDITION_SCHEDULABLE))
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .is_some_and(|t| now.signed_duration_since(super::from_time(t)).num_seconds() < duration);
    marked || since.is_some_and(|s| now.signed_duration_since(*s).num_seconds() >= critical)
}

/// Computes the plan.
pub fn plan(o: &Observed<'_>) -> Plan {
    let ud = o.ud;
    let spec = &ud.spec;
    let name = ud.metadata.name.clone().unwrap_or_default();
    let namespace = ud.metadata.namespace.clone().unwrap_or_default();
    let now = o.now;
    let prior = ud.status.as_ref();

    let mut existing: BTreeMap<(String, String), (&String, &Value)> = BTreeMap::new();
    let mut current: BTreeMap<String, i32> = BTreeMap::new();
    let mut hosting: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (work, value) in o.works {
        let (subset, cluster) = subset_and_cluster(value);
        let replicas = value
            .pointer("/spec/workload/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0) as i32;
        *current.entry(subset.clone()).or_default() += replicas;
        hosting
            .entry(subset.clone())
            .or_default()
            .insert(cluster.clone());
        existing.insert((subset, cluster), (work, value));
    }
    let placed: Vec<SubsetPlacement> = match placement::place(spec, o.clusters, &current, &hosting)
    {
        Ok(p) => p,
        Err(e) => return failed_plan(ud, e.to_string(), now),
    };
    let template = match workload::template(&spec.template) {
        Ok(t) => t,
        Err(e) => return failed_plan(ud, e.to_string(), now),
    };
    let update_revision = workload::revision(&name, &spec.template);
    let subsets = spec.topology.subsets.clone().unwrap_or_default();
    let strategy = spec.topology.schedule_strategy.clone().unwrap_or_default();
    let adaptive = strategy.type_.as_deref() == Some(ADAPTIVE);
    let adaptive_params = strategy.adaptive.clone().unwrap_or_default();
    let critical = i64::from(
        adaptive_params
            .reschedule_critical_seconds
            .unwrap_or(DEFAULT_RESCHEDULE_CRITICAL_SECONDS),
    );
    let duration = i64::from(
        adaptive_params
            .unschedulable_seconds()
            .unwrap_or(DEFAULT_UNSCHEDULABLE_DURATION),
    );
    let views: BTreeMap<(String, String), WorkView> = existing
        .iter()
        .map(|(k, (_, v))| (k.clone(), status::view(v, &k.0, &k.1)))
        .collect();

    // Pending pods per subset (adaptive only).
    let mut pending_since = BTreeMap::new();
    let mut marked: BTreeSet<String> = BTreeSet::new();
    if adaptive {
        for s in &placed {
            let pending = views
                .values()
                .any(|v| v.subset == s.name && v.fresh && v.workload.unschedulable_replicas > 0);
            let since = pending.then(|| o.pending_since.get(&s.name).copied().unwrap_or(now));
            if let Some(t) = since {
                pending_since.insert(s.name.clone(), t);
            }
            if unschedulable(prior, &s.name, since.as_ref(), critical, duration, now) {
                marked.insert(s.name.clone());
            }
        }
    }

    // Units and their replicas.
    let ready_cluster = |c: &str| o.clusters.iter().any(|i| i.name == c && i.ready);
    let units: Vec<Unit> = placed
        .iter()
        .flat_map(|s| {
            s.clusters.iter().map(|(cluster, base)| {
                let view = views.get(&(s.name.clone(), cluster.clone()));
                Unit {
                    subset: s.name.clone(),
                    cluster: cluster.clone(),
                    base: *base,
                    current: view.map(|v| v.replicas).unwrap_or(0),
                    // Only a report on the current spec counts: a stale one may predate a
                    // scale-down and overstate what runs.
                    ready: view
                        .filter(|v| v.fresh)
                        .map(|v| v.workload.ready_replicas)
                        .unwrap_or(0),
                    running: view.map(|v| v.workload.ready_replicas).unwrap_or(0),
                    cluster_ready: ready_cluster(cluster),
                    unschedulable: marked.contains(&s.name),
                }
            })
        })
        .collect();
    let order: Vec<String> = placed.iter().map(|s| s.name.clone()).collect();
    let total = spec.replicas.unwrap_or(1).max(0);
    let subset_max: BTreeMap<String, Option<i32>> = subsets
        .iter()
        .map(|s| {
            let max = placement::min_max(s, total)
                .ok()
                .and_then(|(_, max)| (max != i32::MAX).then_some(max));
            (s.name.clone(), max)
        })
        .collect();
    let decision = adaptive.then(|| failover::decide(&units, &order, &subset_max));
    let replicas: Vec<i32> = match &decision {
        Some(d) => d.replicas.clone(),
        None => units.iter().map(|u| u.base).collect(),
    };

    // Partitions per subset, split over its clusters by replicas.
    let manual = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.manual_update.as_ref())
        .and_then(|m| m.partitions.clone())
        .unwrap_or_default();
    let mut subset_written: Vec<(String, i32)> = order.iter().map(|s| (s.clone(), 0)).collect();
    for (u, r) in units.iter().zip(&replicas) {
        if let Some(e) = subset_written.iter_mut().find(|(s, _)| *s == u.subset) {
            e.1 += r;
        }
    }
    let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
    let mut unit_partition: Vec<Option<i32>> = vec![None; units.len()];
    if template.kind.supports_partition() {
        for (subset, written) in &subset_written {
            let Some(p) = manual.get(subset) else {
                continue;
            };
            let p = (*p).clamp(0, *written);
            partitions.insert(subset.clone(), p);
            let idx: Vec<usize> = (0..units.len())
                .filter(|i| units[*i].subset == *subset)
                .collect();
            let weights: Vec<(String, i32)> = idx
                .iter()
                .map(|i| (units[*i].cluster.clone(), replicas[*i]))
                .collect();
            for (i, (_, share)) in idx.iter().zip(placement::split_proportional(p, &weights)) {
                unit_partition[*i] = Some(share.min(replicas[*i]));
            }
        }
    }

    // Waves.
    let waves_spec = spec.update_strategy.as_ref().and_then(|u| u.waves.clone());
    let per_cluster = waves_spec.as_ref().is_some_and(waves::per_cluster);
    let wave_key = |u: &Unit| {
        if per_cluster {
            u.cluster.clone()
        } else {
            u.subset.clone()
        }
    };
    let wave = waves_spec.as_ref().map(|w| {
        let mut default_order: Vec<String> = Vec::new();
        for u in &units {
            let k = wave_key(u);
            if !default_order.contains(&k) {
                default_order.push(k);
            }
        }
        if !per_cluster {
            default_order = order.clone();
        }
        let wave_order = waves::unit_order(w.order.as_deref(), &default_order);
        let progress: Vec<UnitProgress> = wave_order
            .iter()
            .map(|k| UnitProgress {
                name: k.clone(),
                rolled: units
                    .iter()
                    .zip(&replicas)
                    .filter(|(u, _)| wave_key(u) == *k)
                    .all(
                        |(u, r)| match views.get(&(u.subset.clone(), u.cluster.clone())) {
                            Some(v) => v.rolled(&update_revision),
                            None => *r == 0,
                        },
                    ),
            })
            .collect();
        waves::step(
            w,
            &update_revision,
            prior.and_then(|s| s.wave_status.as_ref()),
            &progress,
            now,
        )
    });

    // Desired Works.
    let selector_labels: Map<String, Value> = spec
        .selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let subset_by_name: BTreeMap<&str, &kruise_api::apps::v1alpha1::uniteddeployment::Subset> =
        subsets.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut desired = Vec::new();
    for ((u, r), partition) in units.iter().zip(&replicas).zip(&unit_partition) {
        let Some(subset) = subset_by_name.get(u.subset.as_str()) else {
            continue;
        };
        let key = (u.subset.clone(), u.cluster.clone());
        let in_update = wave
            .as_ref()
            .is_none_or(|d| d.updated_units.contains(&wave_key(u)));
        let old = existing
            .get(&key)
            .and_then(|(_, v)| v.pointer("/spec/workload"));
        let (manifest, revision) = match (in_update, old) {
            (false, Some(old)) => (
                workload::rescale(old, *r, *partition),
                views
                    .get(&key)
                    .map(|v| v.revision.clone())
                    .unwrap_or_default(),
            ),
            _ => {
                let built = workload::build(&WorkloadInput {
                    ud: &name,
                    namespace: &namespace,
                    selector_labels: &selector_labels,
                    template: &template,
                    revision: &update_revision,
                    subset,
                    replicas: *r,
                    partition: *partition,
                });
                match built {
                    Ok(m) => (m, update_revision.clone()),
                    Err(e) => return failed_plan(ud, e.to_string(), now),
                }
            }
        };
        desired.push(DesiredWork {
            name: work_name(&name, &u.subset, &u.cluster),
            subset: u.subset.clone(),
            cluster: u.cluster.clone(),
            revision,
            manifest,
        });
    }
    let keep: BTreeSet<&String> = desired.iter().map(|d| &d.name).collect();
    let delete: Vec<String> = o
        .works
        .keys()
        .filter(|w| !keep.contains(w))
        .cloned()
        .collect();

    // Status.
    let mut st = prior.cloned().unwrap_or_default();
    st.observed_generation = ud.metadata.generation;
    let all_views: Vec<WorkView> = views.values().cloned().collect();
    status::aggregate(
        &mut st,
        &Counts {
            works: &all_views,
            subset_replicas: &subset_written,
            partitions: &partitions,
            update_revision: &update_revision,
        },
    );
    let rolled_everywhere = desired.iter().zip(&replicas).all(|(d, r)| {
        d.revision == update_revision
            && views
                .get(&(d.subset.clone(), d.cluster.clone()))
                .map_or(*r == 0, |v| v.rolled(&update_revision))
    });
    if rolled_everywhere || st.current_revision.is_empty() {
        st.current_revision = if rolled_everywhere || views.is_empty() {
            update_revision.clone()
        } else {
            views
                .values()
                .next()
                .map(|v| v.revision.clone())
                .unwrap_or_default()
        };
    }
    st.update_status = Some(UpdateStatus {
        updated_revision: Some(update_revision.clone()),
        current_partitions: (!partitions.is_empty()).then(|| partitions.clone()),
    });
    st.label_selector = Some(status::selector_string(&spec.selector));
    st.wave_status = wave.as_ref().map(|d| d.status.clone());
    let mut conditions = st.conditions.take().unwrap_or_default();
    let unplaced: Vec<&str> = placed
        .iter()
        .filter(|s| s.clusters.is_empty() && s.replicas > 0)
        .map(|s| s.name.as_str())
        .collect();
    if unplaced.is_empty() {
        status::set_condition(
            &mut conditions,
            "SubsetProvisioned",
            "True",
            "Provisioned",
            "every subset is placed on its clusters",
            now,
        );
    } else {
        status::set_condition(
            &mut conditions,
            "SubsetProvisioned",
            "False",
            "NoClusters",
            &format!("subsets without a cluster: {}", unplaced.join(", ")),
            now,
        );
    }
    if rolled_everywhere {
        status::set_condition(
            &mut conditions,
            "UnitedDeploymentUpdated",
            "True",
            "Updated",
            &format!("every subset runs revision {update_revision}"),
            now,
        );
    } else {
        status::set_condition(
            &mut conditions,
            "UnitedDeploymentUpdated",
            "False",
            "Updating",
            &format!("rolling out revision {update_revision}"),
            now,
        );
    }
    match &wave {
        Some(d) => {
            let (s, reason, message) = &d.condition;
            status::set_condition(
                &mut conditions,
                CONDITION_WAVE_PROGRESSING,
                s,
                reason,
                message,
                now,
            );
        }
        None => conditions.retain(|c| c.type_ != CONDITION_WAVE_PROGRESSING),
    }
    if let Some(d) = &decision {
        let failed: Vec<String> = units
            .iter()
            .filter(|u| !u.cluster_ready || u.unschedulable)
            .map(|u| format!("{}/{}", u.subset, u.cluster))
            .collect();
        if failed.is_empty() {
            status::set_condition(
                &mut conditions,
                "SubsetFailure",
                "False",
                "Healthy",
                "every subset can run its replicas",
                now,
            );
        } else {
            status::set_condition(
                &mut conditions,
                "SubsetFailure",
                "True",
                "Rescheduled",
                &format!(
                    "cannot run in {}: {} replicas moved, {} kept for lack of room{}",
                    failed.join(", "),
                    d.moved,
                    d.stranded,
                    if d.waiting {
                        "; waiting for replacements to be ready"
                    } else {
                        ""
                    }
                ),
                now,
            );
        }
        if let Some(subset_statuses) = st.subset_statuses.as_mut() {
            for ss in subset_statuses {
                let name = ss.name.clone().unwrap_or_default();
                let mut cs = ss.conditions.take().unwrap_or_default();
                if marked.contains(&name) {
                    status::set_condition(
                        &mut cs,
                        CONDITION_SCHEDULABLE,
                        "False",
                        "reschedule",
                        "timeout pending pods found",
                        now,
                    );
                } else {
                    status::set_condition(
                        &mut cs,
                        CONDITION_SCHEDULABLE,
                        "True",
                        "recover",
                        "",
                        now,
                    );
                }
                ss.conditions = Some(cs);
            }
        }
    } else {
        conditions.retain(|c| c.type_ != "SubsetFailure");
    }
    st.conditions = Some(conditions);
    Plan {
        status: st,
        works: Some(desired),
        delete,
        pending_since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ud::OWNER_LABEL;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn ud(spec: Value) -> UnitedDeployment {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "UnitedDeployment",
            "metadata": {"name": "web", "namespace": "team", "generation": 3},
            "spec": spec}))
        .expect("valid UnitedDeployment")
    }

    fn base_spec(subsets: Value) -> Value {
        json!({"replicas": 5, "selector": {"matchLabels": {"app": "web"}},
            "template": {"advancedStatefulSetTemplate": {"spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}},
            "topology": {"subsets": subsets}})
    }

    fn cluster(name: &str, region: &str, ready: bool) -> ClusterInfo {
        ClusterInfo {
            capacity: None,
            name: name.into(),
            labels: BTreeMap::from([("region".to_string(), region.to_string())]),
            ready,
        }
    }

    fn run(
        ud: &UnitedDeployment,
        clusters: &[ClusterInfo],
        works: &BTreeMap<String, Value>,
    ) -> Plan {
        plan(&Observed {
            ud,
            clusters,
            works,
            pending_since: &BTreeMap::new(),
            now: now(),
        })
    }

    #[test]
    fn selector_subset_spans_ready_clusters_with_partitions() {
        let mut spec = base_spec(json!([
            {"name": "eu", "clusterSelector": {"matchLabels": {"region": "eu"}}}]));
        spec["updateStrategy"] = json!({"manualUpdate": {"partitions": {"eu": 3}}});
        let ud = ud(spec);
        let clusters = [
            cluster("eu-b", "eu", true),
            cluster("eu-a", "eu", true),
            cluster("eu-c", "eu", false),
            cluster("us-a", "us", true),
        ];
        let p = run(&ud, &clusters, &BTreeMap::new());
        let works = p.works.expect("placed");
        let summary: Vec<(String, i64, i64)> = works
            .iter()
            .map(|w| {
                (
                    w.name.clone(),
                    w.manifest["spec"]["replicas"].as_i64().unwrap_or(-1),
                    w.manifest["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
                        .as_i64()
                        .unwrap_or(-1),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("web-eu-eu-a".to_string(), 3, 2),
                ("web-eu-eu-b".to_string(), 2, 1)
            ]
        );
        assert_eq!(works[0].manifest["apiVersion"], "apps.kruise.io/v1beta1");
        assert_eq!(works[0].manifest["metadata"]["namespace"], "team");
        assert_eq!(p.status.observed_generation, Some(3));
        let partitions = p.status.update_status.and_then(|u| u.current_partitions);
        assert_eq!(partitions, Some(BTreeMap::from([("eu".to_string(), 3)])));
    }

    #[test]
    fn invalid_spec_keeps_works_and_reports() {
        let ud = ud(base_spec(json!([
            {"name": "a", "clusters": ["c1"], "replicas": 4},
            {"name": "b", "clusters": ["c2"], "replicas": 4}])));
        let existing = BTreeMap::from([(
            "web-a-c1".to_string(),
            json!({"metadata": {"labels": {OWNER_LABEL: "web", SUBSET_LABEL: "a"}},
                   "spec": {"cluster": "c1", "workload": {"spec": {"replicas": 5}}}}),
        )]);
        let p = run(&ud, &[], &existing);
        assert!(p.works.is_none(), "nothing is rescaled or deleted");
        assert!(p.delete.is_empty());
        let condition = p
            .status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "SubsetProvisioned")
            .expect("condition");
        assert_eq!(condition.status, "False");
        assert!(condition.message.unwrap_or_default().contains("exceed"));
    }

    #[test]
    fn cluster_waves_update_one_cluster_first() {
        let mut spec = base_spec(json!([{"name": "all", "clusters": ["c2", "c1"]}]));
        spec["updateStrategy"] = json!({"waves": {"unit": "Cluster"}});
        let ud1 = ud(spec.clone());
        let clusters = [cluster("c1", "x", true), cluster("c2", "x", true)];
        let first = run(&ud1, &clusters, &BTreeMap::new());
        // Store the created Works as rolled on revision 1.
        let mut works = BTreeMap::new();
        for w in first.works.expect("placed") {
            works.insert(
                w.name.clone(),
                json!({"metadata": {"labels": {OWNER_LABEL: "web", SUBSET_LABEL: w.subset,
                        crate::ud::workload::REVISION_LABEL: w.revision},
                        "annotations": {crate::ud::SPEC_BASE_ANNOTATION: "0"}},
                    "spec": {"cluster": w.cluster, "workload": w.manifest},
                    "status": {"observedRevision": "5",
                        "conditions": [{"type": "Applied", "status": "True"},
                                       {"type": "Available", "status": "True"}],
                        "workloadStatus": {"replicas": 3, "readyReplicas": 3,
                            "updatedReplicas": 3, "updatedReadyReplicas": 3}}}),
            );
        }
        spec["template"]["advancedStatefulSetTemplate"]["spec"]["template"]["spec"]["containers"]
            [0]["image"] = json!("web:2");
        let mut ud2 = ud(spec);
        ud2.status = Some(first.status);
        let p = run(&ud2, &clusters, &works);
        let images: Vec<(String, String)> = p
            .works
            .expect("placed")
            .iter()
            .map(|w| {
                (
                    w.cluster.clone(),
                    w.manifest["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        assert_eq!(
            images,
            [
                ("c1".to_string(), "web:2".to_string()),
                ("c2".to_string(), "web:1".to_string())
            ]
        );
        assert_eq!(
            p.status.wave_status.and_then(|w| w.current),
            Some("c1".to_string())
        );
    }
}
