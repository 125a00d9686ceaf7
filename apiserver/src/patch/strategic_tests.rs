use super::*;
use crate::patch::{merge_patch, BuiltinPatchSchema, NoMergeKeys};
use serde_json::json;

/// The field layout of apimachinery's own strategic-merge-patch test type `MergeItem`.
struct MergeItemSchema;

impl PatchSchema for MergeItemSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        match path.last() {
            Some(&"mergingList") | Some(&"retainKeysMergingList") => {
                ListStrategy::MergeByKey("name".into())
            }
            Some(&"mergingIntList") => ListStrategy::MergePrimitives,
            _ => ListStrategy::Replace,
        }
    }
}

/// A rejected-patch case: name, live object, patch and the expected error's shape.
type RejectCase = (&'static str, Value, Value, fn(&PatchError) -> bool);

fn smp(doc: &Value, patch: &Value, schema: &dyn PatchSchema) -> Result<Value, PatchError> {
    let body = serde_json::to_vec(patch).expect("serialise patch");
    strategic_merge_patch(doc, &body, schema)
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx", "image": "nginx:1.25",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]
                    }]
                }
            }
        }
    })
}

fn containers(doc: &Value) -> &Value {
    &doc["spec"]["template"]["spec"]["containers"]
}

#[test]
fn kubectl_set_image_keeps_env_and_ports() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let body = br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"image":"nginx:2","name":"nginx"}]}}}}"#;
    let got = strategic_merge_patch(&deployment(), body, &schema).expect("patch");
    let mut want = deployment();
    want["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    assert_eq!(got, want);
}

#[test]
fn kubectl_set_image_with_a_sidecar() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "sidecar", "image": "envoy:1", "args": ["-v"]}));
    let body = br#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],"containers":[{"image":"nginx:2","name":"nginx"}]}}}}"#;
    let got = strategic_merge_patch(&doc, body, &schema).expect("patch");
    assert_eq!(
        containers(&got),
        &json!([
            {"name": "nginx", "image": "nginx:2", "env": [{"name": "A", "value": "1"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "sidecar", "image": "envoy:1", "args": ["-v"]}
        ])
    );
}

#[test]
fn kubectl_apply_changing_one_env_var() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
    let body = br#"{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"nginx"}],"containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"name":"A","value":"2"}],"image":"nginx:1.26","name":"nginx"}]}}}}"#;
    let got = strategic_merge_patch(&doc, body, &schema).expect("patch");
    assert_eq!(
        containers(&got),
        &json!([{"name": "nginx", "image": "nginx:1.26", "env": [{"name": "A", "value": "2"}],
                 "ports": [{"containerPort": 80, "protocol": "TCP"}]}])
    );
    assert_eq!(
        got["metadata"]["annotations"],
        json!({"kubectl.kubernetes.io/last-applied-configuration": "{}"})
    );
    assert!(!serde_json::to_string(&got).expect("json").contains('$'));

    // the same body as a JSON merge patch loses the ports and stores the directives
    let naive = merge_patch(&doc, body).expect("merge patch");
    assert!(containers(&naive)[0].get("ports").is_none());
    assert!(containers(&naive)[0].get("$setElementOrder/env").is_some());
}

#[test]
fn kubectl_apply_adding_and_removing_containers() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "old", "image": "old:1"}));
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "remove a container: the deletion follows the order directive",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}],
                "containers": [{"name": "old", "$patch": "delete"}]}}}}),
            json!(["nginx"]),
        ),
        (
            "add a container between existing ones",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "nginx"}, {"name": "new"}, {"name": "old"}],
                "containers": [{"name": "new", "image": "new:1"}]}}}}),
            json!(["nginx", "new", "old"]),
        ),
        (
            "reorder only",
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "old"}, {"name": "nginx"}]}}}}),
            json!(["old", "nginx"]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = smp(&doc, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        let names: Vec<Value> = containers(&got)
            .as_array()
            .expect("containers")
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(Value::Array(names), want, "{name}");
        let nginx = containers(&got)
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == "nginx")
            .expect("nginx kept");
        assert_eq!(
            nginx["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}]),
            "{name}"
        );
    }
}

