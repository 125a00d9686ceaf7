//! Server-side apply reduced to what kubectl and kube-rs need: create the object, or merge the
//! applied fields into the live object. Field ownership, conflicts and removal of fields a
//! manager stopped applying are not modelled.

use serde_json::{Map, Value};

use super::{ListStrategy, PatchError, PatchSchema};

/// Applies an apply-patch body (YAML or JSON) to the live object, or creates it from the body
/// when `live` is `None`. Lists with a merge key merge by key, scalar sets merge as sets, other
/// lists are replaced; `null` removes a field.
pub fn apply_patch(
    live: Option<&Value>,
    body: &[u8],
    schema: &dyn PatchSchema,
) -> Result<Value, PatchError> {
    let applied = parse_apply_body(body)?;
    let base = match live {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    let mut path = Vec::new();
    Ok(Value::Object(merge_map(base, applied, &mut path, schema)))
}

/// Parses the body as JSON (what kubectl and kube-rs send) or YAML, and checks that it names
/// its `apiVersion` and `kind`.
fn parse_apply_body(body: &[u8]) -> Result<Map<String, Value>, PatchError> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(_) => serde_yaml::from_slice(body)
            .map_err(|e| PatchError::Malformed(format!("error decoding YAML: {e}")))?,
    };
    let Value::Object(map) = value else {
        return Err(PatchError::Malformed(
            "an apply patch must be an object".to_string(),
        ));
    };
    for field in ["apiVersion", "kind"] {
        if map
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(PatchError::Malformed(format!(
                "Object '{}' is missing in the apply patch",
                if field == "kind" { "Kind" } else { field }
            )));
        }
    }
    Ok(map)
}

fn merge_map(
    mut live: Map<String, Value>,
    applied: Map<String, Value>,
    path: &mut Vec<String>,
    schema: &dyn PatchSchema,
) -> Map<String, Value> {
    for (key, value) in applied {
        if value.is_null() {
            live.shift_remove(&key);
            continue;
        }
        path.push(key.clone());
        let merged = match live.get_mut(&key) {
            Some(slot) => merge_value(Some(slot.take()), value, path, schema),
            None => merge_value(None, value, path, schema),
        };
        path.pop();
        live.insert(key, merged);
    }
    live
}

fn merge_value(
    live: Option<Value>,
    applied: Value,
    path: &mut Vec<String>,
    schema: &dyn PatchSchema,
) -> Value {
    match applied {
        Value::Object(a) => {
            let base = match live {
                Some(Value::Object(l)) => l,
                _ => Map::new(),
            };
            Value::Object(merge_map(base, a, path, schema))
        }
        Value::Array(a) => {
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            let strategy = schema.list_strategy(&refs);
            let live = match live {
                Some(Value::Array(l)) => l,
                _ => Vec::new(),
            };
            Value::Array(merge_list(live, a, &strategy, path, schema))
        }
        scalar => scalar,
    }
}

fn merge_list(
    live: Vec<Value>,
    applied: Vec<Value>,
    strategy: &ListStrategy,
    path: &mut Vec<String>,
    schema: &dyn PatchSchema,
) -> Vec<Value> {
    match strategy {
        ListStrategy::Replace => applied
            .into_iter()
            .map(|item| merge_value(None, item, path, schema))
            .collect(),
        ListStrategy::MergePrimitives => {
            let mut out = live;
            for item in applied {
                if !out.contains(&item) {
                    out.push(item);
                }
            }
            out
        }
        ListStrategy::MergeByKey(key) => {
            let mut out = live;
            for item in applied {
                let id = item.get(key.as_str()).cloned();
                let slot = id
                    .as_ref()
                    .and_then(|id| out.iter_mut().find(|l| l.get(key.as_str()) == Some(id)));
                match slot {
                    Some(slot) => {
                        let old = slot.take();
                        *slot = merge_value(Some(old), item, path, schema);
                    }
                    None => out.push(merge_value(None, item, path, schema)),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{BuiltinPatchSchema, NoMergeKeys};
    use serde_json::json;

    fn live() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "annotations": {"keep": "1"}, "finalizers": ["a"]},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "sidecar", "image": "side:1"}
            ], "tolerations": [{"key": "k1"}]}}},
            "status": {"replicas": 3}
        })
    }

    #[test]
    fn apply_merges_into_live_object() {
        let schema = BuiltinPatchSchema::new("Deployment", "apps");
        let cases: Vec<(&str, &str, Value)> = vec![
            (
                "kubectl-last-applied second apply keeps the spec",
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}}}"#,
                {
                    let mut v = live();
                    v["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = json!("{}");
                    v
                },
            ),
            (
                "containers merge by name, env by name, tolerations replaced",
                r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
                    "spec":{"template":{"spec":{"containers":[{"name":"app","image":"app:2","env":[{"name":"B","value":"2"}]}],
                    "tolerations":[{"key":"k2"}]}}}}"#,
                {
                    let mut v = live();
                    v["spec"]["template"]["spec"]["containers"][0] = json!(
                        {"name": "app", "image": "app:2", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]});
                    v["spec"]["template"]["spec"]["tolerations"] = json!([{"key": "k2"}]);
                    v
                },
            ),
            (
                "YAML body, finalizers merged as a set, null removes",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  finalizers: [a, b]\n  annotations:\n    keep: null\nspec:\n  replicas: 5\n",
                {
                    let mut v = live();
                    v["metadata"]["finalizers"] = json!(["a", "b"]);
                    v["metadata"]["annotations"] = json!({});
                    v["spec"]["replicas"] = json!(5);
                    v
                },
            ),
        ];
        for (name, body, want) in cases {
            let got = apply_patch(Some(&live()), body.as_bytes(), &schema)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn apply_creates_when_absent() {
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","labels":null},"data":{"a":"1"}}"#;
        let got = apply_patch(None, body, &NoMergeKeys).expect("create");
        assert_eq!(
            got,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
        );
    }

    #[test]
    fn custom_resources_replace_lists_on_apply() {
        let live = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
                          "spec": {"items": [{"name": "a", "v": 1}], "size": 1}});
        let body = br#"{"apiVersion":"x/v1","kind":"W","metadata":{"name":"w"},"spec":{"items":[{"name":"b"}]}}"#;
        let got = apply_patch(Some(&live), body, &NoMergeKeys).expect("apply");
        assert_eq!(got["spec"], json!({"items": [{"name": "b"}], "size": 1}));
    }

    #[test]
    fn applying_the_live_object_is_identity() {
        let schema = BuiltinPatchSchema::new("Deployment", "apps");
        let body = serde_json::to_vec(&live()).expect("serialise");
        assert_eq!(
            apply_patch(Some(&live()), &body, &schema).expect("apply"),
            live()
        );
    }

    #[test]
    fn malformed_apply_bodies() {
        let cases: &[&str] = &[
            r#"{"kind":"ConfigMap","metadata":{"name":"c"}}"#,
            r#"{"apiVersion":"v1","metadata":{"name":"c"}}"#,
            "- a\n- b\n",
            "key: [unclosed",
            "",
        ];
        for body in cases {
            let err = apply_patch(None, body.as_bytes(), &NoMergeKeys).unwrap_err();
            assert!(matches!(err, PatchError::Malformed(_)), "{body:?}: {err:?}");
        }
    }
}
