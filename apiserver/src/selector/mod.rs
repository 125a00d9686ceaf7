//! Label and field selectors as the list and watch query parameters `labelSelector` and
//! `fieldSelector` carry them, and as `metav1.LabelSelector` objects in workload specs.

mod field;
mod label;
mod validation;

pub use field::{FieldSelector, FieldTerm};
pub use label::{LabelSelector, Operator, Requirement};

use serde_json::Value;

/// The string form of a `metav1.LabelSelector` object, as `kubectl` and the Scale subresource's
/// `status.selector` show it: requirements sorted by key, e.g. `app=web,tier in (a,b)`.
pub fn label_selector_to_string(v: &Value) -> Result<String, String> {
    LabelSelector::from_label_selector_value(v).map(|s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_objects_print_like_kubernetes() {
        let cases: Vec<(Value, &str)> = vec![
            (json!({"matchLabels": {"app": "web"}}), "app=web"),
            (
                json!({"matchLabels": {"tier": "fe", "app": "web"}}),
                "app=web,tier=fe",
            ),
            (
                json!({"matchLabels": {"app": "web"},
                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["b", "a"]}]}),
                "app=web,tier in (a,b)",
            ),
            (
                json!({"matchExpressions": [
                    {"key": "z", "operator": "Exists"},
                    {"key": "gone", "operator": "DoesNotExist"},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]}]}),
                "env notin (prod),!gone,z",
            ),
            (json!({}), ""),
            (Value::Null, ""),
        ];
        for (v, want) in cases {
            assert_eq!(label_selector_to_string(&v).expect("valid"), want, "{v}");
        }
    }

    #[test]
    fn invalid_label_selector_objects() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}),
                "\"Like\" is not a valid label selector operator",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
                "values set can't be empty",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "values set must be empty",
            ),
            (
                json!({"matchLabels": {"a b": "x"}}),
                "name part must consist of",
            ),
            (json!({"matchLabels": {"a": 1}}), "must be a string"),
            (json!([1]), "must be an object"),
        ];
        for (v, want) in cases {
            let err = label_selector_to_string(&v).expect_err(&v.to_string());
            assert!(err.contains(want), "{v}: {err}");
        }
    }
}
