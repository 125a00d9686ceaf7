//! Continue tokens of paged lists, as kube-apiserver's etcd storage does them.
//!
//! A token names the last key returned and the revision the first page was read at; every later
//! page reads at that revision ([`crate::store::Store::list_at`]), so the pages together are one
//! snapshot. When the store no longer keeps that revision, the list fails with 410 `Expired` and
//! upstream's message, and the Status carries a token with revision `-1` that continues from the
//! same key at the current revision (an inconsistent list, which the client opts into).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use crate::errors::ApiError;

/// kube-apiserver's message for a continued list whose revision is compacted (`inconsistentContinue`).
pub const INCONSISTENT_CONTINUE: &str = "The provided continue parameter is too old to display a \
consistent list result. You can start a new list without the continue parameter, or use the \
continue token in this response to retrieve the remainder of the results. Continuing with the \
provided token results in an inconsistent list - objects that were created, modified, or deleted \
between the time the first chunk was returned and now may show up in the list.";

/// The token revision meaning "continue at the current revision".
pub const LATEST: i64 = -1;

/// A decoded continue token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContinueToken {
    /// The last key the previous page returned.
    pub start: String,
    /// The revision to read at, or [`LATEST`].
    pub revision: i64,
}

/// An opaque continue token: the last key returned and the list's revision.
pub fn encode(start: &str, revision: i64) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start}).to_string())
}

/// Decodes a token from [`encode`]; a malformed one, or one without a usable revision, is a
/// 400.
pub fn decode(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token:?}"));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    let revision = value.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    if revision == 0 || revision < LATEST {
        return Err(ApiError::bad_request(format!(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1): {token:?}"
        )));
    }
    Ok(ContinueToken { start, revision })
}

/// The 410 answer to a continue token whose revision is gone.
pub fn expired_error() -> ApiError {
    ApiError::expired(INCONSISTENT_CONTINUE)
}

/// The Status of [`expired_error`], offering a token that continues after `start` at the
/// current revision.
pub fn expired_status(start: &str) -> Value {
    let mut status = expired_error().status();
    status["metadata"]["continue"] = json!(encode(start, LATEST));
    status
}

/// [`expired_status`] as a response.
pub fn expired_response(start: &str) -> Response {
    (StatusCode::GONE, axum::Json(expired_status(start))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_a_zero_revision() {
        let token = encode("/registry/core/configmaps/ns/a", 42);
        assert_eq!(
            decode(&token).unwrap(),
            ContinueToken {
                start: "/registry/core/configmaps/ns/a".into(),
                revision: 42
            }
        );
        assert_eq!(decode(&encode("k", LATEST)).unwrap().revision, LATEST);
        for bad in [encode("k", 0), encode("k", -2), "not base64!".into()] {
            assert_eq!(decode(&bad).unwrap_err().code, 400, "{bad}");
        }
    }

    #[test]
    fn the_expired_status_offers_a_token_at_the_latest_revision() {
        assert_eq!(expired_response("/registry/x/b").status(), StatusCode::GONE);
        let status = expired_status("/registry/x/b");
        assert_eq!(
            (&status["reason"], &status["code"]),
            (&json!("Expired"), &json!(410))
        );
        assert_eq!(status["message"], INCONSISTENT_CONTINUE);
        let token = status["metadata"]["continue"].as_str().unwrap();
        assert_eq!(
            decode(token).unwrap(),
            ContinueToken {
                start: "/registry/x/b".into(),
                revision: LATEST
            }
        );
    }
}
