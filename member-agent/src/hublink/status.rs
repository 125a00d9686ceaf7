//! What the link reports: a workload's replica counts and conditions, and the cluster's capacity.

use k8s_openapi::api::core::v1::{Node, Pod};
use kruise_proto::federation::Capacity;
use serde_json::{json, Value};

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// The workload's pod selector (`spec.selector`) as a label selector string, or `None` when it
/// has none or uses an operator the API does not know (then no pods are counted).
pub fn pod_selector(obj: &Value) -> Option<String> {
    let selector = obj.pointer("/spec/selector")?;
    let mut terms: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}")))
                .collect()
        })
        .unwrap_or_default();
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(Value::as_str)?;
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        terms.push(match expr.get("operator").and_then(Value::as_str)? {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return None,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

/// Whether a pod waits for a node the scheduler cannot find: Pending with `PodScheduled=False`
/// reason `Unschedulable`.
pub fn pod_unschedulable(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Pending")
        && status.conditions.as_ref().is_some_and(|cs| {
            cs.iter().any(|c| {
                c.type_ == "PodScheduled"
                    && c.status == "False"
                    && c.reason.as_deref() == Some("Unschedulable")
            })
        })
}

/// Unschedulable pods among `pods` that are not being deleted.
pub fn count_unschedulable(pods: &[Pod]) -> i32 {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_unschedulable(p))
        .count() as i32
}

/// The Work's `workloadStatus` (camelCase, as `kruise_api`'s `WorkloadStatus`) from an applied
/// workload object and the number of its pods that cannot be scheduled (the larger of that and
/// what the workload's own status says, for kinds that report it).
pub fn workload_status(obj: &Value, unschedulable_pods: i32) -> Value {
    let conditions: Vec<Value> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    json!({"type": c["type"], "status": c["status"],
                           "reason": c.get("reason"), "message": c.get("message"),
                           "lastTransitionTime": c.get("lastTransitionTime")})
                })
                .collect()
        })
        .unwrap_or_default();
    let mut status = json!({
        "replicas": int(obj, "/status/replicas"),
        "readyReplicas": int(obj, "/status/readyReplicas"),
        "updatedReplicas": int(obj, "/status/updatedReplicas"),
        "updatedReadyReplicas": int(obj, "/status/updatedReadyReplicas"),
        "availableReplicas": int(obj, "/status/availableReplicas"),
        "unschedulableReplicas": int(obj, "/status/unschedulableReplicas")
            .max(i64::from(unschedulable_pods)),
    });
    if let Some(g) = obj
        .pointer("/status/observedGeneration")
        .and_then(Value::as_i64)
    {
        status["observedGeneration"] = json!(g);
    }
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
    }
    status
}

/// Whether the workload has caught up with its spec and has every replica available.
pub fn available(obj: &Value) -> bool {
    let wanted = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let generation = int(obj, "/metadata/generation");
    let observed = int(obj, "/status/observedGeneration");
    observed >= generation && int(obj, "/status/availableReplicas") >= wanted
}

/// Parses a Kubernetes quantity into base units scaled by `scale` (1000 for milli-CPU).
pub fn parse_quantity(q: &str, scale: f64) -> Option<i64> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some((number * factor * scale).round() as i64)
}

/// Sums allocatable resources over `nodes`.
pub fn capacity(nodes: &[Node], kubernetes_version: &str, agent_version: &str) -> Capacity {
    let mut cap = Capacity {
        kubernetes_version: kubernetes_version.to_string(),
        agent_version: agent_version.to_string(),
        node_count: nodes.len() as i32,
        ..Default::default()
    };
    for node in nodes {
        let status = node.status.as_ref();
        if let Some(alloc) = status.and_then(|s| s.allocatable.as_ref()) {
            let get = |k: &str, scale| alloc.get(k).and_then(|q| parse_quantity(&q.0, scale));
            cap.allocatable_milli_cpu += get("cpu", 1000.0).unwrap_or(0);
            cap.allocatable_memory_bytes += get("memory", 1.0).unwrap_or(0);
            cap.allocatable_pods += get("pods", 1.0).unwrap_or(0);
        }
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if ready {
            cap.ready_node_count += 1;
        }
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse() {
        assert_eq!(parse_quantity("4", 1000.0), Some(4000));
        assert_eq!(parse_quantity("500m", 1000.0), Some(500));
        assert_eq!(parse_quantity("16Gi", 1.0), Some(17_179_869_184));
        assert_eq!(parse_quantity("110", 1.0), Some(110));
        assert_eq!(parse_quantity("1Q", 1.0), None);
    }

    #[test]
    fn status_copies_counts_and_judges_availability() {
        let obj = json!({"metadata": {"generation": 2},
            "spec": {"replicas": 3},
            "status": {"replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                "updatedReplicas": 3, "updatedReadyReplicas": 2, "observedGeneration": 2,
                "conditions": [{"type": "Progressing", "status": "True"}]}});
        let s = workload_status(&obj, 0);
        assert_eq!(s["unschedulableReplicas"], 0);
        assert_eq!(workload_status(&obj, 2)["unschedulableReplicas"], 2);
        assert_eq!(s["updatedReadyReplicas"], 2);
        assert_eq!(s["observedGeneration"], 2);
        assert_eq!(s["conditions"][0]["type"], "Progressing");
        assert!(available(&obj));
        let mut stale = obj.clone();
        stale["metadata"]["generation"] = json!(3);
        assert!(!available(&stale));
    }

    fn pod(phase: &str, scheduled: Option<(&str, &str)>, deleting: bool) -> Pod {
        let mut pod = json!({"metadata": {"name": "p"}, "status": {"phase": phase}});
        if let Some((status, reason)) = scheduled {
            pod["status"]["conditions"] =
                json!([{"type": "PodScheduled", "status": status, "reason": reason}]);
        }
        if deleting {
            pod["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        serde_json::from_value(pod).expect("pod")
    }

    #[test]
    fn only_pending_pods_the_scheduler_rejected_count() {
        let pods = vec![
            pod("Pending", Some(("False", "Unschedulable")), false),
            pod("Pending", Some(("False", "Unschedulable")), false),
            pod("Pending", Some(("False", "Unschedulable")), true),
            pod("Pending", Some(("False", "SchedulerError")), false),
            pod("Pending", Some(("True", "")), false),
            pod("Pending", None, false),
            pod("Running", Some(("True", "")), false),
        ];
        assert_eq!(count_unschedulable(&pods), 2);
        assert_eq!(count_unschedulable(&[]), 0);
    }

    #[test]
    fn selectors_become_label_selector_strings() {
        let obj = json!({"spec": {"selector": {"matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}]}}});
        assert_eq!(
            pod_selector(&obj).as_deref(),
            Some("app=web,tier in (a,b),!canary")
        );
        assert_eq!(pod_selector(&json!({"spec": {}})), None);
        let odd = json!({"spec": {"selector": {"matchExpressions": [
            {"key": "k", "operator": "Near"}]}}});
        assert_eq!(pod_selector(&odd), None);
    }
}
