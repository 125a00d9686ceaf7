//! API errors and their `metav1.Status` bodies, with the exact reasons and messages clients match on.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::store::StoreError;

/// One `details.causes[]` entry of an `Invalid` (422) status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, ...
    pub reason: &'static str,
    pub message: String,
    /// Dotted field path such as `spec.updateStrategy.type`.
    pub field: String,
}

impl Cause {
    /// A cause with the given reason.
    pub fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Cause {
            reason,
            message: message.into(),
            field: field.into(),
        }
    }

    /// `field: Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        Cause::new("FieldValueRequired", field, "Required value")
    }

    /// `field: Invalid value: <value>: <why>`.
    pub fn invalid(field: impl Into<String>, value: &Value, why: &str) -> Self {
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {}: {why}", render_value(value)),
        )
    }

    fn summary(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// Renders a value the way apimachinery's field errors quote it.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// An error answered with a `Status` body.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details` of the Status (boxed to keep the error small).
    pub details: Option<Box<Value>>,
    pub retry_after: Option<u64>,
}

/// `plural` or `plural.group`, as messages name a resource.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(plural: &str, group: &str, name: &str) -> Self {
        ApiError::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified(plural, group)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 404 for a path that names nothing served.
    pub fn path_not_found() -> Self {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(plural: &str, group: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(plural, group)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 409 `Conflict` for a stale resourceVersion.
    pub fn conflict(plural: &str, group: &str, name: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                qualified(plural, group)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 409 `Conflict` with a custom explanation.
    pub fn conflict_because(plural: &str, group: &str, name: &str, why: &str) -> Self {
        ApiError::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                qualified(plural, group)
            ),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 422 `Invalid` naming every failing field.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let list: Vec<String> = causes.iter().map(Cause::summary).collect();
        let subject = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let joined = if list.len() == 1 {
            list[0].clone()
        } else {
            format!("[{}]", list.join(", "))
        };
        let causes_json: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        ApiError::new(
            422,
            "Invalid",
            format!("{subject} {name:?} is invalid: {joined}"),
        )
        .with_details(json!({"name": name, "group": group, "kind": kind, "causes": causes_json}))
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "BadRequest", message)
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 `Forbidden`.
    pub fn forbidden(plural: &str, group: &str, name: &str, why: &str) -> Self {
        ApiError::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", qualified(plural, group)),
        )
        .with_details(json!({"name": name, "group": group, "kind": plural}))
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(verb: &str, plural: &str, group: &str) -> Self {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "{verb} is not supported on resources of kind {:?}",
                qualified(plural, group)
            ),
        )
        .with_details(json!({"group": group, "kind": plural}))
    }

    /// 406 `NotAcceptable`.
    pub fn not_acceptable() -> Self {
        ApiError::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml",
        )
    }

    /// 413 `RequestEntityTooLarge`.
    pub fn too_large(message: impl Into<String>) -> Self {
        ApiError::new(413, "RequestEntityTooLarge", message)
    }

    /// 415 `UnsupportedMediaType` listing what the resource accepts.
    pub fn unsupported_media_type(accepted: &[&str]) -> Self {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 410 `Expired`.
    pub fn expired(message: impl Into<String>) -> Self {
        ApiError::new(410, "Expired", message)
    }

    /// 429 `TooManyRequests` with a retry hint.
    pub fn too_many_requests(
        message: impl Into<String>,
        causes: Vec<Value>,
        retry_after: Option<u64>,
    ) -> Self {
        let mut details = json!({"causes": causes});
        if let Some(secs) = retry_after {
            details["retryAfterSeconds"] = json!(secs);
        }
        let mut err = ApiError::new(429, "TooManyRequests", message).with_details(details);
        err.retry_after = retry_after;
        err
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// 503 `ServiceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(503, "ServiceUnavailable", message)
    }

    /// The `metav1.Status` body.
    pub fn status(&self) -> Value {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            body["details"] = details.as_ref().clone();
        }
        body
    }

    /// Maps a storage failure for the object `name` of `plural.group`.
    pub fn from_store(err: StoreError, plural: &str, group: &str, name: &str) -> Self {
        match err {
            StoreError::NotFound { .. } => ApiError::not_found(plural, group, name),
            StoreError::AlreadyExists { .. } => ApiError::already_exists(plural, group, name),
            StoreError::Conflict { .. } => ApiError::conflict(plural, group, name),
            StoreError::Compacted { requested, oldest } => {
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
            }
            StoreError::Unavailable { message } => ApiError::unavailable(message),
            StoreError::Internal { message } => ApiError::internal(message),
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (code, axum::Json(self.status())).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("Retry-After", value);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_message_matches_upstream() {
        let err = ApiError::conflict("configmaps", "", "x");
        assert_eq!(
            err.message,
            "Operation cannot be fulfilled on configmaps \"x\": the object has been modified; please apply your changes to the latest version and try again"
        );
        assert_eq!(err.status()["details"]["kind"], "configmaps");
    }

    #[test]
    fn invalid_lists_field_paths() {
        let err = ApiError::invalid(
            "CloneSet",
            "apps.kruise.io",
            "c",
            vec![Cause::new(
                "FieldValueNotSupported",
                "spec.updateStrategy.type",
                "Unsupported value: \"Sideways\"",
            )],
        );
        assert_eq!(
            err.message,
            "CloneSet.apps.kruise.io \"c\" is invalid: spec.updateStrategy.type: Unsupported value: \"Sideways\""
        );
        assert_eq!(
            err.status()["details"]["causes"][0]["field"],
            "spec.updateStrategy.type"
        );
    }

    #[test]
    fn not_found_names_group() {
        assert_eq!(
            ApiError::not_found("deployments", "apps", "web").message,
            "deployments.apps \"web\" not found"
        );
    }
}
