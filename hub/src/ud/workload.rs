//! The subset workload a Work carries: the UnitedDeployment template as a CloneSet, Advanced
//! StatefulSet, apps/v1 StatefulSet or Deployment, named `{ud}-{subset}`, with the subset's
//! node requirements, tolerations and patch applied to the pod template.
//!
//! Upstream names subset workloads `<ud>-<subset>-<random>`; the hub uses the stable
//! `{ud}-{subset}` so the workload in each member keeps its identity (and its pods) across
//! updates, failovers and hub restarts.

use kruise_api::apps::v1alpha1::uniteddeployment::{Subset, SubsetTemplate};
use kruise_apiserver::patch::{strategic_merge_patch, BuiltinPatchSchema};
use serde_json::{json, Map, Value};

use crate::ring::fnv1a64;

/// Label naming the subset on Works, subset workloads and their pods.
pub const SUBSET_LABEL: &str = "apps.kruise.io/subset-name";
/// Label holding the UnitedDeployment revision a Work's template belongs to.
pub const REVISION_LABEL: &str = "apps.kruise.io/controller-revision-hash";
/// Annotation carrying the subset patch on subset workloads (as upstream).
pub const SUBSET_PATCH_ANNOTATION: &str = "apps.kruise.io/subset-patch";

/// A template that cannot be turned into a subset workload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// None or several of the four templates are set.
    #[error("exactly one of statefulSetTemplate, advancedStatefulSetTemplate, cloneSetTemplate and deploymentTemplate must be set (found {0})")]
    NotExactlyOne(usize),
    /// The template does not serialise to an object.
    #[error("the {kind} template is not an object: {message}")]
    Serialise { kind: &'static str, message: String },
    /// The subset patch cannot be applied.
    #[error("subset {subset}: patch cannot be applied to the pod template: {message}")]
    Patch { subset: String, message: String },
}

