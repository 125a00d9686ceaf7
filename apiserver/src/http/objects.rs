//! Reading and writing API objects in the store: JSON encoding, resourceVersion from the
//! store revision, version rewriting for multi-version resources, namespace existence.

use bytes::Bytes;
use serde_json::{json, Value};

use super::ApiState;
use crate::errors::ApiError;
use crate::registry::ResourceDescriptor;
use crate::store::{KeyValue, Revision};

/// The stored object with `resourceVersion` from the store and `apiVersion` of `desc`.
pub fn decode(kv: &KeyValue, desc: &ResourceDescriptor) -> Result<Value, ApiError> {
    let obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is not JSON: {e}", kv.key)))?;
    Ok(decorate(obj, kv, desc))
}

/// Adds what the stored JSON leaves out: `resourceVersion` (the revision of `kv`), `apiVersion`
/// and `kind`.
pub fn decorate(mut obj: Value, kv: &KeyValue, desc: &ResourceDescriptor) -> Value {
    set_resource_version(&mut obj, kv.mod_revision);
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), json!(desc.api_version()));
        map.insert("kind".into(), json!(desc.kind));
    }
    obj
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, revision: Revision) {
    if let Some(map) = obj.as_object_mut() {
        let meta = map.entry("metadata").or_insert_with(|| json!({}));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert("resourceVersion".into(), json!(revision.to_string()));
        }
    }
}

/// The JSON stored for an object (no resourceVersion; the store revision is authoritative),
/// in the storage version.
pub fn encode(obj: &Value, desc: &ResourceDescriptor) -> Result<Bytes, ApiError> {
    let mut copy = obj.clone();
    if let Some(map) = copy.as_object_mut() {
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("resourceVersion");
        }
        let storage_api_version = if desc.group.is_empty() {
            desc.storage_version.clone()
        } else {
            format!("{}/{}", desc.group, desc.storage_version)
        };
        map.insert("apiVersion".into(), json!(storage_api_version));
    }
    serde_json::to_vec(&copy)
        .map(Bytes::from)
        .map_err(ApiError::internal)
}

/// The `resourceVersion` a client sent, parsed; empty means none.
pub fn parse_resource_version(obj: &Value) -> Result<Option<Revision>, ApiError> {
    match obj
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
    {
        None | Some("") => Ok(None),
        Some(rv) => rv
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))),
    }
}

/// Reads one object; 404 if it is absent.
pub async fn get(
    state: &ApiState,
    desc: &ResourceDescriptor,
    namespace: Option<&str>,
    name: &str,
) -> Result<(Value, KeyValue), ApiError> {
    let key = desc.object_key(namespace, name);
    match state
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::from_store(e, &desc.plural, &desc.group, name))?
    {
        Some(kv) => Ok((decode(&kv, desc)?, kv)),
        None => Err(ApiError::not_found(&desc.plural, &desc.group, name)),
    }
}

/// Fails unless `namespace` exists and is not terminating (creates only).
pub async fn check_namespace_for_create(
    state: &ApiState,
    namespace: &str,
    plural: &str,
    group: &str,
    name: &str,
) -> Result<(), ApiError> {
    let key = format!("/registry/core/namespaces/{namespace}");
    let kv = state
        .store
        .get(&key)
        .await
        .map_err(|e| ApiError::from_store(e, "namespaces", "", namespace))?
        .ok_or_else(|| ApiError::not_found("namespaces", "", namespace))?;
    let ns: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
    if ns.pointer("/metadata/deletionTimestamp").is_some() {
        let mut err = ApiError::forbidden(
            plural,
            group,
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        );
        err.message = format!("{} {name:?} is forbidden: unable to create new content in namespace {namespace} because it is being terminated", crate::errors::qualified(plural, group));
        if let Some(details) = err.details.as_mut() {
            details["causes"] = json!([{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]);
        }
        return Err(err);
    }
    Ok(())
}
