//! Subresources beyond status: scale (autoscaling/v1 Scale), pods/eviction, pods/binding and
//! namespaces/finalize.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::delete::{delete_one, DeleteOptions};
use super::negotiate::decode_body;
use super::patching::{self, RequestPatch};
use super::rest::{write_update, Ctx};
use super::{objects, table};
use crate::errors::ApiError;
use crate::metadata::WriteScope;
use crate::patch::PatchType;
use crate::registry::ScalePaths;

fn pointer_of(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, seg| format!("{acc}/{seg}"))
}

fn set_at(obj: &mut Value, path: &str, value: Value) {
    let segments: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut current = obj;
    for (i, seg) in segments.iter().enumerate() {
        if !current.is_object() {
            *current = json!({});
        }
        let Some(map) = current.as_object_mut() else {
            return;
        };
        if i == segments.len() - 1 {
            map.insert(seg.to_string(), value);
            return;
        }
        current = map.entry(seg.to_string()).or_insert_with(|| json!({}));
    }
}

fn paths(ctx: &Ctx) -> Result<ScalePaths, ApiError> {
    ctx.desc
        .subresources
        .scale
        .clone()
        .ok_or_else(ApiError::path_not_found)
}

/// The Scale view of an object.
pub fn to_scale(obj: &Value, paths: &ScalePaths) -> Value {
    let spec = obj
        .pointer(&pointer_of(&paths.spec_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let status = obj
        .pointer(&pointer_of(&paths.status_replicas))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = paths
        .label_selector
        .as_deref()
        .and_then(|p| obj.pointer(&pointer_of(p)))
        .map(|s| match s {
            Value::String(text) => text.clone(),
            other => table::builtin_selector_string(other),
        });
    let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let mut scale_meta = json!({});
    for field in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta.get(field) {
            scale_meta[field] = v.clone();
        }
    }
    let mut status_json = json!({"replicas": status});
    if let Some(sel) = selector {
        status_json["selector"] = json!(sel);
    }
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta, "spec": {"replicas": spec}, "status": status_json})
}

fn scale_response(scale: Value) -> Response {
    axum::Json(scale).into_response()
}

/// `GET …/scale`.
pub async fn get_scale(ctx: &Ctx) -> Result<Response, ApiError> {
    let paths = paths(ctx)?;
    let (obj, _) = objects::get(&ctx.state, &ctx.desc, ctx.namespace(), ctx.name()).await?;
    Ok(scale_response(to_scale(&obj, &paths)))
}

fn replicas_of(scale: &Value) -> Result<i64, ApiError> {
    match scale.pointer("/spec/replicas") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_i64().filter(|r| *r >= 0).ok_or_else(|| {
            ApiError::invalid(
                "Scale",
                "autoscaling",
                "",
                vec![crate::errors::Cause::invalid(
                    "spec.replicas",
                    v,
                    "must be greater than or equal to 0",
                )],
            )
        }),
    }
}

/// `PUT …/scale` (kubectl scale --current-replicas sends no Content-Type).
pub async fn put_scale(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let paths = paths(ctx)?;
    let bytes = super::read_body(body).await?;
    let scale = decode_body(&bytes, None)?;
    let replicas = replicas_of(&scale)?;
    let precondition = objects::parse_resource_version(&scale)?;
    let spec_path = paths.spec_replicas.clone();
    let (saved, _) = write_update(ctx, WriteScope::Main, precondition, |current| {
        let mut next = current.clone();
        set_at(&mut next, &spec_path, json!(replicas));
        Ok(next)
    })
    .await?;
    Ok(scale_response(to_scale(&saved, &paths)))
}

/// `PATCH …/scale` (kubectl scale sends a merge patch `{"spec":{"replicas":N}}`).
pub async fn patch_scale(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let paths = paths(ctx)?;
    let bytes = super::read_body(body).await?;
    let content_type = super::header(&ctx.headers, "content-type").unwrap_or("");
    let patch_type = match PatchType::from_content_type(content_type) {
        // A Scale has no lists, so a strategic merge patch is a merge patch here.
        Some(PatchType::StrategicMerge) => RequestPatch(PatchType::Merge),
        Some(t) => RequestPatch(t),
        None => {
            return Err(ApiError::unsupported_media_type(&[
                "application/json-patch+json",
                "application/merge-patch+json",
                "application/apply-patch+yaml",
            ]))
        }
    };
    let scale_desc = crate::registry::ResourceDescriptor {
        kind: "Scale".into(),
        group: "autoscaling".into(),
        builtin: false,
        ..(*ctx.desc).clone()
    };
    let spec_path = paths.spec_replicas.clone();
    let (saved, _) = write_update(ctx, WriteScope::Main, None, |current| {
        let scale = to_scale(current, &paths);
        let patched = patching::apply(&patch_type, &scale, &bytes, &scale_desc)?;
        let replicas = replicas_of(&patched)?;
        let mut next = current.clone();
        set_at(&mut next, &spec_path, json!(replicas));
        Ok(next)
    })
    .await?;
    Ok(scale_response(to_scale(&saved, &paths)))
}

