//! Label and field selectors of list and watch requests.

use std::collections::BTreeMap;

use serde_json::Value;

use super::negotiate::Query;
use crate::errors::ApiError;
use crate::registry::ResourceDescriptor;
use crate::selector::{FieldSelector, LabelSelector};

/// The selectors of one request.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

/// An object's labels as a map.
pub fn labels_of(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The value of a selectable field of an object ("" when unset, as upstream's field sets).
pub fn field_value(obj: &Value, field: &str) -> String {
    let pointer: String = field
        .split('.')
        .fold(String::new(), |acc, seg| format!("{acc}/{seg}"));
    match obj.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

impl ListFilter {
    /// Parses `labelSelector` and `fieldSelector`; unknown field labels are a 400.
    pub fn from_query(query: &Query, desc: &ResourceDescriptor) -> Result<Self, ApiError> {
        let label =
            match query.non_empty("labelSelector") {
                Some(s) => Some(LabelSelector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let field = match query.non_empty("fieldSelector") {
            Some(s) => {
                let selector = FieldSelector::parse(s)
                    .map_err(|e| ApiError::bad_request(format!("invalid field selector: {e}")))?;
                for f in selector.fields() {
                    let known = matches!(f, "metadata.name" | "metadata.namespace")
                        || desc.selectable_fields.iter().any(|s| s == f);
                    if !known {
                        return Err(ApiError::bad_request(format!(
                            "field label not supported: {f}"
                        )));
                    }
                }
                Some(selector)
            }
            None => None,
        };
        Ok(ListFilter { label, field })
    }

    /// Whether every object matches (no selector at all).
    pub fn is_empty(&self) -> bool {
        self.label.is_none() && self.field.is_none()
    }

    /// Whether an object passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        if let Some(label) = &self.label {
            if !label.matches(&labels_of(obj)) {
                return false;
            }
        }
        if let Some(field) = &self.field {
            let get = |f: &str| Some(field_value(obj, f));
            if !field.matches(&get) {
                return false;
            }
        }
        true
    }
}
