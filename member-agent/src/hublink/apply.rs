//! Applying Work manifests to the member cluster with server-side apply, and removing what a
//! deleted Work had created.
//!
//! Every object the link creates carries the annotation `federation.kruise.io/work:
//! <namespace>/<name>`. An existing object without it (or with another Work's) is never taken
//! over unless it is annotated `federation.kruise.io/adopt: "true"`, and only objects carrying the
//! Work's annotation are deleted.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::{Api, Client};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Field manager of every apply the link makes.
pub const FIELD_MANAGER: &str = "kruise-hub-link";
/// Annotation naming the Work an object was created for.
pub const WORK_ANNOTATION: &str = "federation.kruise.io/work";
/// Annotation allowing the link to take over an object it did not create.
pub const ADOPT_ANNOTATION: &str = "federation.kruise.io/adopt";

/// The member-cluster object a Work manages.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `group/version` or `version`.
    pub api_version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (empty for cluster-scoped kinds).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// A Work that could not be applied or removed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The manifest lacks apiVersion, kind or name.
    #[error("Work {work}: the manifest needs apiVersion, kind and metadata.name")]
    InvalidManifest { work: String },
    /// The kind is not served by the member cluster.
    #[error("Work {work}: kind {api_version}/{kind} is not served by the cluster: {source}")]
    UnknownKind {
        work: String,
        api_version: String,
        kind: String,
        #[source]
        source: kube::Error,
    },
    /// The object exists and belongs to someone else.
    #[error("Work {work}: {kind} {name} already exists and was not created for this Work (annotate it {ADOPT_ANNOTATION}=true to let the hub take it over)")]
    NotOwned {
        work: String,
        kind: String,
        name: String,
    },
    /// The API call failed.
    #[error("Work {work}: {operation} {kind} {name}: {source}")]
    Api {
        work: String,
        operation: &'static str,
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ApplyError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ApplyError::InvalidManifest { .. } | ApplyError::NotOwned { .. } => false,
            ApplyError::UnknownKind { .. } | ApplyError::Api { .. } => true,
        }
    }

    /// A short, closed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ApplyError::InvalidManifest { .. } => "invalid_manifest",
            ApplyError::UnknownKind { .. } => "unknown_kind",
            ApplyError::NotOwned { .. } => "not_owned",
            ApplyError::Api { .. } => "api",
        }
    }
}

/// The manifest's object reference, defaulting the namespace to the Work's.
pub fn object_ref(manifest: &Value, work_namespace: &str) -> Option<ObjectRef> {
    let api_version = manifest.get("apiVersion")?.as_str()?.to_string();
    let kind = manifest.get("kind")?.as_str()?.to_string();
    let name = manifest.pointer("/metadata/name")?.as_str()?.to_string();
    let namespace = manifest
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or(work_namespace)
        .to_string();
    (!api_version.is_empty() && !kind.is_empty() && !name.is_empty()).then_some(ObjectRef {
        api_version,
        kind,
        namespace,
        name,
    })
}

/// Whether an existing object may be written for `work`.
pub fn may_write(existing: &Value, work: &str) -> bool {
    let annotations = existing.pointer("/metadata/annotations");
    let get = |key: &str| annotations.and_then(|a| a.get(key)).and_then(Value::as_str);
    get(WORK_ANNOTATION) == Some(work) || get(ADOPT_ANNOTATION) == Some("true")
}

/// Applies and deletes Work manifests.
pub struct Applier {
    client: Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, ApiCapabilities)>>,
}

impl Applier {
    /// An applier over the member cluster.
    pub fn new(client: Client) -> Self {
        Applier {
            client,
            kinds: Mutex::default(),
        }
    }