#[test]
fn apimachinery_cases() {
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "unique scalars when merging lists",
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]}),
            json!({"mergingIntList": [1, 2, 3]}),
        ),
        (
            "delete map from nested map",
            json!({"simpleMap": {"key1": 1, "key2": 1}}),
            json!({"simpleMap": {"$patch": "delete"}}),
            json!({"simpleMap": {}}),
        ),
        (
            "delete all items from merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]}),
            json!({"mergingList": []}),
        ),
        (
            "replace a merging list",
            json!({"mergingList": [{"name": 1, "value": "a"}, {"name": 2}]}),
            json!({"mergingList": [{"name": 3}, {"$patch": "replace"}]}),
            json!({"mergingList": [{"name": 3}]}),
        ),
        (
            "merge empty merging lists",
            json!({"mergingList": []}),
            json!({"mergingList": []}),
            json!({"mergingList": []}),
        ),
        (
            "delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"$patch": "replace"}),
            json!({}),
        ),
        (
            "add key and delete all keys from map",
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"}),
            json!({"other": "a"}),
        ),
        (
            "explicit merge directive in a map",
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "merge", "b": "2"}}),
            json!({"simpleMap": {"a": "1", "b": "2"}}),
        ),
        (
            "delete all duplicate entries in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"}, {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"}, {"name": 3, "$patch": "delete"}]}),
            json!({"mergingList": [{"name": 2, "value": "a"}]}),
        ),
        (
            "retainKeys drops unlisted live keys",
            json!({"retainKeysMap": {"name": "foo", "value": "a", "other": "x"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "value"], "value": "b"}}),
            json!({"retainKeysMap": {"name": "foo", "value": "b"}}),
        ),
        (
            "retainKeys map merges without the directive",
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null}}),
            json!({"retainKeysMap": {"name": "foo"}}),
        ),
        (
            "preserve the order from the patch in a merging list",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "other": "x"}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}, {"name": 2, "value": "b", "other": "x"}]}),
        ),
        (
            "preserve the order from the patch in a merging list 2",
            json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"}, {"name": 1, "value": "a"}]}),
        ),
        (
            "preserve the order from the patch in a merging int list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1, 2]}),
            json!({"mergingIntList": [3, 1, 2]}),
        ),
        (
            "preserve the order from the patch in a merging int list 2",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"mergingIntList": [3, 1]}),
            json!({"mergingIntList": [2, 3, 1]}),
        ),
        (
            "$setElementOrder names an item absent from the list",
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
        ),
        (
            "$setElementOrder alone reorders an int list",
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
            json!({"mergingIntList": [3, 1]}),
        ),
        (
            "$setElementOrder with deletions from a primitive list",
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 4],
                   "$deleteFromPrimitiveList/mergingIntList": [1, 2],
                   "mergingIntList": [4]}),
            json!({"mergingIntList": [3, 4]}),
        ),
        (
            "new item in a merging list goes before live-only items",
            json!({"mergingList": [{"name": "a"}, {"name": "b"}]}),
            json!({"mergingList": [{"name": "c"}]}),
            json!({"mergingList": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}),
        ),
        (
            "non-merging lists are replaced",
            json!({"nonMergingList": [{"name": 1}, {"name": 2}], "nonMergingIntList": [1, 2]}),
            json!({"nonMergingList": [{"name": 3}], "nonMergingIntList": [3]}),
            json!({"nonMergingList": [{"name": 3}], "nonMergingIntList": [3]}),
        ),
        (
            "null deletes a key and an unmatched null is not stored",
            json!({"name": "a", "value": "b"}),
            json!({"value": null, "other": null}),
            json!({"name": "a"}),
        ),
        (
            "directives inside a new value are applied, not stored",
            json!({"name": "a"}),
            json!({"simpleMap": {"$patch": "replace", "x": "1", "y": null},
                   "mergingList": [{"name": 1, "$setElementOrder/mergingList": [{"name": 2}],
                                    "mergingList": [{"name": 2}]},
                                   {"name": 9, "$patch": "delete"}]}),
            json!({"name": "a", "simpleMap": {"x": "1"},
                   "mergingList": [{"name": 1, "mergingList": [{"name": 2}]}]}),
        ),
        (
            "a value of another type replaces the live value",
            json!({"simpleMap": ["a"], "value": {"x": 1}}),
            json!({"simpleMap": {"k": "v"}, "value": "s"}),
            json!({"simpleMap": {"k": "v"}, "value": "s"}),
        ),
    ];
    for (name, doc, patch, want) in cases {
        let got = smp(&doc, &patch, &MergeItemSchema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn rejected_patches() {
    let cases: Vec<RejectCase> = vec![
        (
            "order in $setElementOrder and patch list differ",
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                   "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            |e| matches!(e, PatchError::Failed(m) if m.contains("doesn't match")),
        ),
        (
            "unknown $patch value in a map",
            json!({"simpleMap": {}}),
            json!({"simpleMap": {"$patch": "explode"}}),
            |e| matches!(e, PatchError::Malformed(_)),
        ),
        (
            "unknown $patch value in a list",
            json!({"mergingList": []}),
            json!({"mergingList": [{"name": 1, "$patch": "explode"}]}),
            |e| matches!(e, PatchError::Malformed(_)),
        ),
        (
            "patch element without the merge key",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"value": 1}]}),
            |e| matches!(e, PatchError::Failed(m) if m.contains("merge key")),
        ),
        (
            "delete directive without the merge key",
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "delete"}]}),
            |e| matches!(e, PatchError::Failed(_)),
        ),
        (
            "field set but not retained",
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}}),
            |e| matches!(e, PatchError::Malformed(_)),
        ),
        (
            "$retainKeys is not a list",
            json!({}),
            json!({"$retainKeys": "name"}),
            |e| matches!(e, PatchError::Malformed(_)),
        ),
        (
            "$deleteFromPrimitiveList is not a list",
            json!({"mergingIntList": [1]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": 1}),
            |e| matches!(e, PatchError::Malformed(_)),
        ),
        (
            "mixed element types in a merging list",
            json!({"mergingIntList": [1]}),
            json!({"mergingIntList": [{"name": 1}]}),
            |e| matches!(e, PatchError::Failed(_)),
        ),
    ];
    for (name, doc, patch, check) in cases {
        let err = smp(&doc, &patch, &MergeItemSchema).expect_err(name);
        assert!(check(&err), "{name}: {err:?}");
    }
    for body in ["[]", "nope", "1"] {
        let err = strategic_merge_patch(&json!({}), body.as_bytes(), &MergeItemSchema).unwrap_err();
        assert!(matches!(err, PatchError::Malformed(_)), "{body}");
    }
}

