//! The built-in admission chain of a write: unknown-field checks (`fieldValidation`), defaults,
//! structural pruning/defaulting/validation for custom resources, validation of built-ins,
//! and the effects of CRD writes on the registry.

use serde_json::{json, Value};

use super::openapi;
use super::rest::Ctx;
use crate::errors::{ApiError, Cause};
use crate::registry::{crd, SchemaSource};
use crate::{defaults, metadata, schema};

/// The `fieldValidation` level of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

/// Unknown fields of `obj` against the resource's schema: a 400 under Strict, warnings under Warn.
pub fn unknown_field_check(
    ctx: &Ctx,
    obj: &Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let unknown = match &ctx.desc.schema {
        SchemaSource::Builtin(_) => {
            let builtins = openapi::builtin_schemas();
            match builtins.kind_schema(&ctx.desc.group, &ctx.desc.kind) {
                Some(root) => schema::unknown_fields(obj, &root, &builtins.components),
                None => Vec::new(),
            }
        }
        SchemaSource::Structural(root) => {
            let mut body = obj.clone();
            if let Some(map) = body.as_object_mut() {
                map.remove("apiVersion");
                map.remove("kind");
                let meta = map.remove("metadata");
                let mut unknown = schema::prune(&mut body, root);
                if let Some(meta) = meta {
                    let builtins = openapi::builtin_schemas();
                    let meta_schema =
                        json!({"$ref": format!("#/components/schemas/{}", openapi::OBJECT_META)});
                    unknown.extend(
                        schema::unknown_fields(&meta, &meta_schema, &builtins.components)
                            .into_iter()
                            .map(|f| format!("metadata.{f}")),
                    );
                }
                unknown
            } else {
                Vec::new()
            }
        }
        SchemaSource::None => Vec::new(),
    };
    if unknown.is_empty() {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    match validation {
        FieldValidation::Strict => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.join(", ")
        ))),
        _ => Ok(messages),
    }
}

/// Validation of built-in kinds beyond the schema (the checks users run into).
fn validate_builtin(kind: &str, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let pod_spec = |spec: Option<&Value>, path: &str, causes: &mut Vec<Cause>| {
        let containers = spec
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array);
        match containers {
            None => causes.push(Cause::required(format!("{path}.containers"))),
            Some(list) if list.is_empty() => {
                causes.push(Cause::required(format!("{path}.containers")))
            }
            Some(list) => {
                for (i, c) in list.iter().enumerate() {
                    if c.get("name")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        causes.push(Cause::required(format!("{path}.containers[{i}].name")));
                    }
                    if c.get("image")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        causes.push(Cause::required(format!("{path}.containers[{i}].image")));
                    }
                }
            }
        }
    };
    match kind {
        "Pod" => pod_spec(obj.get("spec"), "spec", &mut causes),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            if obj.pointer("/spec/selector").is_none() {
                causes.push(Cause::required("spec.selector"));
            }
            pod_spec(
                obj.pointer("/spec/template/spec"),
                "spec.template.spec",
                &mut causes,
            );
        }
        _ => {}
    }
    causes
}

/// Mutating and validating admission of an object about to be stored (`old` on updates).
pub fn admit(ctx: &Ctx, obj: &mut Value, old: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let name = metadata::meta_str(obj, "name").unwrap_or("").to_string();
    let desc = &ctx.desc;
    let deleting = obj.pointer("/metadata/deletionTimestamp").is_some();
    match &desc.schema {
        SchemaSource::Structural(root) if !desc.builtin => {
            schema::prune(obj, root);
            schema::apply_defaults(obj, root);
            let causes = schema::validate(obj, root);
            if !causes.is_empty() && !deleting {
                return Err(ApiError::invalid(&desc.kind, &desc.group, &name, causes));
            }
        }
        _ => {
            defaults::apply(&desc.kind, obj, old.is_none());
            let causes = validate_builtin(&desc.kind, obj);
            if !causes.is_empty() && !deleting {
                return Err(ApiError::invalid(&desc.kind, &desc.group, &name, causes));
            }
        }
    }
    if desc.group == "apiextensions.k8s.io" && desc.plural == "customresourcedefinitions" {
        let causes = crd::validate(obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&desc.kind, &desc.group, &name, causes));
        }
        let now = old
            .and_then(|o| o.pointer("/status/conditions/0/lastTransitionTime"))
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| metadata::timestamp(chrono::Utc::now()));
        let status = crd::accepted_status(obj, &now);
        if let Some(map) = obj.as_object_mut() {
            map.insert("status".into(), status);
        }
    }
    Ok(Vec::new())
}

fn is_crd(ctx: &Ctx) -> bool {
    ctx.desc.group == "apiextensions.k8s.io" && ctx.desc.plural == "customresourcedefinitions"
}

/// Effects of a stored write on the server (CRDs start or stop being served).
pub async fn after_write(ctx: &Ctx, obj: &Value) {
    if is_crd(ctx) {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            crate::crds::uninstall(&ctx.state, obj).await;
        } else {
            crate::crds::install(&ctx.state.registry, obj);
        }
    }
}

/// Effects of a removal.
pub async fn after_delete(ctx: &Ctx, obj: &Value) {
    if is_crd(ctx) {
        crate::crds::uninstall(&ctx.state, obj).await;
    }
}
