//! The manifest the demo applies to the hub (the federated UnitedDeployment example, or
//! `--manifest PATH`), applied document by document with server-side apply as
//! `kubectl apply --server-side` would, and the UnitedDeployment whose placement the demo follows.

use std::collections::BTreeMap;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{pinned_kind, Scope};
use kube::Client;
use serde_json::Value;

use super::DemoError;

/// The federated UnitedDeployment of the examples: 10 replicas over member-r1/r2/r3.
pub const FEDERATED_UNITED_DEPLOYMENT: &str =
    include_str!("../../../examples/federated-uniteddeployment.yaml");

/// The UnitedDeployment whose placement the demo waits for and shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub name: String,
    /// `spec.replicas` (1 when absent, as defaulted).
    pub replicas: i32,
    /// `spec.selector.matchLabels`: the pods of its subsets carry these labels.
    pub match_labels: BTreeMap<String, String>,
}

/// The documents of a YAML stream (empty documents skipped).
pub fn parse(source_name: &str, text: &str) -> Result<Vec<Value>, DemoError> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value: Value =
            serde::Deserialize::deserialize(doc).map_err(|e| DemoError::Manifest {
                source_name: source_name.into(),
                message: format!("document {}: {e}", i + 1),
            })?;
        if value.is_null() {
            continue;
        }
        for field in ["apiVersion", "kind"] {
            if value.get(field).and_then(Value::as_str).is_none() {
                return Err(DemoError::Manifest {
                    source_name: source_name.into(),
                    message: format!("document {} has no {field}", i + 1),
                });
            }
        }
        if value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(DemoError::Manifest {
                source_name: source_name.into(),
                message: format!("document {} has no metadata.name", i + 1),
            });
        }
        docs.push(value);
    }
    if docs.is_empty() {
        return Err(DemoError::Manifest {
            source_name: source_name.into(),
            message: "no objects".into(),
        });
    }
    Ok(docs)
}

/// The first UnitedDeployment among `docs`.
pub fn target(docs: &[Value]) -> Option<Target> {
    let ud = docs.iter().find(|d| {
        d["kind"] == "UnitedDeployment"
            && d["apiVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("apps.kruise.io/"))
    })?;
    let match_labels = ud
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Some(Target {
        namespace: ud
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string(),
        name: ud.pointer("/metadata/name")?.as_str()?.to_string(),
        replicas: ud
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .and_then(|r| i32::try_from(r).ok())
            .unwrap_or(1),
        match_labels,
    })
}

fn gvk_of(doc: &Value) -> GroupVersionKind {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, doc["kind"].as_str().unwrap_or_default())
}

/// Applies every document; returns `Kind namespace/name` for each.
pub async fn apply(client: &Client, docs: &[Value]) -> Result<Vec<String>, DemoError> {
    let params = PatchParams::apply("kruise-local-demo").force();
    let mut applied = Vec::new();
    for doc in docs {
        let gvk = gvk_of(doc);
        let (resource, caps) = pinned_kind(client, &gvk)
            .await
            .map_err(DemoError::api(format!(
                "finding {}/{} {} on the hub",
                gvk.group, gvk.version, gvk.kind
            )))?;
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (api, shown): (Api<DynamicObject>, String) = match caps.scope {
            Scope::Namespaced => {
                let ns = doc
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or("default");
                (
                    Api::namespaced_with(client.clone(), ns, &resource),
                    format!("{} {ns}/{name}", gvk.kind),
                )
            }
            Scope::Cluster => (
                Api::all_with(client.clone(), &resource),
                format!("{} {name}", gvk.kind),
            ),
        };
        api.patch(name, &params, &Patch::Apply(doc))
            .await
            .map_err(DemoError::api(format!("applying {shown} to the hub")))?;
        applied.push(shown);
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_example_targets_shop() {
        let docs = parse("example", FEDERATED_UNITED_DEPLOYMENT).expect("the example parses");
        let target = target(&docs).expect("a UnitedDeployment");
        assert_eq!(target.name, "shop");
        assert_eq!(target.namespace, "default");
        assert_eq!(target.replicas, 10);
        assert_eq!(
            target.match_labels,
            BTreeMap::from([("app".to_string(), "shop".to_string())])
        );
    }

    #[test]
    fn parse_rejects_objects_it_cannot_apply() {
        let err =
            parse("m.yaml", "kind: ConfigMap\nmetadata: {name: a}\n").expect_err("no apiVersion");
        assert!(
            err.to_string().contains("document 1 has no apiVersion"),
            "{err}"
        );
        let err = parse("m.yaml", "---\n---\n").expect_err("empty");
        assert!(err.to_string().contains("no objects"), "{err}");
        let err = parse("m.yaml", "apiVersion: v1\nkind: [").expect_err("bad yaml");
        assert!(
            err.to_string().starts_with("manifest m.yaml: document 1"),
            "{err}"
        );
        let docs = parse(
            "m.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: apps.kruise.io/v1alpha1\nkind: UnitedDeployment\nmetadata: {name: u, namespace: team}\nspec: {selector: {matchLabels: {app: u}}}\n",
        )
        .expect("two objects");
        assert_eq!(docs.len(), 2);
        let t = target(&docs).expect("the second document");
        assert_eq!(
            (t.namespace.as_str(), t.name.as_str(), t.replicas),
            ("team", "u", 1)
        );
        assert_eq!(gvk_of(&docs[0]).group, "");
        assert_eq!(gvk_of(&docs[0]).version, "v1");
    }
}
