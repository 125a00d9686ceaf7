//! Pure planning of the NodeImage controller (spec section 10.3): one NodeImage per Node with the
//! Node's labels, deleted with the Node; finished tag entries dropped after their TTL, and entries
//! whose owning jobs are all gone dropped at once.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use kube::ResourceExt;

/// Seconds a tag entry must exist before a missing owner counts as gone (the job cache may lag
/// behind the job's first write).
pub const ORPHAN_GRACE_SECONDS: f64 = 10.0;

/// What the NodeImage controller writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// NodeImages to create: name and labels.
    pub create: Vec<(String, BTreeMap<String, String>)>,
    /// NodeImages whose labels must become the Node's.
    pub relabel: Vec<(String, BTreeMap<String, String>)>,
    /// NodeImages whose Node is gone.
    pub delete: Vec<String>,
    /// NodeImages whose spec loses expired or orphaned tag entries: name and new spec.
    pub prune: Vec<(String, NodeImageSpec)>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_noop(&self) -> bool {
        self.create.is_empty()
            && self.relabel.is_empty()
            && self.delete.is_empty()
            && self.prune.is_empty()
    }
}

/// Plans one round over all Nodes and NodeImages. `live_jobs` holds the uids of existing
/// ImagePullJobs.
pub fn plan(
    nodes: &[&Node],
    images: &[&NodeImage],
    live_jobs: &BTreeSet<String>,
    now: Timestamp,
) -> Plan {
    let mut out = Plan::default();
    let by_name: BTreeMap<String, &NodeImage> =
        images.iter().map(|ni| (ni.name_any(), *ni)).collect();
    let node_names: BTreeSet<String> = nodes.iter().map(|n| n.name_any()).collect();
    for n in nodes {
        let labels = n.metadata.labels.clone().unwrap_or_default();
        match by_name.get(&n.name_any()) {
            None if n.metadata.deletion_timestamp.is_none() => {
                out.create.push((n.name_any(), labels))
            }
            None => {}
            Some(ni) if ni.metadata.labels.clone().unwrap_or_default() != labels => {
                out.relabel.push((n.name_any(), labels))
            }
            Some(_) => {}
        }
    }
    for ni in images {
        if !node_names.contains(&ni.name_any()) {
            if ni.metadata.deletion_timestamp.is_none() {
                out.delete.push(ni.name_any());
            }
            continue;
        }
        if let Some(spec) = pruned(ni, live_jobs, now) {
            out.prune.push((ni.name_any(), spec));
        }
    }
    out
}

