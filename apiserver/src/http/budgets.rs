//! PodDisruptionBudget checks for pod evictions.

use serde_json::{json, Value};

use super::filter::labels_of;
use super::rest::Ctx;
use crate::errors::ApiError;
use crate::selector::LabelSelector;

/// Fails with 429 when a PodDisruptionBudget covering the pod allows no disruption (or is stale).
pub async fn check_eviction(ctx: &Ctx, pod: &Value) -> Result<(), ApiError> {
    let Some(desc) = ctx
        .state
        .registry
        .get("policy", "v1", "poddisruptionbudgets")
    else {
        return Ok(());
    };
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    let list = ctx
        .state
        .store
        .list(&desc.collection_prefix(Some(namespace)), None, None)
        .await
        .map_err(|e| ApiError::from_store(e, "poddisruptionbudgets", "policy", ""))?;
    let labels = labels_of(pod);
    let mut matching = Vec::new();
    for kv in &list.items {
        let pdb: Value = serde_json::from_slice(&kv.value).map_err(ApiError::internal)?;
        let Some(selector) = pdb.pointer("/spec/selector") else {
            continue;
        };
        let Ok(selector) = LabelSelector::from_label_selector_value(selector) else {
            continue;
        };
        if !selector.is_empty() && selector.matches(&labels) {
            matching.push(pdb);
        }
    }
    match matching.as_slice() {
        [] => Ok(()),
        [pdb] => {
            let name = pdb.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
            let generation = pdb.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0);
            let observed = pdb.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0);
            if observed < generation {
                return Err(ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    vec![json!({"reason": "DisruptionBudget", "message": format!("The disruption budget {name} is still being processed by the server.")})],
                    Some(10),
                ));
            }
            let allowed = pdb.pointer("/status/disruptionsAllowed").and_then(Value::as_i64).unwrap_or(0);
            if allowed <= 0 {
                let desired = pdb.pointer("/status/desiredHealthy").and_then(Value::as_i64).unwrap_or(0);
                let current = pdb.pointer("/status/currentHealthy").and_then(Value::as_i64).unwrap_or(0);
                return Err(ApiError::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    vec![json!({"reason": "DisruptionBudget", "message": format!("The disruption budget {name} needs {desired} healthy pods and has {current} currently")})],
                    None,
                ));
            }
            Ok(())
        }
        _ => Err(ApiError::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")),
    }
}
