//! Field-level validation errors in the format of Kubernetes' `field.Error`.
//!
//! `Display` reproduces Go's `field.Error.Error()` byte for byte, so the strings can be returned to
//! kubectl as `Status` causes with `reason: Invalid`.

use serde_json::Value;
use std::fmt;

/// The kind of a field error (Go's `field.ErrorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required field was not set.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The value is not one of an enumerated set.
    NotSupported,
    /// The field may not be set (in this combination).
    Forbidden,
    /// The value duplicates another entry.
    Duplicate,
    /// The value is longer than allowed.
    TooLong,
    /// The list holds more entries than allowed.
    TooMany,
    /// A referenced object or entry does not exist.
    NotFound,
}

impl ErrorKind {
    /// The phrase Go prints for this kind (`field.ErrorType.String()`).
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::TooLong => "Too long",
            ErrorKind::TooMany => "Too many",
            ErrorKind::NotFound => "Not found",
        }
    }

    /// The `StatusCause.reason` for this kind (Go's `metav1.CauseType`).
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::TooLong => "FieldValueTooLong",
            ErrorKind::TooMany => "FieldValueTooMany",
            ErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// Whether Go prints the bad value for this kind.
    fn prints_value(self) -> bool {
        !matches!(
            self,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong
        )
    }
}

/// One validation failure at a field path, e.g. `spec.updateStrategy.partition`.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Dotted field path with `[i]` indexes and `[key]` map keys.
    pub field: String,
    /// The offending value; `None` leaves it out of the message.
    pub bad_value: Option<Value>,
    /// Human-readable detail appended after the value.
    pub detail: String,
}

impl FieldError {
    /// `Required value`, with an optional detail.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Required,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `Invalid value: <v>: <detail>`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind: ErrorKind::Invalid,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: detail.into(),
        }
    }

    /// `Unsupported value: <v>: supported values: "a", "b"`.
    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<Value>,
        supported: &[&str],
    ) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        let detail = if quoted.is_empty() {
            String::new()
        } else {
            format!("supported values: {}", quoted.join(", "))
        };
        Self {
            kind: ErrorKind::NotSupported,
            field: field.into(),
            bad_value: Some(value.into()),
            detail,
        }
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Forbidden,
            field: field.into(),
            bad_value: None,
            detail: detail.into(),
        }
    }

    /// `Duplicate value: <v>`.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            kind: ErrorKind::Duplicate,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self {
            kind: ErrorKind::TooLong,
            field: field.into(),
            bad_value: None,
            detail: format!("may not be more than {max} bytes"),
        }
    }

    /// `Too many: <n>: must have at most <max> items`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self {
            kind: ErrorKind::TooMany,
            field: field.into(),
            bad_value: Some(Value::from(actual)),
            detail: format!("must have at most {max} items"),
        }
    }

    /// `Not found: <v>`.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self {
            kind: ErrorKind::NotFound,
            field: field.into(),
            bad_value: Some(value.into()),
            detail: String::new(),
        }
    }

    /// The `StatusCause.reason` string (`FieldValueInvalid`, ...).
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind.phrase())?;
        if self.kind.prints_value() {
            if let Some(value) = &self.bad_value {
                write!(f, ": {}", go_value(value))?;
            }
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

impl std::error::Error for FieldError {}

/// Formats a value the way Go's `%v`/`%q` verbs do for the types that appear in API objects.
fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(go_value).collect();
            format!("[]{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Go's `strconv.Quote` for the common cases (JSON escaping agrees on printable ASCII).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// Builds field paths the way Go's `field.Path` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A root path such as `spec`.
    pub fn new(root: &str) -> Self {
        Path(root.to_string())
    }

    /// `parent.child`.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `parent[i]`.
    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    /// `parent[key]`.
    pub fn key(&self, key: &str) -> Self {
        Path(format!("{}[{key}]", self.0))
    }

    /// The printed path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn display_matches_go_for_each_kind() {
        let p = Path::new("spec").child("updateStrategy").child("partition");
        assert_eq!(
            FieldError::invalid(&p, -1, "must be greater than or equal to 0").to_string(),
            "spec.updateStrategy.partition: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            FieldError::not_supported("spec.updateStrategy.type", "Sideways", &["ReCreate", "InPlaceIfPossible", "InPlaceOnly"])
                .to_string(),
            "spec.updateStrategy.type: Unsupported value: \"Sideways\": supported values: \"ReCreate\", \"InPlaceIfPossible\", \"InPlaceOnly\""
        );
        assert_eq!(
            FieldError::required("spec.selector", "").to_string(),
            "spec.selector: Required value"
        );
        assert_eq!(
            FieldError::forbidden("spec.x", "not allowed").to_string(),
            "spec.x: Forbidden: not allowed"
        );
        assert_eq!(
            FieldError::duplicate(Path::new("spec").child("a").index(2), json!("b")).to_string(),
            "spec.a[2]: Duplicate value: \"b\""
        );
        assert_eq!(
            FieldError::too_long("metadata.name", 63).to_string(),
            "metadata.name: Too long: may not be more than 63 bytes"
        );
    }

    #[test]
    fn reasons_match_status_cause_types() {
        assert_eq!(FieldError::required("a", "").reason(), "FieldValueRequired");
        assert_eq!(
            FieldError::invalid("a", 1, "").reason(),
            "FieldValueInvalid"
        );
        assert_eq!(
            FieldError::not_supported("a", "x", &["y"]).reason(),
            "FieldValueNotSupported"
        );
        assert_eq!(
            FieldError::forbidden("a", "").reason(),
            "FieldValueForbidden"
        );
        assert_eq!(
            FieldError::duplicate("a", "x").reason(),
            "FieldValueDuplicate"
        );
        assert_eq!(FieldError::too_long("a", 1).reason(), "FieldValueTooLong");
    }

    #[test]
    fn path_builder_prints_indexes_and_keys() {
        let p = Path::new("spec")
            .child("topology")
            .child("subsets")
            .index(1)
            .child("name");
        assert_eq!(p.as_str(), "spec.topology.subsets[1].name");
        assert_eq!(
            Path::new("spec").child("partitions").key("a").as_str(),
            "spec.partitions[a]"
        );
    }
}
