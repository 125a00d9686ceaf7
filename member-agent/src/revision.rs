//! Revision management with `apps/v1 ControllerRevision`s, named and hashed like upstream.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{json, Value};

/// Pod label holding the revision (`<name>-<hash>`, or `<hash>` with CloneSetShortHash).
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";
/// Pod label holding the short hash.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a, the hash Kubernetes uses for revisions.
fn fnv32a(bytes: &[u8], mut h: u32) -> u32 {
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Kubernetes' `rand.SafeEncodeString`: maps each byte onto consonants and digits.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHANUMS[usize::from(b) % SAFE_ALPHANUMS.len()] as char)
        .collect()
}

/// The revision hash of some revision data, perturbed by the collision count.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    let mut h = fnv32a(data.to_string().as_bytes(), 0x811c_9dc5);
    if let Some(c) = collision_count {
        h = fnv32a(&(c as u32).to_le_bytes(), h);
    }
    safe_encode(&h.to_string())
}

/// CloneSet revision data: the template wrapped as a strategic-merge "replace" patch.
pub fn template_patch(template: &PodTemplateSpec) -> Value {
    let mut t = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut t {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    json!({"spec": {"template": t}})
}

/// The pod template stored in a revision made by [`template_patch`].
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = revision
        .data
        .as_ref()?
        .0
        .get("spec")?
        .get("template")?
        .clone();
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

/// The hash part of a revision name `<name>-<hash>`.
pub fn short_hash(revision_name: &str) -> &str {
    revision_name
        .rsplit_once('-')
        .map_or(revision_name, |(_, h)| h)
}

/// The pod's revision label.
pub fn pod_revision(pod: &Pod) -> &str {
    crate::pods::label(pod, CONTROLLER_REVISION_HASH).unwrap_or("")
}

/// Whether the pod is on `revision_name`, accepting both the full and the short label form.
pub fn pod_on_revision(pod: &Pod, revision_name: &str) -> bool {
    let label = pod_revision(pod);
    !label.is_empty() && (label == revision_name || label == short_hash(revision_name))
}

/// Whether two revisions hold the same data.
pub fn same_data(a: &ControllerRevision, b_data: &Value) -> bool {
    a.data.as_ref().map(|d| &d.0) == Some(b_data)
}

/// Builds a new ControllerRevision for an owner.
pub fn new_revision(
    owner: OwnerReference,
    namespace: &str,
    owner_name: &str,
    labels: BTreeMap<String, String>,
    data: Value,
    number: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let h = hash(&data, collision_count);
    let mut labels = labels;
    labels.insert(CONTROLLER_REVISION_HASH.to_string(), h.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{owner_name}-{h}")),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// What to do so that a revision holding `data` is the newest.
#[derive(Debug, Clone, PartialEq)]
pub enum RevisionDecision {
    /// The newest revision already holds the data.
    UseExisting(String),
    /// An older revision holds the data: bump its number to `number` (a rollback).
    Bump {
        /// Revision name.
        name: String,
        /// New revision number.
        number: i64,
    },
    /// Create a new revision with this number.
    Create {
        /// Revision number.
        number: i64,
    },
}

/// Decides how to obtain the update revision from the existing history (pure).
pub fn decide(history: &[ControllerRevision], data: &Value) -> RevisionDecision {
    let max = history.iter().map(|r| r.revision).max().unwrap_or(0);
    let mut equal: Vec<&ControllerRevision> =
        history.iter().filter(|r| same_data(r, data)).collect();
    equal.sort_by_key(|r| r.revision);
    match equal.last() {
        Some(r) if r.revision == max => {
            RevisionDecision::UseExisting(r.metadata.name.clone().unwrap_or_default())
        }
        Some(r) => RevisionDecision::Bump {
            name: r.metadata.name.clone().unwrap_or_default(),
            number: max + 1,
        },
        None => RevisionDecision::Create { number: max + 1 },
    }
}

/// Revisions to delete so that at most `limit` unused old revisions remain (oldest first).
pub fn to_prune(
    history: &[ControllerRevision],
    in_use: &BTreeSet<String>,
    limit: i32,
) -> Vec<String> {
    let mut unused: Vec<&ControllerRevision> = history
        .iter()
        .filter(|r| {
            let name = r.metadata.name.as_deref().unwrap_or("");
            !in_use.contains(name) && !in_use.contains(short_hash(name))
        })
        .collect();
    let keep = usize::try_from(limit.max(0)).unwrap_or(0);
    if unused.len() <= keep {
        return vec![];
    }
    unused.sort_by_key(|r| r.revision);
    let excess = unused.len() - keep;
    unused
        .into_iter()
        .take(excess)
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(name: &str, number: i64, data: Value) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            data: Some(RawExtension(data)),
            revision: number,
        }
    }

    #[test]
    fn hash_is_stable_safe_and_collision_sensitive() {
        let d = json!({"spec": {"template": {"a": 1}}});
        let h = hash(&d, None);
        assert_eq!(h, hash(&d, None));
        assert!(h.bytes().all(|b| SAFE_ALPHANUMS.contains(&b)));
        assert_ne!(h, hash(&d, Some(1)));
        assert_ne!(h, hash(&json!({"spec": {"template": {"a": 2}}}), None));
    }

    #[test]
    fn template_round_trips() {
        let t: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i:v1"}]}
        }))
        .unwrap();
        let data = template_patch(&t);
        assert_eq!(data["spec"]["template"]["$patch"], "replace");
        let r = rev("x-abc", 1, data);
        assert_eq!(template_of(&r), Some(t));
    }

    #[test]
    fn revision_label_matches_long_and_short_forms() {
        let p = crate::pods::testing::pod("demo-abcde", "demo-5d8f9", true);
        assert!(pod_on_revision(&p, "demo-5d8f9"));
        let p = crate::pods::testing::pod("demo-abcde", "5d8f9", true);
        assert!(pod_on_revision(&p, "demo-5d8f9"));
        assert!(!pod_on_revision(&p, "demo-77777"));
    }

    #[test]
    fn decide_reuses_bumps_or_creates() {
        let a = json!({"v": 1});
        let b = json!({"v": 2});
        let hist = vec![rev("x-a", 1, a.clone()), rev("x-b", 2, b.clone())];
        assert_eq!(
            decide(&hist, &b),
            RevisionDecision::UseExisting("x-b".into())
        );
        assert_eq!(
            decide(&hist, &a),
            RevisionDecision::Bump {
                name: "x-a".into(),
                number: 3
            }
        );
        assert_eq!(
            decide(&hist, &json!({"v": 3})),
            RevisionDecision::Create { number: 3 }
        );
        assert_eq!(decide(&[], &a), RevisionDecision::Create { number: 1 });
    }

    #[test]
    fn prune_keeps_in_use_and_newest_unused() {
        let hist: Vec<_> = (1..=5)
            .map(|i| rev(&format!("x-h{i}"), i, json!({ "v": i })))
            .collect();
        let in_use = BTreeSet::from(["x-h5".to_string(), "h1".to_string()]);
        assert_eq!(to_prune(&hist, &in_use, 2), vec!["x-h2".to_string()]);
        assert!(to_prune(&hist, &in_use, 10).is_empty());
    }
}
