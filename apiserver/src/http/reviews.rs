//! Create-only review resources: SelfSubjectAccessReview (an allow-all authorizer answers
//! `kubectl auth can-i`) and SelfSubjectReview (`kubectl auth whoami`).

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::negotiate::decode_body;
use super::rest::Ctx;
use crate::errors::ApiError;
use crate::registry::ResourceDescriptor;

/// Whether the resource is a review (answered, never stored).
pub fn is_review(desc: &ResourceDescriptor) -> bool {
    matches!(
        (desc.group.as_str(), desc.plural.as_str()),
        ("authorization.k8s.io", "selfsubjectaccessreviews")
            | ("authentication.k8s.io", "selfsubjectreviews")
    )
}

/// Answers a review with its status filled in.
pub async fn create(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let mut review = decode_body(&bytes, super::header(&ctx.headers, "content-type"))?;
    crate::metadata::check_type(&mut review, &ctx.desc)?;
    let status = if ctx.desc.plural == "selfsubjectaccessreviews" {
        json!({"allowed": true, "reason": "every authenticated request is authorized"})
    } else {
        let header = super::header(&ctx.headers, "authorization");
        let user = ctx.state.auth.authenticate(header);
        match user {
            Some(u) => json!({"userInfo": {"username": u.name, "uid": u.uid, "groups": u.groups}}),
            None => {
                json!({"userInfo": {"username": "system:anonymous", "groups": ["system:unauthenticated"]}})
            }
        }
    };
    if let Some(map) = review.as_object_mut() {
        map.insert("status".into(), status);
        map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("creationTimestamp".into(), Value::Null);
        }
    }
    Ok((StatusCode::CREATED, axum::Json(review)).into_response())
}
