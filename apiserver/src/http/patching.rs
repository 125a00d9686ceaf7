//! PATCH bodies applied to stored objects with the `patch` module, and JSONPath evaluation
//! (the `jsonpath` module) for printer columns.

use serde_json::Value;

use crate::errors::ApiError;
use crate::patch::{self, BuiltinPatchSchema, NoMergeKeys, PatchError, PatchType};
use crate::registry::ResourceDescriptor;

/// A request's patch type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestPatch(pub PatchType);

impl RequestPatch {
    /// Whether this is a server-side apply.
    pub fn is_apply(&self) -> bool {
        self.0 == PatchType::Apply
    }
}

fn accepted(desc: &ResourceDescriptor) -> Vec<&'static str> {
    let mut types = vec![
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/apply-patch+yaml",
    ];
    if desc.builtin {
        types.push("application/strategic-merge-patch+json");
    }
    types
}

/// The patch type of a request's Content-Type; 415 for unknown types and for strategic merge
/// patches on custom resources.
pub fn patch_type(content_type: &str, desc: &ResourceDescriptor) -> Result<RequestPatch, ApiError> {
    match PatchType::from_content_type(content_type) {
        Some(PatchType::StrategicMerge) if !desc.builtin => {
            Err(ApiError::unsupported_media_type(&accepted(desc)))
        }
        Some(t) => Ok(RequestPatch(t)),
        None => Err(ApiError::unsupported_media_type(&accepted(desc))),
    }
}

fn patch_error(err: PatchError, desc: &ResourceDescriptor, current: &Value) -> ApiError {
    match err {
        PatchError::Malformed(message) => ApiError::bad_request(message),
        PatchError::Failed(message) => {
            let name = current
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let mut e = ApiError::invalid(
                &desc.kind,
                &desc.group,
                name,
                vec![crate::errors::Cause::new(
                    "FieldValueInvalid",
                    "",
                    message.clone(),
                )],
            );
            e.message = format!(
                "the server rejected our request due to an error in our request: {message}"
            );
            e
        }
        PatchError::TooManyOperations(_) => ApiError::too_large(err.to_string()),
    }
}

/// Applies the patch body to the current object.
pub fn apply(
    patch_type: &RequestPatch,
    current: &Value,
    body: &[u8],
    desc: &ResourceDescriptor,
) -> Result<Value, ApiError> {
    let result = match patch_type.0 {
        PatchType::Json => patch::json_patch(current, body),
        PatchType::Merge => patch::merge_patch(current, body),
        PatchType::StrategicMerge => patch::strategic_merge_patch(
            current,
            body,
            &BuiltinPatchSchema::new(desc.kind.clone(), desc.group.clone()),
        ),
        PatchType::Apply if desc.builtin => patch::apply_patch(
            Some(current),
            body,
            &BuiltinPatchSchema::new(desc.kind.clone(), desc.group.clone()),
        ),
        PatchType::Apply => patch::apply_patch(Some(current), body, &NoMergeKeys),
    };
    result.map_err(|e| patch_error(e, desc, current))
}

/// Evaluates a printer-column JSONPath (`.status.replicas`, `.spec.containers[0].image`)
/// against an object; `None` when the path is invalid or selects nothing (a null cell).
pub fn evaluate_json_path(path: &str, obj: &Value) -> Option<Value> {
    let parsed = crate::jsonpath::JsonPath::parse(path).ok()?;
    let found = parsed.evaluate(obj);
    match found.as_slice() {
        [] => None,
        [single] => Some((*single).clone()),
        many => Some(Value::Array(many.iter().map(|v| (*v).clone()).collect())),
    }
}
