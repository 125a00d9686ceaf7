//! DELETE of one object and of collections: preconditions, pod graceful deletion,
//! finalizers (`deletionTimestamp` first), propagation-policy finalizers, namespaces.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{json, Value};

use super::filter::ListFilter;
use super::rest::{list_items, render_object, Ctx};
use super::{admission, objects};
use crate::errors::ApiError;
use crate::metadata;
use crate::store::StoreError;

/// Namespaces that exist from the start and cannot be deleted.
pub const PROTECTED_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// `metav1.DeleteOptions` from the body or the query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

impl DeleteOptions {
    /// Parses a (possibly empty) JSON body, falling back to query parameters.
    pub fn parse(body: &[u8], ctx: &Ctx) -> Result<Self, ApiError> {
        let q = &ctx.query;
        let mut options = DeleteOptions {
            grace_period_seconds: q.int("gracePeriodSeconds")?,
            propagation_policy: q.non_empty("propagationPolicy").map(String::from),
            orphan_dependents: q.non_empty("orphanDependents").map(|v| v == "true"),
            precondition_uid: None,
            precondition_resource_version: None,
            dry_run: ctx.dry_run(),
        };
        if !body.iter().all(u8::is_ascii_whitespace) {
            let value: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions body: {e}")))?;
            if let Some(g) = value.get("gracePeriodSeconds").and_then(Value::as_i64) {
                options.grace_period_seconds = Some(g);
            }
            if let Some(p) = value.get("propagationPolicy").and_then(Value::as_str) {
                options.propagation_policy = Some(p.to_string());
            }
            if let Some(o) = value.get("orphanDependents").and_then(Value::as_bool) {
                options.orphan_dependents = Some(o);
            }
            options.precondition_uid = value
                .pointer("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from);
            options.precondition_resource_version = value
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from);
            if value
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|d| d.iter().any(|v| v == "All"))
            {
                options.dry_run = true;
            }
        }
        match options.propagation_policy.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(options),
            Some(other) => Err(ApiError::invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                vec![crate::errors::Cause::new(
                    "FieldValueNotSupported",
                    "propagationPolicy",
                    format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
                )],
            )),
        }
    }

    fn finalizer(&self) -> Option<&'static str> {
        match (self.propagation_policy.as_deref(), self.orphan_dependents) {
            (Some("Foreground"), _) => Some("foregroundDeletion"),
            (Some("Orphan"), _) | (None, Some(true)) => Some("orphan"),
            _ => None,
        }
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// Grace period of a pod deletion: requested, else the spec's, 0 when unscheduled or terminal.
pub fn pod_grace(pod: &Value, requested: Option<i64>) -> i64 {
    let unscheduled = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let terminal = matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    if unscheduled || terminal {
        return 0;
    }
    requested
        .or_else(|| {
            pod.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30)
        .max(0)
}

/// The outcome of deleting one object.
pub enum Deleted {
    /// Marked for deletion (finalizers or grace period); the stored object.
    Pending(Value),
    /// Removed; the last state with the deletion's resourceVersion.
    Removed(Value),
}

/// Deletes the object `ctx` names.
pub async fn delete_one(ctx: &Ctx, options: &DeleteOptions) -> Result<Deleted, ApiError> {
    let name = ctx.name().to_string();
    if ctx.desc.kind == "Namespace"
        && ctx.desc.group.is_empty()
        && PROTECTED_NAMESPACES.contains(&name.as_str())
    {
        return Err(ApiError::forbidden(
            "namespaces",
            "",
            &name,
            "this namespace may not be deleted",
        ));
    }
    let key = ctx.desc.object_key(ctx.namespace(), &name);
    for _ in 0..8 {
        let (current, kv) = objects::get(&ctx.state, &ctx.desc, ctx.namespace(), &name).await?;
        let uid = current
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some(want) = &options.precondition_uid {
            if *want != uid {
                return Err(ApiError::conflict_because(
                    &ctx.desc.plural,
                    &ctx.desc.group,
                    &name,
                    &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
                ));
            }
        }
        if let Some(want) = &options.precondition_resource_version {
            if *want != kv.mod_revision.to_string() {
                return Err(ApiError::conflict_because(
                    &ctx.desc.plural,
                    &ctx.desc.group,
                    &name,
                    &format!("Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}", kv.mod_revision),
                ));
            }
        }
        // An eviction's deletion was reviewed as the eviction itself.
        if ctx.target.subresource.as_deref() != Some("eviction") {
            crate::webhook::admit_delete(ctx, &current, options.dry_run).await?;
        }
        let now = Utc::now();
        let mut desired = current.clone();
        let deleting = current.pointer("/metadata/deletionTimestamp").is_some();
        let mut changed = false;
        let meta = metadata::meta_mut(&mut desired)?;
        if let Some(finalizer) = options.finalizer() {
            let mut list = finalizers(&current);
            if !list.iter().any(|f| f == finalizer) {
                list.push(finalizer.to_string());
                meta.insert("finalizers".into(), json!(list));
                changed = true;
            }
        }
        let is_namespace = ctx.desc.kind == "Namespace" && ctx.desc.group.is_empty();
        let grace = if ctx.desc.kind == "Pod" && ctx.desc.group.is_empty() {
            pod_grace(&current, options.grace_period_seconds)
        } else {
            0
        };
        let has_finalizers = !finalizers(&desired).is_empty();
        let current_grace = current
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        let spec_finalizers = is_namespace
            && current
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
        if grace > 0 || has_finalizers || spec_finalizers {
            let meta = metadata::meta_mut(&mut desired)?;
            if !deleting {
                let at = now + chrono::Duration::seconds(grace);
                meta.insert("deletionTimestamp".into(), json!(metadata::timestamp(at)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if let Some(g) = meta.get("generation").and_then(Value::as_i64) {
                    meta.insert("generation".into(), json!(g + 1));
                }
                changed = true;
            } else if current_grace.is_some_and(|g| grace < g) {
                let at = now + chrono::Duration::seconds(grace);
                meta.insert("deletionTimestamp".into(), json!(metadata::timestamp(at)));
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                changed = true;
            }
            if is_namespace {
                if let Some(map) = desired.as_object_mut() {
                    let status = map.entry("status").or_insert_with(|| json!({}));
                    if status.get("phase").and_then(Value::as_str) != Some("Terminating") {
                        status["phase"] = json!("Terminating");
                        changed = true;
                    }
                }
            }
            if !changed || options.dry_run {
                return Ok(Deleted::Pending(desired));
            }
            match ctx
                .state
                .store
                .update(&key, objects::encode(&desired, &ctx.desc)?, kv.mod_revision)
                .await
            {
                Ok(kv) => {
                    objects::set_resource_version(&mut desired, kv.mod_revision);
                    admission::after_write(ctx, &desired).await;
                    return Ok(Deleted::Pending(desired));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ctx.store_error(e)),
            }
        }
        if options.dry_run {
            return Ok(Deleted::Removed(current));
        }
        match ctx.state.store.delete(&key, Some(kv.mod_revision)).await {
            Ok(deleted) => {
                let mut last = current;
                objects::set_resource_version(&mut last, deleted.mod_revision);
                admission::after_delete(ctx, &last).await;
                return Ok(Deleted::Removed(last));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ctx.store_error(e)),
        }
    }
    Err(ApiError::conflict(&ctx.desc.plural, &ctx.desc.group, &name))
}

fn returns_object(ctx: &Ctx) -> bool {
    ctx.desc.group.is_empty()
        && matches!(
            ctx.desc.kind.as_str(),
            "Pod" | "ServiceAccount" | "Namespace"
        )
}

/// `DELETE …/R/NAME`.
pub async fn delete(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let options = DeleteOptions::parse(&bytes, ctx)?;
    match delete_one(ctx, &options).await? {
        Deleted::Pending(obj) => Ok(render_object(ctx, obj, StatusCode::OK, &[])),
        Deleted::Removed(obj) if returns_object(ctx) => {
            Ok(render_object(ctx, obj, StatusCode::OK, &[]))
        }
        Deleted::Removed(obj) => {
            let uid = obj.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
            Ok(axum::Json(json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {"name": ctx.name(), "group": ctx.desc.group, "kind": ctx.desc.plural, "uid": uid},
            }))
            .into_response())
        }
    }
}

/// `DELETE …/R?labelSelector=…`: deletes every matching object, answering the list of them.
pub async fn delete_collection(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let options = DeleteOptions::parse(&bytes, ctx)?;
    let filter = ListFilter::from_query(&ctx.query, &ctx.desc)?;
    let mut list_ctx = ctx.clone();
    list_ctx.query.set("limit", "");
    list_ctx.query.set("continue", "");
    let (items, revision, _) = list_items(&list_ctx, &filter).await?;
    let mut deleted = Vec::new();
    for item in items {
        let mut one = ctx.clone();
        one.target.name = item
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(String::from);
        one.target.namespace = item
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        match delete_one(&one, &options).await {
            Ok(Deleted::Pending(obj)) | Ok(Deleted::Removed(obj)) => deleted.push(obj),
            Err(ApiError { code: 404, .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(axum::Json(json!({
        "kind": ctx.desc.list_kind,
        "apiVersion": ctx.desc.api_version(),
        "metadata": {"resourceVersion": revision.to_string()},
        "items": deleted,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_rules() {
        let unscheduled = json!({"spec": {"terminationGracePeriodSeconds": 30}});
        assert_eq!(pod_grace(&unscheduled, None), 0);
        let scheduled = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 30}, "status": {"phase": "Running"}});
        assert_eq!(pod_grace(&scheduled, None), 30);
        assert_eq!(pod_grace(&scheduled, Some(0)), 0);
        let done = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Succeeded"}});
        assert_eq!(pod_grace(&done, Some(10)), 0);
    }
}
