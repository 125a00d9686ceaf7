//! Admission webhooks (`admissionregistration.k8s.io/v1`): the stored Mutating- and
//! ValidatingWebhookConfigurations are matched against each write and called with an
//! `admission.k8s.io/v1` AdmissionReview. Mutating webhooks run serially (configurations in name
//! order, then list order) before schema defaulting and validation; validating webhooks run in
//! parallel afterwards, and any denial rejects the request.

pub mod client;
pub mod review;
pub mod rules;

use std::time::Duration;

use futures::future::join_all;
use serde_json::{json, Value};

pub use client::ServiceResolver;
pub use rules::Operation;

use crate::errors::ApiError;
use crate::http::rest::Ctx;
use review::{Attributes, Verdict};

const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";
const GROUP: &str = "admissionregistration.k8s.io";

/// One webhook of a stored configuration.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub name: String,
    pub spec: Value,
}

impl Webhook {
    fn fail_open(&self) -> bool {
        self.spec.get("failurePolicy").and_then(Value::as_str) == Some("Ignore")
    }

    fn timeout(&self) -> Duration {
        let secs = self
            .spec
            .get("timeoutSeconds")
            .and_then(Value::as_u64)
            .unwrap_or(10)
            .clamp(1, 30);
        Duration::from_secs(secs)
    }

    fn reinvoke_if_needed(&self) -> bool {
        self.spec.get("reinvocationPolicy").and_then(Value::as_str) == Some("IfNeeded")
    }

    fn side_effects_unsafe_on_dry_run(&self) -> bool {
        !matches!(
            self.spec.get("sideEffects").and_then(Value::as_str),
            Some("None" | "NoneOnDryRun")
        )
    }
}

/// Whether a request on this resource is exempt (the webhook configurations themselves).
fn exempt(ctx: &Ctx) -> bool {
    ctx.desc.group == GROUP && (ctx.desc.plural == MUTATING || ctx.desc.plural == VALIDATING)
}

/// The webhooks of every stored configuration of `plural`, configurations in name order.
async fn load(ctx: &Ctx, plural: &str) -> Result<Vec<Webhook>, ApiError> {
    let Some(desc) = ctx.state.registry.get(GROUP, "v1", plural) else {
        return Ok(Vec::new());
    };
    let page = ctx
        .state
        .store
        .list(&desc.collection_prefix(None), None, None)
        .await
        .map_err(|e| ApiError::from_store(e, plural, GROUP, ""))?;
    let mut configs: Vec<Value> = page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    configs.sort_by(|a, b| {
        let name = |v: &Value| {
            v.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        name(a).cmp(&name(b))
    });
    Ok(configs
        .iter()
        .flat_map(|c| {
            c.get("webhooks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .map(|spec| Webhook {
            name: spec
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            spec,
        })
        .collect())
}

/// The error a failed call turns into under `failurePolicy: Fail`.
fn call_failed(name: &str, reason: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("failed calling webhook {name:?}: {reason}"))
}

/// Calls one webhook; `Ok(None)` when it does not apply or failed open.
async fn invoke(
    ctx: &Ctx,
    webhook: &Webhook,
    attrs: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
    mutating: bool,
) -> Result<Option<Verdict>, ApiError> {
    let Some(matched) = attrs.matches(ctx, webhook, obj, old).await? else {
        return Ok(None);
    };
    if attrs.dry_run && webhook.side_effects_unsafe_on_dry_run() {
        return Err(ApiError::bad_request(format!(
            "admission webhook {:?} has sideEffects other than None or NoneOnDryRun and does not support dry run",
            webhook.name
        )));
    }
    let result = review::call(ctx, webhook, attrs, &matched, obj, old, mutating).await;
    match result {
        Ok(verdict) => Ok(Some(verdict)),
        Err(reason) if webhook.fail_open() => {
            tracing::warn!(webhook = %webhook.name, error = %reason, "failed calling webhook, failing open");
            Ok(None)
        }
        Err(reason) => Err(call_failed(&webhook.name, reason)),
    }
}

/// Runs the mutating webhooks over `obj` (serially, applying JSON patches in order, with one
/// re-invocation round for `reinvocationPolicy: IfNeeded`). Returns the webhooks' warnings.
pub async fn mutate(
    ctx: &Ctx,
    attrs: &Attributes,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    if exempt(ctx) {
        return Ok(Vec::new());
    }
    let webhooks = load(ctx, MUTATING).await?;
    if webhooks.is_empty() {
        return Ok(Vec::new());
    }
    let mut warnings = Vec::new();
    let mut changes = 0usize;
    let mut ran_at: Vec<Option<usize>> = vec![None; webhooks.len()];
    for (i, webhook) in webhooks.iter().enumerate() {
        if let Some(verdict) = invoke(ctx, webhook, attrs, Some(obj), old, true).await? {
            ran_at[i] = Some(changes);
            if apply_verdict(webhook, verdict, obj, &mut warnings)? {
                changes += 1;
                ran_at[i] = Some(changes);
            }
        }
    }
    let reinvoke: Vec<usize> = (0..webhooks.len())
        .filter(|&i| webhooks[i].reinvoke_if_needed() && ran_at[i].is_some_and(|at| at < changes))
        .collect();
    for i in reinvoke {
        let webhook = &webhooks[i];
        if let Some(verdict) = invoke(ctx, webhook, attrs, Some(obj), old, true).await? {
            apply_verdict(webhook, verdict, obj, &mut warnings)?;
        }
    }
    Ok(warnings)
}

/// Applies a mutating webhook's verdict; whether the object changed.
fn apply_verdict(
    webhook: &Webhook,
    verdict: Verdict,
    obj: &mut Value,
    warnings: &mut Vec<String>,
) -> Result<bool, ApiError> {
    warnings.extend(verdict.warnings);
    if let Some(denial) = verdict.denial {
        return Err(denial);
    }
    let Some(patched) = verdict.patched else {
        return Ok(false);
    };
    if patched == *obj {
        return Ok(false);
    }
    if !patched.is_object() {
        return Err(call_failed(
            &webhook.name,
            "the patched object is not an object",
        ));
    }
    *obj = patched;
    Ok(true)
}

/// Runs the validating webhooks (in parallel); the first denial in configuration order wins.
pub async fn validate(
    ctx: &Ctx,
    attrs: &Attributes,
    obj: Option<&Value>,
    old: Option<&Value>,
) -> Result<Vec<String>, ApiError> {
    if exempt(ctx) {
        return Ok(Vec::new());
    }
    let webhooks = load(ctx, VALIDATING).await?;
    if webhooks.is_empty() {
        return Ok(Vec::new());
    }
    let results = join_all(
        webhooks
            .iter()
            .map(|webhook| invoke(ctx, webhook, attrs, obj, old, false)),
    )
    .await;
    let mut warnings = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(Some(verdict)) => {
                warnings.extend(verdict.warnings);
                if let Some(denial) = verdict.denial {
                    first_error.get_or_insert(denial);
                }
            }
            Ok(None) => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(warnings),
    }
}

