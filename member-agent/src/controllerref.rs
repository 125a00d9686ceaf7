//! Adoption and release of dependents, with the semantics of upstream's `ControllerRefManager`:
//! an orphan that matches the owner's selector is adopted (unless the owner or the orphan is being
//! deleted); an owned object that no longer matches is released. Objects controlled by someone
//! else are never touched.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::selector;

/// What to do with one candidate dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Owned and matching: keep it.
    Keep,
    /// An orphan that matches: add a controller ownerReference.
    Adopt,
    /// Owned but no longer matching: remove the ownerReference.
    Release,
    /// Not ours to take (another controller, not matching, or being deleted).
    Ignore,
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Decides the claim of the owner with `owner_uid` and `sel` on the object `meta`.
/// `owner_deleting`: the owner has a deletion timestamp, so it adopts nothing.
/// An empty selector never adopts (it would take every pod in the namespace).
pub fn claim(
    meta: &ObjectMeta,
    owner_uid: &str,
    sel: &LabelSelector,
    owner_deleting: bool,
) -> Claim {
    let matches = !selector::is_empty(sel) && selector::matches(sel, meta.labels.as_ref());
    let deleting = meta.deletion_timestamp.is_some();
    match controller_of(meta) {
        Some(r) if r.uid == owner_uid => {
            if matches || deleting {
                Claim::Keep
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None if matches && !deleting && !owner_deleting => Claim::Adopt,
        None => Claim::Ignore,
    }
}

/// The JSON patch that adopts an object: it must still be the same object (uid test), and it
/// gains `owner` as controller with `blockOwnerDeletion`.
pub fn adopt_patch(meta: &ObjectMeta, owner: &OwnerReference) -> Value {
    let mut owner = owner.clone();
    owner.controller = Some(true);
    owner.block_owner_deletion = Some(true);
    let owner = serde_json::to_value(&owner).unwrap_or(Value::Null);
    let uid = meta.uid.clone().unwrap_or_default();
    let add = match &meta.owner_references {
        Some(refs) if !refs.is_empty() => {
            json!({"op": "add", "path": "/metadata/ownerReferences/-", "value": owner})
        }
        _ => json!({"op": "add", "path": "/metadata/ownerReferences", "value": [owner]}),
    };
    json!([{"op": "test", "path": "/metadata/uid", "value": uid}, add])
}

/// The JSON patch that releases an object from the owner with `owner_uid`, or `None` when the
/// object does not name that owner. The uid and the reference's position are tested first.
pub fn release_patch(meta: &ObjectMeta, owner_uid: &str) -> Option<Value> {
    let index = meta
        .owner_references
        .iter()
        .flatten()
        .position(|r| r.uid == owner_uid)?;
    let uid = meta.uid.clone().unwrap_or_default();
    let path = format!("/metadata/ownerReferences/{index}");
    Some(json!([
        {"op": "test", "path": "/metadata/uid", "value": uid},
        {"op": "test", "path": format!("{path}/uid"), "value": owner_uid},
        {"op": "remove", "path": path},
    ]))
}

/// What [`claim_all`] changed.
#[derive(Debug)]
pub struct Claimed<K> {
    /// Objects adopted, as the API server returned them.
    pub adopted: Vec<K>,
    /// Names of objects released.
    pub released: BTreeSet<String>,
    /// The first write that failed (the object is retried on the next reconcile).
    pub error: Option<kube::Error>,
}

/// Adopts and releases among `candidates` (all in the owner's namespace) for the owner named by
/// `owner` (a controller reference). `can_adopt` is awaited once, only if something is to be
/// adopted: it re-reads the owner so that an owner deleted meanwhile adopts nothing.
/// Objects that vanished (404) or changed identity (failed uid test, 422) are skipped quietly.
pub async fn claim_all<K, F>(
    api: &Api<K>,
    candidates: &[Arc<K>],
    owner: &OwnerReference,
    sel: &LabelSelector,
    owner_deleting: bool,
    can_adopt: F,
) -> Claimed<K>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    F: Future<Output = bool>,
{
    let mut out = Claimed {
        adopted: Vec::new(),
        released: BTreeSet::new(),
        error: None,
    };
    let mut to_adopt = Vec::new();
    for obj in candidates {
        match claim(obj.meta(), &owner.uid, sel, owner_deleting) {
            Claim::Adopt => to_adopt.push(obj),
            Claim::Release => {
                let Some(patch) = release_patch(obj.meta(), &owner.uid) else {
                    continue;
                };
                match json_write(api, &obj.name_any(), patch).await {
                    Ok(_) => {
                        out.released.insert(obj.name_any());
                    }
                    Err(e) => {
                        out.error.get_or_insert(e);
                    }
                }
            }
            Claim::Keep | Claim::Ignore => {}
        }
    }
    if to_adopt.is_empty() || !can_adopt.await {
        return out;
    }
    for obj in to_adopt {
        match json_write(api, &obj.name_any(), adopt_patch(obj.meta(), owner)).await {
            Ok(Some(adopted)) => out.adopted.push(adopted),
            Ok(None) => {}
            Err(e) => {
                out.error.get_or_insert(e);
            }
        }
    }
    out
}

async fn json_write<K>(api: &Api<K>, name: &str, patch: Value) -> Result<Option<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch: json_patch::Patch = match serde_json::from_value(patch) {
        Ok(p) => p,
        Err(e) => return Err(kube::Error::SerdeError(e)),
    };
    match api
        .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
    {
        Ok(obj) => Ok(Some(obj)),
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 || s.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use std::collections::BTreeMap;

    fn owner(uid: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: "apps.kruise.io/v1alpha1".into(),
            kind: "CloneSet".into(),
            name: format!("cs-{uid}"),
            uid: uid.into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }
    }

    fn meta(app: &str, refs: Vec<OwnerReference>, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("p".into()),
            uid: Some("pod-uid".into()),
            labels: Some(BTreeMap::from([("app".to_string(), app.to_string())])),
            owner_references: (!refs.is_empty()).then_some(refs),
            deletion_timestamp: deleting.then_some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH)),
            ..Default::default()
        }
    }

    #[test]
    fn claims_follow_controller_ref_manager() {
        let sel = LabelSelector {
            match_labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
            match_expressions: None,
        };
        let ours = || owner("cs1", true);
        let cases = [
            (meta("web", vec![ours()], false), false, Claim::Keep),
            (meta("db", vec![ours()], false), false, Claim::Release),
            (meta("db", vec![ours()], true), false, Claim::Keep),
            (meta("web", vec![], false), false, Claim::Adopt),
            (
                meta("web", vec![owner("cs1", false)], false),
                false,
                Claim::Adopt,
            ),
            (meta("web", vec![], false), true, Claim::Ignore),
            (meta("web", vec![], true), false, Claim::Ignore),
            (meta("db", vec![], false), false, Claim::Ignore),
            (
                meta("web", vec![owner("other", true)], false),
                false,
                Claim::Ignore,
            ),
        ];
        for (i, (m, deleting, want)) in cases.into_iter().enumerate() {
            assert_eq!(claim(&m, "cs1", &sel, deleting), want, "case {i}");
        }
        let empty = LabelSelector::default();
        assert_eq!(
            claim(&meta("web", vec![], false), "cs1", &empty, false),
            Claim::Ignore
        );
    }

    #[test]
    fn patches_test_the_uid_and_keep_other_references() {
        let m = meta("web", vec![], false);
        let p = adopt_patch(&m, &owner("cs1", false));
        assert_eq!(
            p[0],
            json!({"op": "test", "path": "/metadata/uid", "value": "pod-uid"})
        );
        assert_eq!(p[1]["path"], "/metadata/ownerReferences");
        assert_eq!(p[1]["value"][0]["controller"], true);
        assert_eq!(p[1]["value"][0]["blockOwnerDeletion"], true);
        let m = meta("web", vec![owner("gc-only", false)], false);
        assert_eq!(
            adopt_patch(&m, &owner("cs1", true))[1]["path"],
            "/metadata/ownerReferences/-"
        );

        let m = meta("db", vec![owner("x", false), owner("cs1", true)], false);
        let p = release_patch(&m, "cs1").unwrap();
        assert_eq!(p[1]["path"], "/metadata/ownerReferences/1/uid");
        assert_eq!(
            p[2],
            json!({"op": "remove", "path": "/metadata/ownerReferences/1"})
        );
        assert_eq!(release_patch(&m, "nobody"), None);
        let mut doc = serde_json::to_value(k8s_openapi::api::core::v1::Pod {
            metadata: m,
            ..Default::default()
        })
        .unwrap();
        let patch: json_patch::Patch = serde_json::from_value(p).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(
            doc["metadata"]["ownerReferences"].as_array().unwrap().len(),
            1
        );
        assert_eq!(doc["metadata"]["ownerReferences"][0]["uid"], "x");
    }
}
