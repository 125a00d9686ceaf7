//! The built-in resources served by every server, with upstream's names, short names,
//! categories and subresources.

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, batch::v1 as batch,
    coordination::v1 as coordination, core::v1 as core, events::v1 as events, policy::v1 as policy,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::{Printer, ResourceDescriptor, ScalePaths, SchemaSource, Subresources};

/// Verbs of an ordinary resource.
pub const STANDARD_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn schema_of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

struct Spec {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    all: bool,
    subresources: Subresources,
    generation: bool,
    schema: fn(&mut SchemaGenerator) -> Schema,
    fields: &'static [&'static str],
}

fn status() -> Subresources {
    Subresources {
        status: true,
        ..Subresources::default()
    }
}

fn scalable() -> Subresources {
    Subresources {
        status: true,
        scale: Some(ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        }),
        ..Subresources::default()
    }
}

fn none() -> Subresources {
    Subresources::default()
}

#[allow(clippy::too_many_arguments)]
fn spec(
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    all: bool,
    subresources: Subresources,
    generation: bool,
    schema: fn(&mut SchemaGenerator) -> Schema,
) -> Spec {
    Spec {
        group,
        kind,
        plural,
        namespaced,
        short_names,
        all,
        subresources,
        generation,
        schema,
        fields: &[],
    }
}

fn specs() -> Vec<Spec> {
    let mut pods = spec(
        "",
        "Pod",
        "pods",
        true,
        &["po"],
        true,
        status(),
        false,
        schema_of::<core::Pod>,
    );
    pods.subresources.eviction = true;
    pods.subresources.binding = true;
    pods.fields = &[
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ];
    let mut namespaces = spec(
        "",
        "Namespace",
        "namespaces",
        false,
        &["ns"],
        false,
        status(),
        false,
        schema_of::<core::Namespace>,
    );
    namespaces.subresources.finalize = true;
    namespaces.fields = &["status.phase"];
    let mut core_events = spec(
        "",
        "Event",
        "events",
        true,
        &["ev"],
        false,
        none(),
        false,
        schema_of::<core::Event>,
    );
    core_events.fields = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];
    let mut nodes = spec(
        "",
        "Node",
        "nodes",
        false,
        &["no"],
        false,
        status(),
        false,
        schema_of::<core::Node>,
    );
    nodes.fields = &["spec.unschedulable"];
    let mut secrets = spec(
        "",
        "Secret",
        "secrets",
        true,
        &[],
        false,
        none(),
        false,
        schema_of::<core::Secret>,
    );
    secrets.fields = &["type"];
    vec![
        namespaces,
        pods,
        nodes,
        spec(
            "",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            none(),
            false,
            schema_of::<core::ConfigMap>,
        ),
        secrets,
        spec(
            "",
            "Service",
            "services",
            true,
            &["svc"],
            true,
            status(),
            false,
            schema_of::<core::Service>,
        ),
        spec(
            "",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
            none(),
            false,
            schema_of::<core::ServiceAccount>,
        ),
        core_events,
        spec(
            "",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            false,
            status(),
            false,
            schema_of::<core::PersistentVolumeClaim>,
        ),
        spec(
            "",
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            false,
            status(),
            false,
            schema_of::<core::PersistentVolume>,
        ),
        spec(
            "",
            "Endpoints",
            "endpoints",
            true,
            &["ep"],
            false,
            none(),
            false,
            schema_of::<core::Endpoints>,
        ),
        spec(
            "apps",
            "ControllerRevision",
            "controllerrevisions",
            true,
            &[],
            false,
            none(),
            false,
            schema_of::<apps::ControllerRevision>,
        ),
        spec(
            "apps",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            scalable(),
            true,
            schema_of::<apps::Deployment>,
        ),
        spec(
            "apps",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            true,
            scalable(),
            true,
            schema_of::<apps::ReplicaSet>,
        ),
        spec(
            "apps",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            true,
            scalable(),
            true,
            schema_of::<apps::StatefulSet>,
        ),
        spec(
            "apps",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            true,
            status(),
            true,
            schema_of::<apps::DaemonSet>,
        ),
        spec(
            "batch",
            "Job",
            "jobs",
            true,
            &[],
            true,
            status(),
            true,
            schema_of::<batch::Job>,
        ),
        spec(
            "batch",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            true,
            status(),
            true,
            schema_of::<batch::CronJob>,
        ),
        spec(
            "coordination.k8s.io",
            "Lease",
            "leases",
            true,
            &[],
            false,
            none(),
            false,
            schema_of::<coordination::Lease>,
        ),
        spec(
            "policy",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            false,
            status(),
            true,
            schema_of::<policy::PodDisruptionBudget>,
        ),
        spec(
            "events.k8s.io",
            "Event",
            "events",
            true,
            &["ev"],
            false,
            none(),
            false,
            schema_of::<events::Event>,
        ),
        spec(
            "apiextensions.k8s.io",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            false,
            status(),
            true,
            schema_of::<apiextensions::CustomResourceDefinition>,
        ),
        spec(
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            false,
            &[],
            false,
            none(),
            true,
            schema_of::<admission::MutatingWebhookConfiguration>,
        ),
        spec(
            "admissionregistration.k8s.io",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            &[],
            false,
            none(),
            true,
            schema_of::<admission::ValidatingWebhookConfiguration>,
        ),
    ]
}