/// Runs mutating then validating webhooks around `admit` (the built-in admission step), as a
/// create or update does.
pub async fn admit_write<F>(
    ctx: &Ctx,
    operation: Operation,
    obj: &mut Value,
    old: Option<&Value>,
    admit: F,
) -> Result<Vec<String>, ApiError>
where
    F: FnOnce(&mut Value) -> Result<Vec<String>, ApiError>,
{
    let attrs = Attributes::from_ctx(ctx, operation, obj, old);
    let mut warnings = mutate(ctx, &attrs, obj, old).await?;
    warnings.extend(admit(obj)?);
    warnings.extend(validate(ctx, &attrs, Some(obj), old).await?);
    Ok(warnings)
}

/// Reviews a deletion: webhooks see `oldObject` and a null `object`.
pub async fn admit_delete(ctx: &Ctx, old: &Value, dry_run: bool) -> Result<Vec<String>, ApiError> {
    let mut attrs = Attributes::from_ctx(ctx, Operation::Delete, &Value::Null, Some(old));
    attrs.dry_run = dry_run;
    let mut warnings = Vec::new();
    // Mutating webhooks are called for deletions too; there is no object to patch.
    if !exempt(ctx) {
        for webhook in load(ctx, MUTATING).await? {
            if let Some(verdict) = invoke(ctx, &webhook, &attrs, None, Some(old), true).await? {
                warnings.extend(verdict.warnings);
                if let Some(denial) = verdict.denial {
                    return Err(denial);
                }
            }
        }
    }
    warnings.extend(validate(ctx, &attrs, None, Some(old)).await?);
    Ok(warnings)
}

/// Reviews `pods/eviction`: a CREATE of a `policy/v1` Eviction on the pod's subresource.
pub async fn admit_eviction(ctx: &Ctx, eviction: &mut Value) -> Result<Vec<String>, ApiError> {
    if let Some(map) = eviction.as_object_mut() {
        let api_version = map
            .entry("apiVersion")
            .or_insert_with(|| json!("policy/v1"));
        if api_version.as_str().is_none_or(str::is_empty) {
            *api_version = json!("policy/v1");
        }
        map.entry("kind").or_insert_with(|| json!("Eviction"));
    }
    let mut attrs = Attributes::from_ctx(ctx, Operation::Create, eviction, None);
    attrs.kind = json!({"group": "policy", "version": "v1", "kind": "Eviction"});
    attrs.request_kind = attrs.kind.clone();
    let mut warnings = mutate(ctx, &attrs, eviction, None).await?;
    warnings.extend(validate(ctx, &attrs, Some(eviction), None).await?);
    Ok(warnings)
}
