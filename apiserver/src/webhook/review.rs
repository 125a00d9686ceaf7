//! AdmissionReview requests and responses: the attributes of a write, which version of the
//! resource a webhook is matched at (`matchPolicy`), the request body, and the checks and
//! decoding of the response (denial, JSON patch, warnings).

use base64::Engine;
use serde_json::{json, Value};

use super::client::{self, Endpoint};
use super::rules::{self, Operation, RuleTarget};
use super::Webhook;
use crate::errors::ApiError;
use crate::http::filter::labels_of;
use crate::http::rest::Ctx;

/// What a webhook is told about a request.
#[derive(Clone, Debug)]
pub struct Attributes {
    pub operation: Operation,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub namespaced: bool,
    /// `{group, version, kind}` of the object sent.
    pub kind: Value,
    pub request_kind: Value,
    pub name: String,
    pub namespace: String,
    pub user_info: Value,
    pub dry_run: bool,
    pub options: Value,
}

/// The resource version a webhook matched at (equal to the request's unless `Equivalent`).
#[derive(Clone, Debug)]
pub struct Matched {
    pub version: String,
}

/// A webhook's answer.
#[derive(Debug, Default)]
pub struct Verdict {
    pub denial: Option<ApiError>,
    /// The object with the webhook's JSON patch applied, when it sent one.
    pub patched: Option<Value>,
    pub warnings: Vec<String>,
}