fn success(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    (status, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}))).into_response()
}

/// `POST …/pods/NAME/binding`: sets `spec.nodeName` once.
pub async fn bind(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let binding = decode_body(&bytes, super::header(&ctx.headers, "content-type"))?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            ctx.name(),
            vec![crate::errors::Cause::required("target.name")],
        ));
    }
    if let Some(name) = binding.pointer("/metadata/name").and_then(Value::as_str) {
        if name != ctx.name() {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Binding object",
            ));
        }
    }
    let pod_name = ctx.name().to_string();
    write_update(ctx, WriteScope::Main, None, |current| {
        if let Some(existing) = current
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            return Err(ApiError::conflict_because(
                "pods",
                "",
                &pod_name,
                &format!("pod {pod_name} is already assigned to node {existing:?}"),
            ));
        }
        if current.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::conflict_because(
                "pods",
                "",
                &pod_name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let mut next = current.clone();
        set_at(&mut next, ".spec.nodeName", json!(node));
        Ok(next)
    })
    .await?;
    Ok(success(201))
}

/// `POST …/pods/NAME/eviction`: deletes the pod unless a PodDisruptionBudget forbids it (429).
pub async fn evict(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let mut eviction = decode_body(&bytes, super::header(&ctx.headers, "content-type"))?;
    if let Some(name) = eviction.pointer("/metadata/name").and_then(Value::as_str) {
        if name != ctx.name() {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let (pod, _) = objects::get(&ctx.state, &ctx.desc, ctx.namespace(), ctx.name()).await?;
    crate::webhook::admit_eviction(ctx, &mut eviction).await?;
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    let exempt = matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some();
    if !exempt {
        super::budgets::check_eviction(ctx, &pod).await?;
    }
    let mut options = DeleteOptions::default();
    if let Some(opts) = eviction.get("deleteOptions") {
        options.grace_period_seconds = opts.get("gracePeriodSeconds").and_then(Value::as_i64);
        options.precondition_uid = opts
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(String::from);
    }
    delete_one(ctx, &options).await?;
    Ok(success(201))
}

/// `PUT /api/v1/namespaces/NAME/finalize`: replaces `spec.finalizers`.
pub async fn finalize(ctx: &Ctx, body: Body) -> Result<Response, ApiError> {
    let bytes = super::read_body(body).await?;
    let ns = decode_body(&bytes, super::header(&ctx.headers, "content-type"))?;
    let finalizers = ns
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let precondition = objects::parse_resource_version(&ns)?;
    let (saved, _) = write_update(ctx, WriteScope::Main, precondition, |current| {
        let mut next = current.clone();
        set_at(&mut next, ".spec.finalizers", finalizers.clone());
        if finalizers.as_array().is_some_and(|f| f.is_empty()) {
            if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("finalizers");
            }
        }
        Ok(next)
    })
    .await?;
    Ok(super::rest::render_object(ctx, saved, StatusCode::OK, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_of_deployment_and_custom_resource() {
        let deploy = json!({"metadata": {"name": "w", "namespace": "d", "resourceVersion": "7"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "w"}}}, "status": {"replicas": 2}});
        let paths = ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".spec.selector".into()),
        };
        let scale = to_scale(&deploy, &paths);
        assert_eq!(scale["spec"]["replicas"], 3);
        assert_eq!(scale["status"]["selector"], "app=w");
        assert_eq!(scale["metadata"]["resourceVersion"], "7");
        let cr = json!({"metadata": {"name": "c"}, "spec": {"replicas": 5}, "status": {"replicas": 5, "selector": "app=guestbook"}});
        let paths = ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        };
        assert_eq!(to_scale(&cr, &paths)["status"]["selector"], "app=guestbook");
        let mut obj = json!({});
        set_at(&mut obj, ".spec.replicas", json!(4));
        assert_eq!(obj, json!({"spec": {"replicas": 4}}));
    }
}