#[test]
fn builtin_workload_lists() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["metadata"]["finalizers"] = json!(["a", "b"]);
    let cases: Vec<(&str, Value, Value)> = vec![
        (
            "delete a container by name",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "$patch": "delete"}]}}}}),
            json!([]),
        ),
        (
            "add an env var to an existing container",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "env": [{"name": "B", "value": "2"}]}]}}}}),
            json!([{"name": "nginx", "image": "nginx:1.25",
                    "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
        ),
        (
            "remove a port by containerPort",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "nginx", "ports": [{"containerPort": 80, "$patch": "delete"}]}]}}}}),
            json!([{"name": "nginx", "image": "nginx:1.25", "env": [{"name": "A", "value": "1"}], "ports": []}]),
        ),
    ];
    for (name, patch, want) in cases {
        let got = smp(&doc, &patch, &schema).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(containers(&got), &want, "{name}");
    }

    let finalizer_cases: Vec<(Value, Value)> = vec![
        (
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!(["a", "b", "c"]),
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            json!(["b"]),
        ),
        (json!({"metadata": {"finalizers": null}}), Value::Null),
    ];
    for (patch, want) in finalizer_cases {
        let got = smp(&doc, &patch, &schema).expect("finalizer patch");
        assert_eq!(got["metadata"]["finalizers"], want, "{patch}");
    }
}

#[test]
fn deployment_strategy_retain_keys() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}});
    let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
    let got = smp(&doc, &patch, &schema).expect("patch");
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn custom_resources_replace_lists() {
    let doc =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "y"}]}}}});
    let got = smp(&doc, &patch, &NoMergeKeys).expect("patch");
    assert_eq!(got, patch);
}

#[test]
fn patching_a_document_with_itself_is_identity() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    let mut doc = deployment();
    doc["metadata"]["finalizers"] = json!(["x", "y"]);
    doc["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .expect("containers")
        .push(json!({"name": "b", "env": [{"name": "Z"}, {"name": "Y"}]}));
    assert_eq!(smp(&doc, &doc, &schema).expect("self patch"), doc);
    let item = json!({"mergingList": [{"name": 2}, {"name": 1}], "mergingIntList": [3, 1, 2]});
    assert_eq!(
        smp(&item, &item, &MergeItemSchema).expect("self patch"),
        item
    );
}

#[test]
fn empty_patch_is_identity() {
    let schema = BuiltinPatchSchema::new("Deployment", "apps");
    assert_eq!(
        strategic_merge_patch(&deployment(), b"{}", &schema).expect("patch"),
        deployment()
    );
}
