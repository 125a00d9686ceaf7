//! Serving custom resources from CRD objects: installing a CRD into the registry, removing it
//! (and its objects), and loading CRDs at start.

use serde_json::Value;
use tracing::{info, warn};

use crate::http::ApiState;
use crate::registry::{crd, Registry};

/// Starts serving every served version of `crd` (replacing what was served for it before).
pub fn install(registry: &Registry, crd_obj: &Value) {
    let group = crd_obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("");
    let plural = crd_obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    if group.is_empty() || plural.is_empty() {
        return;
    }
    registry.remove_resource(group, plural);
    for desc in crd::descriptors(crd_obj) {
        registry.insert(desc);
    }
    info!(group, plural, "serving custom resource");
}

/// Stops serving a CRD's resource and deletes its objects.
pub async fn uninstall(state: &ApiState, crd_obj: &Value) {
    let group = crd_obj
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let plural = crd_obj
        .pointer("/spec/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if group.is_empty() || plural.is_empty() {
        return;
    }
    let prefix = format!("/registry/{group}/{plural}/");
    state.registry.remove_resource(&group, &plural);
    match state.store.list(&prefix, None, None).await {
        Ok(list) => {
            for kv in list.items {
                if let Err(e) = state.store.delete(&kv.key, None).await {
                    warn!(key = kv.key, error = %e, "deleting custom resource of a removed CRD");
                }
            }
        }
        Err(e) => warn!(prefix, error = %e, "listing custom resources of a removed CRD"),
    }
}

/// Serves every CRD already stored (after a restart over persistent storage).
pub async fn load_stored(state: &ApiState) -> anyhow::Result<usize> {
    let list = state
        .store
        .list(
            "/registry/apiextensions.k8s.io/customresourcedefinitions/",
            None,
            None,
        )
        .await?;
    let mut count = 0;
    for kv in list.items {
        let obj: Value = serde_json::from_slice(&kv.value)?;
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            install(&state.registry, &obj);
            count += 1;
        }
    }
    Ok(count)
}
