//! The four PATCH content types of the Kubernetes API: JSON patch (RFC 6902 with the Go
//! `evanphx/json-patch` semantics kube-apiserver uses), JSON merge patch (RFC 7386), strategic
//! merge patch (merge keys and `$`-directives for built-in kinds) and a merge-based server-side
//! apply. Everything here is pure: documents in, documents out.

mod apply;
mod json;
mod openapi;
#[cfg(test)]
mod property_tests;
mod schema;
mod strategic;

use serde_json::Value;

pub use apply::apply_patch;
pub use json::{json_patch, MAX_JSON_PATCH_OPERATIONS};
pub use openapi::OpenApiPatchSchema;
pub use schema::{BuiltinPatchSchema, ListStrategy, NoMergeKeys, PatchSchema};
pub use strategic::strategic_merge_patch;

/// The patch flavour selected by a PATCH request's `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl PatchType {
    /// Maps a `Content-Type` header value (parameters such as `charset` ignored) to a patch type.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::StrategicMerge),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }

    /// The canonical `Content-Type` of this patch type.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied; each variant maps to one HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not a valid patch document (HTTP 400 `BadRequest`).
    #[error("malformed patch: {0}")]
    Malformed(String),
    /// A valid patch that cannot be applied to this object, e.g. a failed `test` or a missing
    /// path for `remove` (HTTP 422 `Invalid`).
    #[error("patch cannot be applied: {0}")]
    Failed(String),
    /// A JSON patch with more operations than the server accepts (HTTP 413).
    #[error("the allowed maximum operations in a JSON patch is {max}, got {0}", max = MAX_JSON_PATCH_OPERATIONS)]
    TooManyOperations(usize),
}

impl PatchError {
    /// The HTTP status code kube-apiserver answers with for this error.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::Malformed(_) => 400,
            PatchError::Failed(_) => 422,
            PatchError::TooManyOperations(_) => 413,
        }
    }

    /// The `metav1.Status` reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            PatchError::Malformed(_) => "BadRequest",
            PatchError::Failed(_) => "Invalid",
            PatchError::TooManyOperations(_) => "RequestEntityTooLarge",
        }
    }
}

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes a key, any
/// other value (arrays included) replaces the target whole.
pub fn merge_patch(doc: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("invalid JSON merge patch: {e}")))?;
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "a JSON merge patch for an object must be a JSON object".to_string(),
        ));
    }
    let mut out = doc.clone();
    merge_into(&mut out, &patch);
    Ok(out)
}

/// RFC 7386 merge of `patch` into `doc`, keeping the key order of `doc`.
fn merge_into(doc: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *doc = patch.clone();
        return;
    };
    if !doc.is_object() {
        *doc = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(map) = doc {
        for (key, value) in patch {
            if value.is_null() {
                map.shift_remove(key);
            } else {
                merge_into(map.entry(key.as_str()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Parses a patch body as a JSON object, the form strategic merge patches must have.
pub(crate) fn parse_object_body(body: &[u8], what: &str) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| PatchError::Malformed(format!("invalid {what}: {e}")))?;
    if !patch.is_object() {
        return Err(PatchError::Malformed(format!(
            "{what} must be a JSON object"
        )));
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types_map_to_patch_types() {
        let cases: &[(&str, Option<PatchType>)] = &[
            ("application/json-patch+json", Some(PatchType::Json)),
            ("application/merge-patch+json", Some(PatchType::Merge)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMerge),
            ),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            (
                "application/merge-patch+json; charset=utf-8",
                Some(PatchType::Merge),
            ),
            (
                "Application/JSON-Patch+JSON;charset=UTF-8",
                Some(PatchType::Json),
            ),
            ("application/json", None),
            ("application/yaml", None),
            ("", None),
        ];
        for (ct, want) in cases {
            assert_eq!(
                PatchType::from_content_type(ct),
                *want,
                "content type {ct:?}"
            );
            if let Some(t) = want {
                assert_eq!(PatchType::from_content_type(t.content_type()), Some(*t));
            }
        }
    }

    #[test]
    fn merge_patch_cases() {
        let doc = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
                         "spec": {"replicas": 1, "list": [1, 2, 3]}});
        let cases: &[(&str, Value)] = &[
            (
                r#"{"spec":{"replicas":3}}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
                       "spec": {"replicas": 3, "list": [1, 2, 3]}}),
            ),
            (
                r#"{"metadata":{"labels":{"x":null,"z":"3"}}}"#,
                json!({"metadata": {"name": "a", "labels": {"y": "2", "z": "3"}},
                       "spec": {"replicas": 1, "list": [1, 2, 3]}}),
            ),
            (
                r#"{"spec":{"list":[9]}}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
                       "spec": {"replicas": 1, "list": [9]}}),
            ),
            (
                r#"{"spec":null}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}}),
            ),
            (
                r#"{"status":{"ready":true,"gone":null}}"#,
                json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
                       "spec": {"replicas": 1, "list": [1, 2, 3]}, "status": {"ready": true}}),
            ),
        ];
        for (body, want) in cases {
            let got = merge_patch(&doc, body.as_bytes()).expect(body);
            assert_eq!(&got, want, "patch {body}");
        }
    }

    #[test]
    fn merge_patch_rejects_non_objects() {
        let doc = json!({"a": 1});
        for body in ["[1,2]", "not json", "3", "{\"a\":"] {
            let err = merge_patch(&doc, body.as_bytes()).unwrap_err();
            assert!(matches!(err, PatchError::Malformed(_)), "{body}: {err:?}");
            assert_eq!(err.status_code(), 400);
        }
    }

    #[test]
    fn merge_patch_of_a_document_with_itself_is_identity() {
        let docs = [
            json!({"a": 1, "b": {"c": [1, 2], "d": "x"}}),
            json!({"metadata": {"name": "n", "labels": {}}, "spec": {"containers": [{"name": "c"}]}}),
            json!({}),
        ];
        for doc in docs {
            let body = serde_json::to_vec(&doc).expect("serialise");
            assert_eq!(merge_patch(&doc, &body).expect("patch"), doc);
        }
    }

    #[test]
    fn error_status_codes_and_reasons() {
        let cases = [
            (PatchError::Malformed("x".into()), 400, "BadRequest"),
            (PatchError::Failed("x".into()), 422, "Invalid"),
            (
                PatchError::TooManyOperations(10_001),
                413,
                "RequestEntityTooLarge",
            ),
        ];
        for (err, code, reason) in cases {
            assert_eq!(err.status_code(), code);
            assert_eq!(err.reason(), reason);
        }
        assert_eq!(
            PatchError::TooManyOperations(10_001).to_string(),
            "the allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }
}