impl Attributes {
    /// Attributes of a request on `ctx`'s resource.
    pub fn from_ctx(ctx: &Ctx, operation: Operation, obj: &Value, old: Option<&Value>) -> Self {
        let desc = &ctx.desc;
        let meta_str = |v: &Value, f: &str| {
            v.pointer(&format!("/metadata/{f}"))
                .and_then(Value::as_str)
                .map(String::from)
        };
        let name = ctx
            .target
            .name
            .clone()
            .or_else(|| meta_str(obj, "name"))
            .or_else(|| old.and_then(|o| meta_str(o, "name")))
            .unwrap_or_default();
        let namespace = if desc.namespaced {
            ctx.target
                .namespace
                .clone()
                .or_else(|| meta_str(obj, "namespace"))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let user = super::super::http::header(&ctx.headers, "authorization")
            .and_then(|h| ctx.state.auth.authenticate(Some(h)));
        let user_info = match user {
            Some(u) => json!({"username": u.name, "uid": u.uid, "groups": u.groups}),
            None => json!({"username": "system:anonymous", "groups": ["system:unauthenticated"]}),
        };
        let mut options = json!({"kind": operation.options_kind(), "apiVersion": "meta.k8s.io/v1"});
        if let Some(manager) = ctx.query.non_empty("fieldManager") {
            options["fieldManager"] = json!(manager);
        }
        if ctx.dry_run() {
            options["dryRun"] = json!(["All"]);
        }
        let kind = json!({"group": desc.group, "version": desc.version, "kind": desc.kind});
        Attributes {
            operation,
            group: desc.group.clone(),
            version: desc.version.clone(),
            resource: desc.plural.clone(),
            subresource: ctx.target.subresource.clone().unwrap_or_default(),
            namespaced: desc.namespaced,
            request_kind: kind.clone(),
            kind,
            name,
            namespace,
            user_info,
            dry_run: ctx.dry_run(),
            options,
        }
    }

    fn target<'a>(&'a self, version: &'a str) -> RuleTarget<'a> {
        RuleTarget {
            operation: self.operation,
            group: &self.group,
            version,
            resource: &self.resource,
            subresource: &self.subresource,
            namespaced: self.namespaced,
        }
    }

    /// Whether `webhook` applies: rules (at the requested version, or with `matchPolicy:
    /// Equivalent` at another served version), the namespace selector and the object selector.
    pub async fn matches(
        &self,
        ctx: &Ctx,
        webhook: &Webhook,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<Option<Matched>, ApiError> {
        let version = if rules::any_rule_matches(&webhook.spec, &self.target(&self.version)) {
            self.version.clone()
        } else if webhook.spec.get("matchPolicy").and_then(Value::as_str) != Some("Exact") {
            let equivalent = ctx
                .state
                .registry
                .versions_of(&self.group)
                .into_iter()
                .filter(|v| *v != self.version)
                .filter(|v| {
                    ctx.state
                        .registry
                        .get(&self.group, v, &self.resource)
                        .is_some()
                })
                .find(|v| rules::any_rule_matches(&webhook.spec, &self.target(v)));
            match equivalent {
                Some(v) => v,
                None => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        if !rules::object_selector_matches(&webhook.spec, obj, old) {
            return Ok(None);
        }
        if !self
            .namespace_selector_matches(ctx, webhook, obj, old)
            .await?
        {
            return Ok(None);
        }
        Ok(Some(Matched { version }))
    }

    async fn namespace_selector_matches(
        &self,
        ctx: &Ctx,
        webhook: &Webhook,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<bool, ApiError> {
        let Some(selector) = rules::selector_of(&webhook.spec, "namespaceSelector") else {
            return Ok(true);
        };
        if selector.is_empty() {
            return Ok(true);
        }
        if self.group.is_empty() && self.resource == "namespaces" {
            let labels = obj.or(old).map(labels_of).unwrap_or_default();
            return Ok(selector.matches(&labels));
        }
        if !self.namespaced || self.namespace.is_empty() {
            return Ok(true);
        }
        Ok(selector.matches(&namespace_labels(ctx, &self.namespace).await))
    }
}

async fn namespace_labels(
    ctx: &Ctx,
    namespace: &str,
) -> std::collections::BTreeMap<String, String> {
    let Some(desc) = ctx.state.registry.get("", "v1", "namespaces") else {
        return Default::default();
    };
    match crate::http::objects::get(&ctx.state, &desc, None, namespace).await {
        Ok((ns, _)) => labels_of(&ns),
        Err(_) => Default::default(),
    }
}

/// `obj` as seen at another version of its group (same storage, different `apiVersion`).
fn at_version(obj: Option<&Value>, group: &str, version: &str) -> Value {
    let Some(obj) = obj else { return Value::Null };
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        if map.contains_key("apiVersion") {
            let api_version = if group.is_empty() {
                version.to_string()
            } else {
                format!("{group}/{version}")
            };
            map.insert("apiVersion".into(), json!(api_version));
        }
    }
    copy
}

fn status_reason(reason: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "AlreadyExists",
        "Conflict",
        "Gone",
        "Invalid",
        "ServerTimeout",
        "Timeout",
        "TooManyRequests",
        "BadRequest",
        "MethodNotAllowed",
        "NotAcceptable",
        "RequestEntityTooLarge",
        "UnsupportedMediaType",
        "InternalError",
    ];
    KNOWN.into_iter().find(|k| *k == reason).unwrap_or("")
}

/// The client's error for a denial, as upstream's `ToStatusErr` builds it.
pub fn denial(webhook_name: &str, status: Option<&Value>) -> ApiError {
    let status = status.cloned().unwrap_or_else(|| json!({}));
    let denied_by = format!("admission webhook {webhook_name:?} denied the request");
    let text = |f: &str| {
        status
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let message = match (text("message"), text("reason")) {
        (m, _) if !m.is_empty() => format!("{denied_by}: {m}"),
        (_, r) if !r.is_empty() => format!("{denied_by}: {r}"),
        _ => format!("{denied_by} without explanation"),
    };
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(400);
    let mut err = ApiError::bad_request(message);
    err.code = code;
    err.reason = status_reason(&text("reason"));
    err.details = status.get("details").cloned().map(Box::new);
    err
}

/// Calls the webhook and interprets its response; `Err` is a call failure (subject to the
/// failure policy), a denial is `Verdict::denial`.
pub async fn call(
    ctx: &Ctx,
    webhook: &Webhook,
    attrs: &Attributes,
    matched: &Matched,
    obj: Option<&Value>,
    old: Option<&Value>,
    mutating: bool,
) -> Result<Verdict, String> {
    let uid = uuid::Uuid::new_v4().to_string();
    let object = at_version(obj, &attrs.group, &matched.version);
    let old_object = at_version(old, &attrs.group, &matched.version);
    let mut kind = attrs.kind.clone();
    if matched.version != attrs.version && kind["group"] == json!(attrs.group) {
        kind["version"] = json!(matched.version);
    }
    let mut request = json!({
        "uid": uid,
        "kind": kind,
        "resource": {"group": attrs.group, "version": matched.version, "resource": attrs.resource},
        "requestKind": attrs.request_kind,
        "requestResource": {"group": attrs.group, "version": attrs.version, "resource": attrs.resource},
        "name": attrs.name,
        "namespace": attrs.namespace,
        "operation": attrs.operation.as_str(),
        "userInfo": attrs.user_info,
        "object": object,
        "oldObject": old_object,
        "dryRun": attrs.dry_run,
        "options": attrs.options,
    });
    if !attrs.subresource.is_empty() {
        request["subResource"] = json!(attrs.subresource);
        request["requestSubResource"] = json!(attrs.subresource);
    }
    if attrs.name.is_empty() {
        if let Some(map) = request.as_object_mut() {
            map.remove("name");
        }
    }
    if attrs.namespace.is_empty() {
        if let Some(map) = request.as_object_mut() {
            map.remove("namespace");
        }
    }
    let review =
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
    let config = webhook
        .spec
        .get("clientConfig")
        .cloned()
        .unwrap_or(Value::Null);
    let timeout = webhook.timeout();
    let endpoint = Endpoint::from_client_config(
        &config,
        timeout.as_secs(),
        ctx.state.webhook_service_resolver.as_ref(),
    )
    .map_err(|e| format!("failed to call webhook: {e}"))?;
    let ca = config.get("caBundle").and_then(Value::as_str);
    let response = client::call(&endpoint, ca, &review, timeout)
        .await
        .map_err(|e| format!("failed to call webhook: {e}"))?;
    let invalid = |why: String| format!("received invalid webhook response: {why}");
    let api_version = response
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind_name = response.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != "admission.k8s.io/v1" || kind_name != "AdmissionReview" {
        return Err(invalid(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={kind_name}"
        )));
    }
    let Some(body) = response.get("response").filter(|r| r.is_object()) else {
        return Err(invalid("webhook response was absent".into()));
    };
    let got_uid = body.get("uid").and_then(Value::as_str).unwrap_or("");
    if got_uid != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {got_uid:?}"
        )));
    }
    let warnings = body
        .get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let allowed = body
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !allowed {
        return Ok(Verdict {
            denial: Some(denial(&webhook.name, body.get("status"))),
            patched: None,
            warnings,
        });
    }
    let patch = body
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patch_type = body
        .get("patchType")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patched = match (patch, patch_type) {
        (None, None) => None,
        (Some(_), _) if !mutating => {
            return Err(invalid(
                "validating webhook may not return response.patch".into(),
            ))
        }
        (Some(_), None) => {
            return Err(invalid(
                "webhook returned response.patch but not response.patchType".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                "webhook returned response.patchType but not response.patch".into(),
            ))
        }
        (Some(_), Some(t)) if t != "JSONPatch" => {
            return Err(invalid(format!(
                "webhook returned invalid response.patchType of {t:?}"
            )))
        }
        (Some(encoded), Some(_)) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| invalid(format!("response.patch is not base64: {e}")))?;
            let target = if object.is_null() { json!({}) } else { object };
            let mut patched = crate::patch::json_patch(&target, &raw)
                .map_err(|e| format!("JSON patch from webhook failed: {e}"))?;
            if matched.version != attrs.version {
                patched = at_version(Some(&patched), &attrs.group, &attrs.version);
            }
            Some(patched)
        }
    };
    Ok(Verdict {
        denial: None,
        patched,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_keep_the_code_and_wrap_the_message() {
        let err = denial(
            "deny.example.com",
            Some(&json!({"code": 403, "message": "no pods today", "reason": "Forbidden"})),
        );
        assert_eq!(err.code, 403);
        assert_eq!(err.reason, "Forbidden");
        assert_eq!(
            err.message,
            "admission webhook \"deny.example.com\" denied the request: no pods today"
        );
        let err = denial("d", Some(&json!({"code": 200})));
        assert_eq!(err.code, 400);
        assert_eq!(
            err.message,
            "admission webhook \"d\" denied the request without explanation"
        );
        let err = denial("d", Some(&json!({"reason": "NotAllowed"})));
        assert_eq!(
            err.message,
            "admission webhook \"d\" denied the request: NotAllowed"
        );
    }
}