/// Descriptors of every built-in resource.
pub fn descriptors() -> Vec<ResourceDescriptor> {
    specs()
        .into_iter()
        .map(|s| ResourceDescriptor {
            group: s.group.to_string(),
            version: "v1".to_string(),
            kind: s.kind.to_string(),
            list_kind: format!("{}List", s.kind),
            plural: s.plural.to_string(),
            singular: s.kind.to_lowercase(),
            namespaced: s.namespaced,
            short_names: s.short_names.iter().map(|n| n.to_string()).collect(),
            categories: if s.all {
                vec!["all".to_string()]
            } else {
                Vec::new()
            },
            verbs: STANDARD_VERBS.iter().map(|v| v.to_string()).collect(),
            subresources: s.subresources,
            printer: Printer::Builtin,
            schema: SchemaSource::Builtin(s.schema),
            builtin: true,
            tracks_generation: s.generation,
            storage_version: "v1".to_string(),
            selectable_fields: s.fields.iter().map(|f| f.to_string()).collect(),
        })
        .chain(review_descriptors())
        .collect()
}

/// The create-only review resources (`kubectl auth can-i`, `kubectl auth whoami`).
fn review_descriptors() -> Vec<ResourceDescriptor> {
    let review = |group: &str,
                  kind: &str,
                  plural: &str,
                  schema: fn(&mut SchemaGenerator) -> Schema| ResourceDescriptor {
        group: group.to_string(),
        version: "v1".to_string(),
        kind: kind.to_string(),
        list_kind: format!("{kind}List"),
        plural: plural.to_string(),
        singular: kind.to_lowercase(),
        namespaced: false,
        short_names: Vec::new(),
        categories: Vec::new(),
        verbs: vec!["create".to_string()],
        subresources: Subresources::default(),
        printer: Printer::Builtin,
        schema: SchemaSource::Builtin(schema),
        builtin: true,
        tracks_generation: false,
        storage_version: "v1".to_string(),
        selectable_fields: Vec::new(),
    };
    vec![
        review(
            "authorization.k8s.io",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            schema_of::<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview>,
        ),
        review(
            "authentication.k8s.io",
            "SelfSubjectReview",
            "selfsubjectreviews",
            schema_of::<k8s_openapi::api::authentication::v1::SelfSubjectReview>,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployments_have_scale_and_short_name() {
        let all = descriptors();
        let deploy = all
            .iter()
            .find(|d| d.plural == "deployments")
            .expect("deployments served");
        assert_eq!(deploy.group, "apps");
        assert!(deploy.subresources.scale.is_some());
        assert_eq!(deploy.short_names, vec!["deploy"]);
        assert_eq!(deploy.categories, vec!["all"]);
        assert!(
            !all.iter()
                .find(|d| d.plural == "nodes")
                .expect("nodes")
                .namespaced
        );
    }
}
