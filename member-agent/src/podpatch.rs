//! Strategic-merge patches for the pod changes controllers make (labels, annotations, container
//! images, conditions), so that one request does what a read-modify-write needs two for.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Map, Value};

fn map_patch(
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
) -> Option<Value> {
    let empty = BTreeMap::new();
    let (old, new) = (old.unwrap_or(&empty), new.unwrap_or(&empty));
    let mut out = Map::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), Value::String(v.clone()));
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// The strategic-merge patch turning `old` into `new` for metadata and spec, or `None` when the
/// change is something else (finalizers, other spec fields), which needs a full update.
pub fn spec_patch(old: &Pod, new: &Pod) -> Option<Value> {
    if old.metadata.finalizers != new.metadata.finalizers {
        return None;
    }
    let mut patch = Map::new();
    let mut meta = Map::new();
    if let Some(l) = map_patch(old.metadata.labels.as_ref(), new.metadata.labels.as_ref()) {
        meta.insert("labels".into(), l);
    }
    if let Some(a) = map_patch(
        old.metadata.annotations.as_ref(),
        new.metadata.annotations.as_ref(),
    ) {
        meta.insert("annotations".into(), a);
    }
    let (os, ns) = (
        old.spec.clone().unwrap_or_default(),
        new.spec.clone().unwrap_or_default(),
    );
    if os.containers.len() != ns.containers.len() {
        return None;
    }
    let mut images = Vec::new();
    let mut rest_old = os.clone();
    for (o, n) in rest_old.containers.iter_mut().zip(&ns.containers) {
        if o.name != n.name {
            return None;
        }
        if o.image != n.image {
            images.push(json!({"name": n.name, "image": n.image}));
            o.image = n.image.clone();
        }
    }
    if rest_old != ns {
        return None;
    }
    if !meta.is_empty() {
        patch.insert("metadata".into(), Value::Object(meta));
    }
    if !images.is_empty() {
        patch.insert("spec".into(), json!({ "containers": images }));
    }
    Some(Value::Object(patch))
}

/// The strategic-merge patch for `pods/status` carrying the conditions that changed (merged by
/// `type`), or `None` when anything but conditions changed.
pub fn status_patch(old: &Pod, new: &Pod) -> Option<Value> {
    let oc = old
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let nc = new
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut a = old.status.clone().unwrap_or_default();
    let mut b = new.status.clone().unwrap_or_default();
    a.conditions = None;
    b.conditions = None;
    if a != b || old.metadata != new.metadata || old.spec != new.spec {
        return None;
    }
    if oc.iter().any(|c| !nc.iter().any(|n| n.type_ == c.type_)) {
        return None;
    }
    let changed: Vec<Value> = nc
        .iter()
        .filter(|n| !oc.contains(n))
        .filter_map(|n| serde_json::to_value(n).ok())
        .collect();
    Some(json!({"status": {"conditions": changed}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::{pod, with_label};

    #[test]
    fn labels_annotations_and_images_become_one_patch() {
        let old = with_label(pod("a", "r1", true), "gone", "x");
        let mut new = with_label(old.clone(), "controller-revision-hash", "r2");
        new.metadata.labels.as_mut().unwrap().remove("gone");
        new.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("k".into(), "v".into());
        let mut old = old;
        old.spec.as_mut().unwrap().containers = vec![Default::default()];
        old.spec.as_mut().unwrap().containers[0].name = "main".into();
        old.spec.as_mut().unwrap().containers[0].image = Some("i:v1".into());
        new.spec = old.spec.clone();
        new.spec.as_mut().unwrap().containers[0].image = Some("i:v2".into());
        assert_eq!(
            spec_patch(&old, &new),
            Some(json!({
                "metadata": {"labels": {"controller-revision-hash": "r2", "gone": null},
                             "annotations": {"k": "v"}},
                "spec": {"containers": [{"name": "main", "image": "i:v2"}]}
            }))
        );
        let mut fin = new.clone();
        fin.metadata.finalizers = Some(vec!["x".into()]);
        assert_eq!(spec_patch(&new, &fin), None);
        let mut other = new.clone();
        other.spec.as_mut().unwrap().node_name = Some("elsewhere".into());
        assert_eq!(spec_patch(&new, &other), None);
    }

    #[test]
    fn conditions_merge_by_type() {
        let old = pod("a", "r", true);
        let mut new = old.clone();
        let now = k8s_openapi::jiff::Timestamp::UNIX_EPOCH;
        crate::inplace::set_condition(&mut new, "InPlaceUpdateReady", true, None, now);
        let p = status_patch(&old, &new).unwrap();
        assert_eq!(p["status"]["conditions"][0]["type"], "InPlaceUpdateReady");
        assert_eq!(p["status"]["conditions"].as_array().unwrap().len(), 1);
        let mut relabel = new.clone();
        relabel.metadata.name = Some("b".into());
        assert_eq!(status_patch(&new, &relabel), None);
    }
}
