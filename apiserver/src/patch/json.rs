//! RFC 6902 JSON patch with the semantics of the Go `evanphx/json-patch` library kube-apiserver
//! uses. The one difference that matters to clients: `test` against a missing member of an
//! existing object compares as `null`, which kube-runtime's finalizer helper relies on.

use json_patch::PatchOperation;
use serde_json::Value;

use super::PatchError;

/// The most operations kube-apiserver accepts in one JSON patch.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Applies a JSON patch body to `doc`, returning the patched copy; `doc` is never modified.
pub fn json_patch(doc: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let ops: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("invalid JSON patch: {e}")))?;
    let Value::Array(ops) = ops else {
        return Err(PatchError::Malformed(
            "a JSON patch must be an array of operations".to_string(),
        ));
    };
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    if let Some(i) = ops.iter().position(|op| !op.is_object()) {
        return Err(PatchError::Malformed(format!(
            "JSON patch operation {i} is not an object"
        )));
    }

    let mut out = doc.clone();
    for (i, raw) in ops.iter().enumerate() {
        let kind = raw.get("op").and_then(Value::as_str).unwrap_or("");
        if kind == "test" {
            test(&out, raw).map_err(|msg| PatchError::Failed(format!("operation {i}: {msg}")))?;
            continue;
        }
        // Like the Go library, an unknown or incomplete operation is an error of applying the
        // patch (422), not of decoding it.
        let op: PatchOperation = serde_json::from_value(raw.clone())
            .map_err(|e| PatchError::Failed(format!("operation {i} ({kind:?}): {e}")))?;
        json_patch::patch_unsafe(&mut out, std::slice::from_ref(&op))
            .map_err(|e| PatchError::Failed(format!("operation {i} ({kind}): {}", e.kind)))?;
    }
    Ok(out)
}

/// The Go `test` operation: the parent must exist; a missing member reads as `null`.
fn test(doc: &Value, raw: &Value) -> Result<(), String> {
    let path = raw
        .get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| "test: missing \"path\"".to_string())?;
    let expected = raw.get("value").unwrap_or(&Value::Null);
    let tokens = parse_pointer(path)?;
    let actual = match tokens.split_last() {
        None => Some(doc),
        Some((last, parents)) => {
            let mut parent = doc;
            for token in parents {
                parent = child(parent, token).ok_or_else(|| {
                    format!("test operation does not apply: is nil for path {path}")
                })?;
            }
            match parent {
                Value::Object(map) => map.get(last.as_str()),
                Value::Array(items) => {
                    let idx: usize = last
                        .parse()
                        .map_err(|_| format!("test: invalid array index {last:?} in {path}"))?;
                    Some(
                        items
                            .get(idx)
                            .ok_or_else(|| format!("test: index {idx} out of bounds in {path}"))?,
                    )
                }
                _ => return Err(format!("test operation does not apply: {path}")),
            }
        }
    };
    if go_equal(actual.unwrap_or(&Value::Null), expected) {
        Ok(())
    } else {
        Err(format!("testing value {path} failed: test failed"))
    }
}

/// JSON equality as Go sees it after decoding: every number is a float64, so `1 == 1.0`.
fn go_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| go_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| go_equal(v, w)))
        }
        _ => a == b,
    }
}

