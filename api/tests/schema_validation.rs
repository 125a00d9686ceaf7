//! Examples validated against the generated CRD schemas, the way a schema-validating API server
//! would: wrong types and enum values are errors, and a field the schema does not know would be
//! pruned (reported here so that no example field silently disappears).

mod support;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kruise_api::{hub_crds, member_crds, Defaulted};
use serde_json::Value;

fn all_crds() -> &'static [CustomResourceDefinition] {
    static CRDS: std::sync::OnceLock<Vec<CustomResourceDefinition>> = std::sync::OnceLock::new();
    CRDS.get_or_init(|| {
        let mut crds = member_crds();
        crds.extend(hub_crds());
        crds
    })
}

/// The schema of the CRD version an object's apiVersion/kind names.
fn schema_for(obj: &Value) -> Value {
    let api_version = obj["apiVersion"].as_str().expect("apiVersion");
    let kind = obj["kind"].as_str().expect("kind");
    let (group, version) = api_version.split_once('/').expect("group/version");
    let crd = all_crds()
        .iter()
        .find(|c| c.spec.group == group && c.spec.names.kind == kind)
        .unwrap_or_else(|| panic!("no CRD for {api_version} {kind}"));
    let v = crd
        .spec
        .versions
        .iter()
        .find(|v| v.name == version)
        .expect("version served");
    serde_json::to_value(
        v.schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref()),
    )
    .expect("schema")
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Minimal structural-schema validation: types, enums, int-or-string, unknown fields.
fn check(schema: &Value, value: &Value, path: &str, errs: &mut Vec<String>) {
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            errs.push(format!("{path}: Invalid value: \"null\": must not be null"));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"] == Value::Bool(true) {
        if !matches!(type_name(value), "integer" | "string") {
            errs.push(format!(
                "{path}: Invalid value: must be an integer or a string"
            ));
        }
        return;
    }
    let expected = schema["type"].as_str().unwrap_or("");
    let actual = type_name(value);
    if !(expected == actual || (expected == "number" && actual == "integer")) {
        errs.push(format!(
            "{path}: Invalid value: \"{actual}\": {path} in body must be of type {expected}"
        ));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            let list: Vec<String> = options.iter().map(Value::to_string).collect();
            errs.push(format!(
                "{path}: Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ));
        }
    }
    let child = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true);
            let properties = schema["properties"].as_object();
            for (k, v) in map {
                if let Some(sub) = properties.and_then(|p| p.get(k)) {
                    check(sub, v, &child(k), errs);
                } else if let Some(additional) =
                    schema.get("additionalProperties").filter(|a| a.is_object())
                {
                    check(additional, v, &child(k), errs);
                } else if !preserve && path != "metadata" {
                    errs.push(format!(
                        "{}: field not declared in schema (would be pruned)",
                        child(k)
                    ));
                }
            }
            for r in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(r) {
                    errs.push(format!("{}: Required value", child(r)));
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(&schema["items"], item, &format!("{path}[{i}]"), errs);
            }
        }
        _ => {}
    }
}

fn schema_errors(obj: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(&schema_for(obj), obj, "", &mut errs);
    errs
}

const EXAMPLES: [&str; 18] = [
    "seed-cloneset.yaml",
    "seed-statefulset.yaml",
    "cloneset.yaml",
    "advanced-statefulset.yaml",
    "advanced-daemonset.yaml",
    "broadcastjob.yaml",
    "advancedcronjob.yaml",
    "sidecarset.yaml",
    "uniteddeployment.yaml",
    "workloadspread.yaml",
    "imagepulljob.yaml",
    "imagelistpulljob.yaml",
    "nodeimage.yaml",
    "containerrecreaterequest.yaml",
    "podunavailablebudget.yaml",
    "managedcluster.yaml",
    "work.yaml",
    "federated-uniteddeployment.yaml",
];

#[test]
fn every_example_passes_its_crd_schema_without_pruning() {
    for name in EXAMPLES {
        let errs = schema_errors(&support::example_value(name));
        assert!(errs.is_empty(), "{name}: {errs:#?}");
    }
}

#[test]
fn defaulted_objects_still_pass_their_crd_schema() {
    fn defaulted<T>(name: &str) -> Value
    where
        T: serde::de::DeserializeOwned + serde::Serialize + Defaulted,
    {
        let mut obj: T = serde_json::from_value(support::example_value(name)).expect("parses");
        obj.apply_defaults();
        serde_json::to_value(obj).expect("serializes")
    }
    use kruise_api::apps::{v1alpha1 as apps, v1beta1};
    let objects = [
        defaulted::<apps::CloneSet>("cloneset.yaml"),
        defaulted::<apps::StatefulSet>("seed-statefulset.yaml"),
        defaulted::<v1beta1::StatefulSet>("advanced-statefulset.yaml"),
        defaulted::<apps::DaemonSet>("advanced-daemonset.yaml"),
        defaulted::<apps::SidecarSet>("sidecarset.yaml"),
        defaulted::<apps::UnitedDeployment>("federated-uniteddeployment.yaml"),
        defaulted::<apps::AdvancedCronJob>("advancedcronjob.yaml"),
        defaulted::<apps::ImagePullJob>("imagepulljob.yaml"),
    ];
    for obj in &objects {
        let errs = schema_errors(obj);
        assert!(errs.is_empty(), "{}: {errs:#?}", obj["kind"]);
    }
}

#[test]
fn schema_rejects_an_unknown_cloneset_update_strategy_type() {
    let mut obj = support::example_value("seed-cloneset.yaml");
    support::set(
        &mut obj,
        "/spec/updateStrategy/type",
        Value::from("Sideways"),
    );
    assert_eq!(
        schema_errors(&obj),
        ["spec.updateStrategy.type: Unsupported value: \"Sideways\": supported values: \"ReCreate\", \"InPlaceIfPossible\", \"InPlaceOnly\""]
    );
}

#[test]
fn schema_rejects_wrong_types_and_reports_unknown_fields() {
    let mut obj = support::example_value("seed-statefulset.yaml");
    support::set(&mut obj, "/spec/replicas", Value::from("three"));
    support::set(&mut obj, "/spec/reserveOrdinals", serde_json::json!([1]));
    assert_eq!(
        schema_errors(&obj),
        [
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer",
            "spec.reserveOrdinals: field not declared in schema (would be pruned)",
        ]
    );
}
