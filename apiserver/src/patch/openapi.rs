//! List strategies read from a structural OpenAPI v3 schema, as a CRD's
//! `openAPIV3Schema` carries them (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`).

use serde_json::Value;

use super::{ListStrategy, PatchSchema};

/// A [`PatchSchema`] backed by an OpenAPI v3 schema, for server-side apply on custom
/// resources: `map` lists merge by their first key, `set` lists merge as sets, everything else
/// is replaced. `metadata` follows ObjectMeta (finalizers as a set, ownerReferences by uid)
/// since CRD schemas do not describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenApiPatchSchema {
    root: Value,
}

impl OpenApiPatchSchema {
    /// Wraps a schema such as a CRD version's `schema.openAPIV3Schema`.
    pub fn new(root: Value) -> Self {
        Self { root }
    }

    /// The schema node describing `path` (object keys only; array items are transparent).
    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut node = &self.root;
        for key in path {
            node = items_of(node);
            node = node
                .get("properties")
                .and_then(|p| p.get(*key))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        }
        Some(node)
    }
}

/// An array schema's `items`, or the node itself.
fn items_of(node: &Value) -> &Value {
    if node.get("type").and_then(Value::as_str) == Some("array") {
        node.get("items").unwrap_or(node)
    } else {
        node
    }
}

impl PatchSchema for OpenApiPatchSchema {
    fn list_strategy(&self, path: &[&str]) -> ListStrategy {
        match path {
            ["metadata", "finalizers"] => return ListStrategy::MergePrimitives,
            ["metadata", "ownerReferences"] => return ListStrategy::MergeByKey("uid".into()),
            _ => {}
        }
        let Some(node) = self.node(path) else {
            return ListStrategy::Replace;
        };
        let text = |k: &str| node.get(k).and_then(Value::as_str);
        let patch_strategy = text("x-kubernetes-patch-strategy").unwrap_or("");
        if patch_strategy.split(',').any(|s| s == "merge") {
            return match text("x-kubernetes-patch-merge-key") {
                Some(key) => ListStrategy::MergeByKey(key.to_string()),
                None => ListStrategy::MergePrimitives,
            };
        }
        match text("x-kubernetes-list-type") {
            Some("set") => ListStrategy::MergePrimitives,
            Some("map") => node
                .get("x-kubernetes-list-map-keys")
                .and_then(|keys| keys.get(0))
                .and_then(Value::as_str)
                .map_or(ListStrategy::Replace, |k| {
                    ListStrategy::MergeByKey(k.into())
                }),
            _ => ListStrategy::Replace,
        }
    }

    fn retain_keys(&self, path: &[&str]) -> bool {
        self.node(path)
            .and_then(|n| n.get("x-kubernetes-patch-strategy"))
            .and_then(Value::as_str)
            .is_some_and(|s| s.split(',').any(|s| s == "retainKeys"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> OpenApiPatchSchema {
        OpenApiPatchSchema::new(json!({
            "type": "object",
            "properties": {
                "metadata": {"type": "object"},
                "spec": {"type": "object", "properties": {
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["port", "protocol"],
                              "items": {"type": "object", "properties": {
                                  "port": {"type": "integer"},
                                  "hosts": {"type": "array", "x-kubernetes-list-type": "set",
                                            "items": {"type": "string"}}}}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "args": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}},
                    "steps": {"type": "array", "x-kubernetes-patch-strategy": "merge,retainKeys",
                              "x-kubernetes-patch-merge-key": "id",
                              "items": {"type": "object"}},
                    "byName": {"type": "object", "additionalProperties": {
                        "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}
                }},
                "status": {"type": "object", "properties": {
                    "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}
                }}
            }
        }))
    }

    #[test]
    fn strategies_from_schema_extensions() {
        let by = |k: &str| ListStrategy::MergeByKey(k.into());
        let cases: Vec<(&[&str], ListStrategy)> = vec![
            (&["spec", "ports"], by("port")),
            (&["spec", "ports", "hosts"], ListStrategy::MergePrimitives),
            (&["spec", "tags"], ListStrategy::MergePrimitives),
            (&["spec", "args"], ListStrategy::Replace),
            (&["spec", "steps"], by("id")),
            (
                &["spec", "byName", "anything"],
                ListStrategy::MergePrimitives,
            ),
            (&["status", "conditions"], by("type")),
            (&["spec", "unknown"], ListStrategy::Replace),
            (&["metadata", "finalizers"], ListStrategy::MergePrimitives),
            (&["metadata", "ownerReferences"], by("uid")),
        ];
        let schema = schema();
        for (path, want) in cases {
            assert_eq!(schema.list_strategy(path), want, "{path:?}");
        }
        assert!(schema.retain_keys(&["spec", "steps"]));
        assert!(!schema.retain_keys(&["spec", "ports"]));
    }

    #[test]
    fn apply_with_a_crd_schema_merges_map_lists() {
        let live = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w", "finalizers": ["a"]},
                          "spec": {"ports": [{"port": 80, "name": "http"}], "args": ["x"]}});
        let body = br#"{"apiVersion":"x/v1","kind":"W","metadata":{"name":"w","finalizers":["b"]},
                        "spec":{"ports":[{"port":443}],"args":["y"]}}"#;
        let got = crate::patch::apply_patch(Some(&live), body, &schema()).expect("apply");
        assert_eq!(
            got,
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w", "finalizers": ["a", "b"]},
                   "spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443}], "args": ["y"]}})
        );
    }
}