fn child<'a>(v: &'a Value, token: &str) -> Option<&'a Value> {
    match v {
        Value::Object(map) => map.get(token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens.
fn parse_pointer(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("JSON pointer {path:?} must start with '/'"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}},
               "spec": {"containers": [{"name": "c0", "image": "i0"}, {"name": "c1", "image": "i1"}]}})
    }

    #[test]
    fn applies_operations_with_go_semantics() {
        let cases: &[(&str, &str, Value)] = &[
            (
                "test missing finalizers as null, then add",
                r#"[{"op":"test","path":"/metadata/finalizers","value":null},
                    {"op":"add","path":"/metadata/finalizers","value":["x"]}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}, "finalizers": ["x"]},
                       "spec": {"containers": [{"name": "c0", "image": "i0"}, {"name": "c1", "image": "i1"}]}}),
            ),
            (
                "add at end with -",
                r#"[{"op":"add","path":"/spec/containers/-","value":{"name":"c2"}}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}},
                       "spec": {"containers": [{"name": "c0", "image": "i0"}, {"name": "c1", "image": "i1"}, {"name": "c2"}]}}),
            ),
            (
                "add at index == len",
                r#"[{"op":"add","path":"/spec/containers/2","value":{"name":"c2"}}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}},
                       "spec": {"containers": [{"name": "c0", "image": "i0"}, {"name": "c1", "image": "i1"}, {"name": "c2"}]}}),
            ),
            (
                "replace, remove and escaped key",
                r#"[{"op":"replace","path":"/spec/containers/0/image","value":"i9"},
                    {"op":"remove","path":"/metadata/labels/a~1b"},
                    {"op":"test","path":"/metadata/labels/app","value":"web"}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web"}},
                       "spec": {"containers": [{"name": "c0", "image": "i9"}, {"name": "c1", "image": "i1"}]}}),
            ),
            (
                "move and copy",
                r#"[{"op":"copy","from":"/metadata/name","path":"/metadata/generateName"},
                    {"op":"move","from":"/spec/containers/1","path":"/spec/containers/0"}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}, "generateName": "p"},
                       "spec": {"containers": [{"name": "c1", "image": "i1"}, {"name": "c0", "image": "i0"}]}}),
            ),
            (
                "test of an array element then remove it",
                r#"[{"op":"test","path":"/spec/containers/1/name","value":"c1"},
                    {"op":"remove","path":"/spec/containers/1"}]"#,
                json!({"metadata": {"name": "p", "labels": {"app": "web", "a/b": "x"}},
                       "spec": {"containers": [{"name": "c0", "image": "i0"}]}}),
            ),
            ("empty patch", "[]", pod()),
            (
                "test whole document",
                r#"[{"op":"test","path":"","value":{"a":1}}]"#,
                Value::Null,
            ),
            (
                "numbers compare as floats",
                r#"[{"op":"test","path":"/a","value":1.0}]"#,
                Value::Null,
            ),
        ];
        for (name, body, want) in cases {
            let doc = if want.is_null() {
                json!({"a": 1})
            } else {
                pod()
            };
            let expected = if want.is_null() {
                json!({"a": 1})
            } else {
                want.clone()
            };
            let got = json_patch(&doc, body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn failures_are_unprocessable() {
        let cases: &[(&str, &str)] = &[
            (
                "failed test",
                r#"[{"op":"test","path":"/metadata/name","value":"q"}]"#,
            ),
            (
                "test null on present value",
                r#"[{"op":"test","path":"/metadata/labels","value":null}]"#,
            ),
            (
                "test below a missing parent",
                r#"[{"op":"test","path":"/status/phase/x","value":null}]"#,
            ),
            (
                "test array index out of range",
                r#"[{"op":"test","path":"/spec/containers/5","value":null}]"#,
            ),
            (
                "remove missing",
                r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
            ),
            (
                "replace missing",
                r#"[{"op":"replace","path":"/status","value":{}}]"#,
            ),
            (
                "add past the end",
                r#"[{"op":"add","path":"/spec/containers/3","value":{}}]"#,
            ),
            (
                "add under a missing parent",
                r#"[{"op":"add","path":"/status/phase","value":"x"}]"#,
            ),
            ("unknown op", r#"[{"op":"frobnicate","path":"/a"}]"#),
            ("missing value", r#"[{"op":"add","path":"/a"}]"#),
        ];
        for (name, body) in cases {
            let err = json_patch(&pod(), body.as_bytes()).unwrap_err();
            assert!(matches!(err, PatchError::Failed(_)), "{name}: {err:?}");
            assert_eq!(err.status_code(), 422, "{name}");
        }
    }

    #[test]
    fn a_failed_operation_leaves_the_input_untouched() {
        let doc = pod();
        let body = r#"[{"op":"add","path":"/metadata/labels/new","value":"1"},
                       {"op":"test","path":"/metadata/name","value":"other"}]"#;
        assert!(json_patch(&doc, body.as_bytes()).is_err());
        assert_eq!(doc, pod());
    }

    #[test]
    fn malformed_bodies_are_bad_requests() {
        for body in ["{}", "not json", r#"["add"]"#, r#"{"op":"add"}"#] {
            let err = json_patch(&pod(), body.as_bytes()).unwrap_err();
            assert!(matches!(err, PatchError::Malformed(_)), "{body}: {err:?}");
        }
    }

    #[test]
    fn too_many_operations() {
        let op = json!({"op": "test", "path": "/metadata/name", "value": "p"});
        let at_limit = Value::Array(vec![op.clone(); MAX_JSON_PATCH_OPERATIONS]);
        let body = serde_json::to_vec(&at_limit).expect("serialise");
        assert_eq!(json_patch(&pod(), &body).expect("at the limit"), pod());
        let over = Value::Array(vec![op; MAX_JSON_PATCH_OPERATIONS + 1]);
        let body = serde_json::to_vec(&over).expect("serialise");
        assert_eq!(
            json_patch(&pod(), &body).unwrap_err(),
            PatchError::TooManyOperations(MAX_JSON_PATCH_OPERATIONS + 1)
        );
    }

    #[test]
    fn kube_runtime_finalizer_sequence() {
        // add the first finalizer, add a second one, then remove the first by index
        let doc = json!({"metadata": {"name": "x"}});
        let add_first = r#"[{"op":"test","path":"/metadata/finalizers","value":null},
                            {"op":"add","path":"/metadata/finalizers","value":["a"]}]"#;
        let doc = json_patch(&doc, add_first.as_bytes()).expect("first");
        let add_second = r#"[{"op":"test","path":"/metadata/finalizers","value":["a"]},
                             {"op":"add","path":"/metadata/finalizers/-","value":"b"}]"#;
        let doc = json_patch(&doc, add_second.as_bytes()).expect("second");
        assert_eq!(
            doc,
            json!({"metadata": {"name": "x", "finalizers": ["a", "b"]}})
        );
        let remove = r#"[{"op":"test","path":"/metadata/finalizers/0","value":"a"},
                         {"op":"remove","path":"/metadata/finalizers/0"}]"#;
        let doc = json_patch(&doc, remove.as_bytes()).expect("remove");
        assert_eq!(doc, json!({"metadata": {"name": "x", "finalizers": ["b"]}}));
        // the stale first patch now fails: finalizers are present
        assert!(matches!(
            json_patch(&doc, add_first.as_bytes()),
            Err(PatchError::Failed(_))
        ));
    }
}