    /// The API resource of `target`'s kind, as the member cluster serves it.
    pub async fn resource(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> Result<ApiResource, ApplyError> {
        Ok(self.kind(work, target).await?.0)
    }

    async fn kind(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> Result<(ApiResource, ApiCapabilities), ApplyError> {
        let key = (target.api_version.clone(), target.kind.clone());
        let cached = self.kinds.lock().ok().and_then(|k| k.get(&key).cloned());
        let (resource, caps) = match cached {
            Some(found) => found,
            None => {
                let (group, version) = match target.api_version.split_once('/') {
                    Some((g, v)) => (g, v),
                    None => ("", target.api_version.as_str()),
                };
                let gvk = GroupVersionKind::gvk(group, version, &target.kind);
                let found = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(|source| ApplyError::UnknownKind {
                        work: work.to_string(),
                        api_version: target.api_version.clone(),
                        kind: target.kind.clone(),
                        source,
                    })?;
                if let Ok(mut kinds) = self.kinds.lock() {
                    kinds.insert(key, found.clone());
                }
                found
            }
        };
        Ok((resource, caps))
    }

    async fn api(
        &self,
        work: &str,
        target: &ObjectRef,
    ) -> Result<(Api<DynamicObject>, bool), ApplyError> {
        let (resource, caps) = self.kind(work, target).await?;
        Ok(match caps.scope {
            Scope::Namespaced => (
                Api::namespaced_with(self.client.clone(), &target.namespace, &resource),
                true,
            ),
            Scope::Cluster => (Api::all_with(self.client.clone(), &resource), false),
        })
    }

    /// Server-side applies `manifest` for `work` (`namespace/name`); returns the applied object.
    pub async fn apply(
        &self,
        work: &str,
        work_namespace: &str,
        manifest: &Value,
    ) -> Result<(ObjectRef, Value), ApplyError> {
        let target =
            object_ref(manifest, work_namespace).ok_or_else(|| ApplyError::InvalidManifest {
                work: work.to_string(),
            })?;
        let (api, namespaced) = self.api(work, &target).await?;
        let api_err = |operation, source| ApplyError::Api {
            work: work.to_string(),
            operation,
            kind: target.kind.clone(),
            name: target.name.clone(),
            source,
        };
        if let Some(existing) = api
            .get_opt(&target.name)
            .await
            .map_err(|e| api_err("get", e))?
        {
            let existing = serde_json::to_value(&existing).unwrap_or(Value::Null);
            if !may_write(&existing, work) {
                return Err(ApplyError::NotOwned {
                    work: work.to_string(),
                    kind: target.kind.clone(),
                    name: target.name.clone(),
                });
            }
        }
        let mut desired = manifest.clone();
        if let Some(meta) = desired["metadata"].as_object_mut() {
            if namespaced {
                meta.insert("namespace".into(), Value::String(target.namespace.clone()));
            } else {
                meta.remove("namespace");
            }
        }
        desired["metadata"]["annotations"][WORK_ANNOTATION] = Value::String(work.to_string());
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let applied = api
            .patch(&target.name, &params, &Patch::Apply(&desired))
            .await
            .map_err(|e| api_err("apply", e))?;
        Ok((
            target,
            serde_json::to_value(&applied).unwrap_or(Value::Null),
        ))
    }

    /// Reads the current object of `target`, if any.
    pub async fn get(&self, work: &str, target: &ObjectRef) -> Result<Option<Value>, ApplyError> {
        let (api, _) = self.api(work, target).await?;
        let found = api
            .get_opt(&target.name)
            .await
            .map_err(|source| ApplyError::Api {
                work: work.to_string(),
                operation: "get",
                kind: target.kind.clone(),
                name: target.name.clone(),
                source,
            })?;
        Ok(found.map(|o| serde_json::to_value(&o).unwrap_or(Value::Null)))
    }

    /// Deletes what `work` created at `target` (leaves foreign or already-gone objects alone).
    pub async fn remove(&self, work: &str, target: &ObjectRef) -> Result<bool, ApplyError> {
        let Some(existing) = self.get(work, target).await? else {
            return Ok(false);
        };
        let ours = existing
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(WORK_ANNOTATION))
            .and_then(Value::as_str)
            == Some(work);
        if !ours {
            return Ok(false);
        }
        let (api, _) = self.api(work, target).await?;
        match api.delete(&target.name, &DeleteParams::background()).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
            Err(source) => Err(ApplyError::Api {
                work: work.to_string(),
                operation: "delete",
                kind: target.kind.clone(),
                name: target.name.clone(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_ref_defaults_namespace_and_needs_names() {
        let manifest = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "web"}});
        let r = object_ref(&manifest, "team-a").expect("valid");
        assert_eq!(r.namespace, "team-a");
        assert_eq!(r.kind, "CloneSet");
        assert!(object_ref(&json!({"kind": "CloneSet"}), "x").is_none());
    }

    #[test]
    fn only_own_or_adoptable_objects_are_written() {
        let own = json!({"metadata": {"annotations": {WORK_ANNOTATION: "ns/w"}}});
        let other = json!({"metadata": {"annotations": {WORK_ANNOTATION: "ns/x"}}});
        let adoptable = json!({"metadata": {"annotations": {ADOPT_ANNOTATION: "true"}}});
        assert!(may_write(&own, "ns/w"));
        assert!(!may_write(&other, "ns/w"));
        assert!(!may_write(&json!({"metadata": {}}), "ns/w"));
        assert!(may_write(&adoptable, "ns/w"));
    }
}