/// Which kind the subset workloads are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// `apps.kruise.io/v1alpha1` CloneSet.
    CloneSet,
    /// `apps.kruise.io/v1beta1` StatefulSet.
    AdvancedStatefulSet,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` Deployment.
    Deployment,
}

impl WorkloadKind {
    /// `(apiVersion, kind)`.
    pub fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            WorkloadKind::CloneSet => ("apps.kruise.io/v1alpha1", "CloneSet"),
            WorkloadKind::AdvancedStatefulSet => ("apps.kruise.io/v1beta1", "StatefulSet"),
            WorkloadKind::StatefulSet => ("apps/v1", "StatefulSet"),
            WorkloadKind::Deployment => ("apps/v1", "Deployment"),
        }
    }

    /// Whether the kind honours a partition.
    pub fn supports_partition(self) -> bool {
        !matches!(self, WorkloadKind::Deployment)
    }
}

/// The chosen template: kind, metadata and spec as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Kind of the subset workloads.
    pub kind: WorkloadKind,
    /// Template metadata (labels, annotations).
    pub metadata: Value,
    /// Template spec.
    pub spec: Value,
}

fn to_value<T: serde::Serialize>(v: &T, kind: &'static str) -> Result<Value, TemplateError> {
    serde_json::to_value(v).map_err(|e| TemplateError::Serialise {
        kind,
        message: e.to_string(),
    })
}

/// The single template set on `template`.
pub fn template(template: &SubsetTemplate) -> Result<Template, TemplateError> {
    let mut found = Vec::new();
    if let Some(t) = &template.clone_set_template {
        found.push((
            WorkloadKind::CloneSet,
            to_value(&t.metadata, "cloneSet")?,
            to_value(&t.spec, "cloneSet")?,
        ));
    }
    if let Some(t) = &template.advanced_stateful_set_template {
        found.push((
            WorkloadKind::AdvancedStatefulSet,
            to_value(&t.metadata, "advancedStatefulSet")?,
            to_value(&t.spec, "advancedStatefulSet")?,
        ));
    }
    if let Some(t) = &template.stateful_set_template {
        found.push((
            WorkloadKind::StatefulSet,
            to_value(&t.metadata, "statefulSet")?,
            to_value(&t.spec, "statefulSet")?,
        ));
    }
    if let Some(t) = &template.deployment_template {
        found.push((
            WorkloadKind::Deployment,
            to_value(&t.metadata, "deployment")?,
            to_value(&t.spec, "deployment")?,
        ));
    }
    if found.len() != 1 {
        return Err(TemplateError::NotExactlyOne(found.len()));
    }
    let (kind, metadata, spec) = found.remove(0);
    Ok(Template {
        kind,
        metadata: if metadata.is_object() {
            metadata
        } else {
            json!({})
        },
        spec,
    })
}

fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The revision of a template: `{ud}-{hash}`, a hash of the template with sorted keys, so it
/// changes exactly when the template does (like upstream's ControllerRevision names).
pub fn revision(ud: &str, template: &SubsetTemplate) -> String {
    let value = serde_json::to_value(template).unwrap_or(Value::Null);
    let text = canonical(&value).to_string();
    let hash = format!("{:016x}", fnv1a64(text.as_bytes()));
    format!("{ud}-{}", &hash[..10])
}

/// The name of the subset workload of `subset` in every member cluster.
pub fn workload_name(ud: &str, subset: &str) -> String {
    format!("{ud}-{subset}")
}

/// Appends `subset.nodeSelectorTerm.matchExpressions` to every required node-affinity term of
/// `pod_spec` (creating one term when there is none) and `subset.tolerations` to its tolerations.
fn apply_node_constraints(pod_spec: &mut Value, subset: &Subset) {
    if !pod_spec.is_object() {
        *pod_spec = json!({});
    }
    if let Some(term) = &subset.node_selector_term {
        let exprs = term
            .match_expressions
            .as_ref()
            .map(|e| serde_json::to_value(e).unwrap_or(json!([])))
            .unwrap_or(json!([]));
        let add = exprs.as_array().cloned().unwrap_or_default();
        if !add.is_empty() {
            let required = &mut pod_spec["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"];
            if !required.is_object() {
                *required = json!({});
            }
            let terms = &mut required["nodeSelectorTerms"];
            match terms.as_array_mut() {
                Some(list) if !list.is_empty() => {
                    for t in list {
                        match t["matchExpressions"].as_array_mut() {
                            Some(existing) => existing.extend(add.iter().cloned()),
                            None => t["matchExpressions"] = Value::Array(add.clone()),
                        }
                    }
                }
                _ => *terms = json!([{"matchExpressions": add}]),
            }
        }
    }
    if let Some(tolerations) = &subset.tolerations {
        let add = serde_json::to_value(tolerations).unwrap_or(json!([]));
        let add = add.as_array().cloned().unwrap_or_default();
        match pod_spec["tolerations"].as_array_mut() {
            Some(existing) => existing.extend(add),
            None if !add.is_empty() => pod_spec["tolerations"] = Value::Array(add),
            None => {}
        }
    }
}

fn merge_labels(target: &mut Value, labels: &Map<String, Value>) {
    if !target.is_object() {
        *target = json!({});
    }
    for (k, v) in labels {
        target[k.as_str()] = v.clone();
    }
}

/// Everything a subset workload is built from.
pub struct WorkloadInput<'a> {
    /// UnitedDeployment name.
    pub ud: &'a str,
    /// UnitedDeployment namespace (the workload's namespace in the member).
    pub namespace: &'a str,
    /// `spec.selector.matchLabels` of the UnitedDeployment.
    pub selector_labels: &'a Map<String, Value>,
    /// The template.
    pub template: &'a Template,
    /// Revision of the template.
    pub revision: &'a str,
    /// The subset.
    pub subset: &'a Subset,
    /// Replicas in this cluster.
    pub replicas: i32,
    /// Pods kept on the old revision in this cluster, when the kind supports it.
    pub partition: Option<i32>,
}

/// Builds the subset workload manifest.
pub fn build(input: &WorkloadInput<'_>) -> Result<Value, TemplateError> {
    let (api_version, kind) = input.template.kind.type_meta();
    let subset_label = {
        let mut m = input.selector_labels.clone();
        m.insert(SUBSET_LABEL.into(), json!(input.subset.name));
        m
    };
    let mut metadata = json!({
        "name": workload_name(input.ud, &input.subset.name),
        "namespace": input.namespace,
        "labels": input.template.metadata.get("labels").cloned().unwrap_or(json!({})),
        "annotations": input.template.metadata.get("annotations").cloned().unwrap_or(json!({})),
    });
    merge_labels(&mut metadata["labels"], &subset_label);
    metadata["labels"][REVISION_LABEL] = json!(input.revision);
    if let Some(patch) = &input.subset.patch {
        metadata["annotations"][SUBSET_PATCH_ANNOTATION] = json!(patch.to_string());
    }
    if metadata["annotations"]
        .as_object()
        .is_some_and(|m| m.is_empty())
    {
        if let Some(m) = metadata.as_object_mut() {
            m.remove("annotations");
        }
    }
    let mut spec = input.template.spec.clone();
    if !spec.is_object() {
        spec = json!({});
    }
    spec["replicas"] = json!(input.replicas);
    merge_labels(&mut spec["selector"]["matchLabels"], &subset_label);
    merge_labels(&mut spec["template"]["metadata"]["labels"], &subset_label);
    apply_node_constraints(&mut spec["template"]["spec"], input.subset);
    if let Some(patch) = &input.subset.patch {
        let doc = json!({"template": spec["template"].clone()});
        let body = json!({"template": patch}).to_string();
        let schema = BuiltinPatchSchema::new("PodTemplate", "");
        let patched = strategic_merge_patch(&doc, body.as_bytes(), &schema).map_err(|e| {
            TemplateError::Patch {
                subset: input.subset.name.clone(),
                message: e.to_string(),
            }
        })?;
        spec["template"] = patched["template"].clone();
    }
    set_partition(&mut spec, input.template.kind, input.partition);
    Ok(json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": metadata,
        "spec": spec,
    }))
}

/// Sets (or clears) the partition of a workload spec of `kind`.
pub fn set_partition(spec: &mut Value, kind: WorkloadKind, partition: Option<i32>) {
    match kind {
        WorkloadKind::CloneSet => {
            if let Some(p) = partition {
                spec["updateStrategy"]["partition"] = json!(p);
            } else if let Some(s) = spec
                .get_mut("updateStrategy")
                .and_then(Value::as_object_mut)
            {
                s.remove("partition");
            }
        }
        WorkloadKind::AdvancedStatefulSet | WorkloadKind::StatefulSet => {
            if let Some(p) = partition {
                if spec["updateStrategy"]["type"].is_null() {
                    spec["updateStrategy"]["type"] = json!("RollingUpdate");
                }
                spec["updateStrategy"]["rollingUpdate"]["partition"] = json!(p);
            } else if let Some(r) = spec
                .pointer_mut("/updateStrategy/rollingUpdate")
                .and_then(Value::as_object_mut)
            {
                r.remove("partition");
            }
        }
        WorkloadKind::Deployment => {}
    }
}

/// The kind of an existing manifest.
pub fn kind_of(manifest: &Value) -> Option<WorkloadKind> {
    match (
        manifest.get("apiVersion").and_then(Value::as_str),
        manifest.get("kind").and_then(Value::as_str),
    ) {
        (Some("apps.kruise.io/v1alpha1"), Some("CloneSet")) => Some(WorkloadKind::CloneSet),
        (Some("apps.kruise.io/v1beta1"), Some("StatefulSet")) => {
            Some(WorkloadKind::AdvancedStatefulSet)
        }
        (Some("apps/v1"), Some("StatefulSet")) => Some(WorkloadKind::StatefulSet),
        (Some("apps/v1"), Some("Deployment")) => Some(WorkloadKind::Deployment),
        _ => None,
    }
}

/// An existing manifest held on its old template with new replicas and partition.
pub fn rescale(manifest: &Value, replicas: i32, partition: Option<i32>) -> Value {
    let mut next = manifest.clone();
    next["spec"]["replicas"] = json!(replicas);
    if let Some(kind) = kind_of(manifest) {
        set_partition(&mut next["spec"], kind, partition);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm, Toleration};
    use kruise_api::apps::v1alpha1::uniteddeployment::CloneSetTemplateSpec;

    fn cloneset_template(image: &str) -> SubsetTemplate {
        let spec = serde_json::from_value(json!({
            "selector": {"matchLabels": {"app": "shop"}},
            "template": {"metadata": {"labels": {"app": "shop"}},
                "spec": {"containers": [{"name": "shop", "image": image,
                    "env": [{"name": "A", "value": "1"}]}]}},
            "updateStrategy": {"type": "InPlaceIfPossible"}
        }))
        .expect("cloneset spec");
        SubsetTemplate {
            clone_set_template: Some(CloneSetTemplateSpec {
                metadata: None,
                spec,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn builds_a_patched_cloneset_with_stable_name_and_labels() {
        let t = template(&cloneset_template("shop:1")).expect("template");
        let subset = Subset {
            name: "r1".into(),
            node_selector_term: Some(NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: "zone".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into()]),
                }]),
                match_fields: None,
            }),
            tolerations: Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            }]),
            patch: Some(json!({"spec": {"containers": [{"name": "shop",
                "env": [{"name": "REGION", "value": "r1"}]}]}})),
            ..Default::default()
        };
        let selector = json!({"app": "shop"});
        let w = build(&WorkloadInput {
            ud: "shop",
            namespace: "default",
            selector_labels: selector.as_object().expect("map"),
            template: &t,
            revision: "shop-abc",
            subset: &subset,
            replicas: 5,
            partition: Some(2),
        })
        .expect("build");
        assert_eq!(w["kind"], "CloneSet");
        assert_eq!(w["metadata"]["name"], "shop-r1");
        assert_eq!(w["metadata"]["labels"][SUBSET_LABEL], "r1");
        assert_eq!(w["metadata"]["labels"][REVISION_LABEL], "shop-abc");
        assert_eq!(w["spec"]["replicas"], 5);
        assert_eq!(w["spec"]["updateStrategy"]["partition"], 2);
        assert_eq!(w["spec"]["selector"]["matchLabels"][SUBSET_LABEL], "r1");
        let pod = &w["spec"]["template"];
        assert_eq!(pod["metadata"]["labels"][SUBSET_LABEL], "r1");
        assert_eq!(
            pod["spec"]["affinity"]["nodeAffinity"]
                ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
                ["matchExpressions"][0]["key"],
            "zone"
        );
        assert_eq!(pod["spec"]["tolerations"][0]["key"], "dedicated");
        let env = pod["spec"]["containers"][0]["env"].as_array().expect("env");
        assert_eq!(env.len(), 2, "the patch merges env by name: {env:?}");
        assert_eq!(pod["spec"]["containers"][0]["image"], "shop:1");
        assert!(w["metadata"]["annotations"][SUBSET_PATCH_ANNOTATION].is_string());
    }

    #[test]
    fn revision_changes_with_the_template_only() {
        let a = revision("shop", &cloneset_template("shop:1"));
        assert_eq!(a, revision("shop", &cloneset_template("shop:1")));
        assert_ne!(a, revision("shop", &cloneset_template("shop:2")));
        assert!(a.starts_with("shop-"));
    }

    #[test]
    fn exactly_one_template() {
        assert_eq!(
            template(&SubsetTemplate::default()),
            Err(TemplateError::NotExactlyOne(0))
        );
    }

    #[test]
    fn rescale_keeps_the_old_template() {
        let old = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "old"}]}}}});
        let next = rescale(&old, 4, Some(1));
        assert_eq!(next["spec"]["replicas"], 4);
        assert_eq!(
            next["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
            1
        );
        assert_eq!(next["spec"]["template"], old["spec"]["template"]);
    }
}