/// The NodeImage's spec without finished entries past their TTL and without entries whose
/// ImagePullJob owners all disappeared; `None` when nothing goes.
pub fn pruned(
    ni: &NodeImage,
    live_jobs: &BTreeSet<String>,
    now: Timestamp,
) -> Option<NodeImageSpec> {
    let mut spec = ni.spec.clone();
    let images = spec.images.as_mut()?;
    let statuses = ni.status.as_ref().and_then(|s| s.image_statuses.as_ref());
    let mut changed = false;
    for (name, img) in images.iter_mut() {
        img.tags.retain(|t| {
            let age = t
                .created_at
                .as_ref()
                .map_or(f64::MAX, |c| now.duration_since(c.0).as_secs_f64());
            let job_refs: Vec<_> = t
                .owner_references
                .iter()
                .flatten()
                .filter(|r| r.kind.as_deref().is_none_or(|k| k == "ImagePullJob"))
                .collect();
            let orphaned = !job_refs.is_empty()
                && age >= ORPHAN_GRACE_SECONDS
                && job_refs
                    .iter()
                    .all(|r| r.uid.as_ref().is_none_or(|u| !live_jobs.contains(u)));
            let status = statuses
                .and_then(|s| s.get(name))
                .and_then(|s| s.tags.iter().find(|s| s.tag == t.tag))
                .filter(|s| s.version.unwrap_or(0) == t.version.unwrap_or(0));
            let expired = match (
                status,
                t.pull_policy
                    .as_ref()
                    .and_then(|p| p.ttl_seconds_after_finished),
            ) {
                (Some(s), Some(ttl)) if s.phase == "Succeeded" || s.phase == "Failed" => s
                    .completion_time
                    .as_ref()
                    .is_some_and(|done| now.duration_since(done.0).as_secs_f64() >= f64::from(ttl)),
                _ => false,
            };
            let keep = !orphaned && !expired;
            changed |= !keep;
            keep
        });
    }
    images.retain(|_, img| !img.tags.is_empty());
    changed.then_some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn ni(v: serde_json::Value) -> NodeImage {
        serde_json::from_value(v).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn one_nodeimage_per_node_with_its_labels() {
        let nodes = [
            node("a", json!({"zone": "x"})),
            node("b", json!({"zone": "y"})),
        ];
        let images = [
            ni(json!({"metadata": {"name": "b", "labels": {"zone": "old"}}, "spec": {}})),
            ni(json!({"metadata": {"name": "gone"}, "spec": {}})),
        ];
        let p = plan(
            &nodes.iter().collect::<Vec<_>>(),
            &images.iter().collect::<Vec<_>>(),
            &BTreeSet::new(),
            at("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            p.create,
            vec![(
                "a".to_string(),
                [("zone".to_string(), "x".to_string())].into()
            )]
        );
        assert_eq!(
            p.relabel,
            vec![(
                "b".to_string(),
                [("zone".to_string(), "y".to_string())].into()
            )]
        );
        assert_eq!(p.delete, vec!["gone".to_string()]);
        assert!(p.prune.is_empty());
    }

    fn tagged(version: i64, phase: &str, done: &str, uid: &str) -> NodeImage {
        ni(json!({
            "metadata": {"name": "a"},
            "spec": {"images": {"example.com/big": {"tags": [{
                "tag": "1.0", "version": version, "createdAt": "2026-01-01T00:00:00Z",
                "pullPolicy": {"ttlSecondsAfterFinished": 60},
                "ownerReferences": [{"kind": "ImagePullJob", "uid": uid, "name": "j", "namespace": "default"}]
            }]}}},
            "status": {"desired": 1, "imageStatuses": {"example.com/big": {"tags": [{
                "tag": "1.0", "phase": phase, "version": version, "completionTime": done
            }]}}}
        }))
    }

    #[test]
    fn finished_entries_expire_after_their_ttl_and_orphans_go() {
        let live: BTreeSet<String> = ["uid-1".to_string()].into();
        let cases = [
            (
                "Succeeded",
                "2026-01-01T00:01:00Z",
                "uid-1",
                "2026-01-01T00:01:30Z",
                false,
            ),
            (
                "Succeeded",
                "2026-01-01T00:01:00Z",
                "uid-1",
                "2026-01-01T00:02:00Z",
                true,
            ),
            (
                "Failed",
                "2026-01-01T00:01:00Z",
                "uid-1",
                "2026-01-01T00:02:01Z",
                true,
            ),
            (
                "Pulling",
                "2026-01-01T00:01:00Z",
                "uid-1",
                "2026-01-01T01:00:00Z",
                false,
            ),
            (
                "Pulling",
                "2026-01-01T00:01:00Z",
                "uid-gone",
                "2026-01-01T00:00:05Z",
                false,
            ),
            (
                "Pulling",
                "2026-01-01T00:01:00Z",
                "uid-gone",
                "2026-01-01T00:00:11Z",
                true,
            ),
        ];
        for (phase, done, uid, now, gone) in cases {
            let got = pruned(&tagged(1, phase, done, uid), &live, at(now));
            assert_eq!(got.is_some(), gone, "{phase} {uid} at {now}");
            if let Some(spec) = got {
                assert!(spec.images.unwrap().is_empty());
            }
        }
    }
}
