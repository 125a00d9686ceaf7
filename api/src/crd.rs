//! CustomResourceDefinitions generated from the types, and their YAML files.
//!
//! Member clusters get every Kruise kind; the hub gets the federation kinds plus the workloads it
//! places (UnitedDeployment, WorkloadSpread, CloneSet, Advanced StatefulSet).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::crd::merge_crds;
use kube::CustomResourceExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use crate::apps::{v1alpha1 as apps, v1beta1};
use crate::federation::v1alpha1 as federation;
use crate::policy::v1alpha1 as policy;

/// Directory (under the charts root) of the member-cluster CRDs.
pub const MEMBER_CRD_DIR: &str = "kruise-agent/crds";
/// Directory (under the charts root) of the hub CRDs.
pub const HUB_CRD_DIR: &str = "kruise-hub/crds";

/// Errors from generating or writing CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Two versions of one kind could not be merged into one CRD.
    #[error("merging the versions of {kind}: {source}")]
    Merge {
        /// The kind being merged.
        kind: &'static str,
        /// Why kube refused the merge.
        #[source]
        source: kube::core::crd::MergeError,
    },
    /// A CRD could not be rendered as YAML.
    #[error("rendering {name} as YAML: {source}")]
    Render {
        /// CRD name.
        name: String,
        /// The serializer error.
        #[source]
        source: serde_yaml::Error,
    },
    /// A file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The Advanced StatefulSet CRD: v1alpha1 (served) and v1beta1 (served, storage), no conversion webhook.
pub fn statefulset_crd() -> Result<CustomResourceDefinition, CrdError> {
    let mut crd = merge_crds(
        vec![apps::StatefulSet::crd(), v1beta1::StatefulSet::crd()],
        "v1beta1",
    )
    .map_err(|source| CrdError::Merge {
        kind: "StatefulSet",
        source,
    })?;
    // Upstream lists versions oldest first; the order has no effect on version priority.
    crd.spec.versions.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(normalize(crd))
}

/// CRDs installed in a member cluster: all Kruise kinds.
pub fn member_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        apps::CloneSet::crd(),
        apps::DaemonSet::crd(),
        apps::BroadcastJob::crd(),
        apps::AdvancedCronJob::crd(),
        apps::SidecarSet::crd(),
        apps::UnitedDeployment::crd(),
        apps::WorkloadSpread::crd(),
        apps::ImagePullJob::crd(),
        apps::ImageListPullJob::crd(),
        apps::NodeImage::crd(),
        apps::ContainerRecreateRequest::crd(),
        policy::PodUnavailableBudget::crd(),
    ]
    .into_iter()
    .map(normalize)
    .collect::<Vec<_>>();
    crds.push(sts_or_panic_free());
    crds.sort_by(|a, b| crd_name(a).cmp(crd_name(b)));
    crds
}

/// CRDs installed on the hub: federation kinds plus the workloads the hub places.
pub fn hub_crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        federation::ManagedCluster::crd(),
        federation::Work::crd(),
        apps::UnitedDeployment::crd(),
        apps::WorkloadSpread::crd(),
        apps::CloneSet::crd(),
    ]
    .into_iter()
    .map(normalize)
    .collect::<Vec<_>>();
    crds.push(sts_or_panic_free());
    crds.sort_by(|a, b| crd_name(a).cmp(crd_name(b)));
    crds
}

/// The two StatefulSet versions always share names and scope, so the merge cannot fail; should a
/// future edit break that, fall back to the storage version alone rather than panic.
fn sts_or_panic_free() -> CustomResourceDefinition {
    statefulset_crd().unwrap_or_else(|_| normalize(v1beta1::StatefulSet::crd()))
}

fn crd_name(crd: &CustomResourceDefinition) -> &str {
    crd.metadata.name.as_deref().unwrap_or_default()
}

/// File name of a CRD, as controller-gen names them: `<group>_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Renders one CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    serde_yaml::to_string(crd).map_err(|source| CrdError::Render {
        name: crd_name(crd).to_string(),
        source,
    })
}

/// Every CRD file: (path relative to the charts root, contents).
pub fn rendered_files() -> Result<Vec<(PathBuf, String)>, CrdError> {
    let mut files = Vec::new();
    for (dir, crds) in [(MEMBER_CRD_DIR, member_crds()), (HUB_CRD_DIR, hub_crds())] {
        for crd in crds {
            files.push((Path::new(dir).join(file_name(&crd)), to_yaml(&crd)?));
        }
    }
    Ok(files)
}

/// Writes every CRD file under `charts_root`, returning the paths written.
pub fn write_all(charts_root: &Path) -> Result<Vec<PathBuf>, CrdError> {
    let mut written = Vec::new();
    for (relative, contents) in rendered_files()? {
        let path = charts_root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CrdError::Write {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, contents).map_err(|source| CrdError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// Makes every version's schema look like upstream's: IntOrString as `anyOf` integer/string,
/// no serde-derived `default`s (defaults belong to the webhook), and a readable root description.
fn normalize(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(validation) = version.schema.as_mut() else {
            continue;
        };
        let Some(schema) = validation.open_api_v3_schema.take() else {
            continue;
        };
        let Ok(mut value) = serde_json::to_value(&schema) else {
            validation.open_api_v3_schema = Some(schema);
            continue;
        };
        normalize_node(&mut value);
        add_type_meta(&mut value);
        validation.open_api_v3_schema = Some(serde_json::from_value(value).unwrap_or(schema));
    }
    crd
}

fn normalize_node(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    obj.remove("default");
    if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
        && !obj.contains_key("anyOf")
    {
        obj.insert(
            "anyOf".into(),
            json!([{ "type": "integer" }, { "type": "string" }]),
        );
    }
    if let Some(props) = obj.get_mut("properties").and_then(Value::as_object_mut) {
        for child in props.values_mut() {
            normalize_node(child);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child) = obj.get_mut(key) {
            normalize_node(child);
        }
    }
}

/// Declares `apiVersion`, `kind` and `metadata` at the root, as controller-gen does, so that
/// `kubectl explain` lists them.
fn add_type_meta(root: &mut Value) {
    let Some(props) = root.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let fields = [
        (
            "apiVersion",
            json!({
                "description": "APIVersion defines the versioned schema of this representation of an object.",
                "type": "string",
            }),
        ),
        (
            "kind",
            json!({
                "description": "Kind is a string value representing the REST resource this object represents.",
                "type": "string",
            }),
        ),
        ("metadata", json!({ "type": "object" })),
    ];
    for (name, schema) in fields {
        props.entry(name).or_insert(schema);
    }
}
