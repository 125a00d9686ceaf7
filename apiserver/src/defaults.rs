//! Built-in default values that kubectl users expect to see on stored objects.

use serde_json::{json, Map, Value};

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_string(), value);
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (digests count as tagged).
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn default_container(container: &mut Value) {
    let Some(map) = container.as_object_mut() else {
        return;
    };
    let image = map
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    set_default(map, "imagePullPolicy", json!(image_pull_policy(&image)));
    set_default(map, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(map, "terminationMessagePolicy", json!("File"));
    if map.get("resources").is_none() {
        map.insert("resources".into(), json!({}));
    }
    if let Some(ports) = map.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            if let Some(p) = port.as_object_mut() {
                set_default(p, "protocol", json!("TCP"));
            }
        }
    }
}

/// `type: RollingUpdate` with `rolling` parameters unless the strategy says otherwise.
fn default_strategy(spec: &mut Map<String, Value>, field: &str, rolling: Value) {
    let strategy = spec.entry(field).or_insert_with(|| json!({}));
    if strategy.is_null() {
        *strategy = json!({});
    }
    let Some(strategy) = strategy.as_object_mut() else {
        return;
    };
    set_default(strategy, "type", json!("RollingUpdate"));
    if strategy.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
        let params = strategy.entry("rollingUpdate").or_insert_with(|| json!({}));
        if let (Some(params), Some(defaults)) = (params.as_object_mut(), rolling.as_object()) {
            for (k, v) in defaults {
                set_default(params, k, v.clone());
            }
        }
    }
}

/// Defaults of a `PodSpec` (used for pods and pod templates).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    set_default(map, "restartPolicy", json!("Always"));
    set_default(map, "dnsPolicy", json!("ClusterFirst"));
    set_default(map, "terminationGracePeriodSeconds", json!(30));
    set_default(map, "schedulerName", json!("default-scheduler"));
    set_default(map, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(containers) = map.get_mut(list).and_then(Value::as_array_mut) {
            containers.iter_mut().for_each(default_container);
        }
    }
}

/// Applies the defaults of a built-in kind to an object being created (`creating`) or updated.
pub fn apply(kind: &str, obj: &mut Value, creating: bool) {
    match kind {
        "Pod" => {
            if let Some(spec) = obj.get_mut("spec") {
                default_pod_spec(spec);
                if let Some(map) = spec.as_object_mut() {
                    set_default(map, "serviceAccountName", json!("default"));
                    set_default(
                        map,
                        "serviceAccount",
                        map.get("serviceAccountName")
                            .cloned()
                            .unwrap_or(json!("default")),
                    );
                    set_default(map, "enableServiceLinks", json!(true));
                    set_default(map, "priority", json!(0));
                    set_default(map, "preemptionPolicy", json!("PreemptLowerPriority"));
                    if map.get("tolerations").is_none() {
                        map.insert(
                            "tolerations".into(),
                            json!([
                                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                            ]),
                        );
                    }
                }
            }
            if let Some(map) = obj.as_object_mut() {
                let status = map.entry("status").or_insert_with(|| json!({}));
                if let Some(status) = status.as_object_mut() {
                    set_default(status, "phase", json!("Pending"));
                    set_default(status, "qosClass", json!("BestEffort"));
                }
            }
        }
        "Namespace" => {
            if let Some(map) = obj.as_object_mut() {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Some(spec) = spec.as_object_mut() {
                    // Set on create only: finalization removes it for good.
                    if creating {
                        set_default(spec, "finalizers", json!(["kubernetes"]));
                    }
                }
                let status = map.entry("status").or_insert_with(|| json!({}));
                if let Some(status) = status.as_object_mut() {
                    set_default(status, "phase", json!("Active"));
                }
            }
        }
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" | "Job" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                if kind != "DaemonSet" && kind != "Job" {
                    set_default(spec, "replicas", json!(1));
                }
                if kind == "Deployment" {
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(spec, "progressDeadlineSeconds", json!(600));
                    default_strategy(
                        spec,
                        "strategy",
                        json!({"maxUnavailable": "25%", "maxSurge": "25%"}),
                    );
                }
                if kind == "StatefulSet" {
                    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    default_strategy(spec, "updateStrategy", json!({"partition": 0}));
                }
                if kind == "DaemonSet" {
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    default_strategy(
                        spec,
                        "updateStrategy",
                        json!({"maxUnavailable": 1, "maxSurge": 0}),
                    );
                }
                if let Some(pod_spec) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
                    default_pod_spec(pod_spec);
                }
            }
        }
        "Service" => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                set_default(spec, "type", json!("ClusterIP"));
                set_default(spec, "sessionAffinity", json!("None"));
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports {
                        if let Some(p) = port.as_object_mut() {
                            set_default(p, "protocol", json!("TCP"));
                            if let Some(port_no) = p.get("port").cloned() {
                                set_default(p, "targetPort", port_no);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_tag() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("registry:5000/app:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("registry:5000/app"), "Always");
    }

    #[test]
    fn pod_defaults() {
        let mut pod = json!({"spec": {"containers": [{"name": "a", "image": "x:v1"}], "restartPolicy": "Never"}});
        apply("Pod", &mut pod, true);
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            pod["spec"]["containers"][0]["imagePullPolicy"],
            "IfNotPresent"
        );
        assert_eq!(pod["status"]["phase"], "Pending");
    }

    #[test]
    fn namespace_defaults() {
        let mut ns = json!({"metadata": {"name": "x"}});
        apply("Namespace", &mut ns, true);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
    }

    #[test]
    fn empty_strategy_gets_rolling_update() {
        let mut deploy =
            json!({"spec": {"strategy": {}, "template": {"spec": {"containers": []}}}});
        apply("Deployment", &mut deploy, true);
        assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");
        assert_eq!(
            deploy["spec"]["strategy"]["rollingUpdate"]["maxSurge"],
            "25%"
        );
        let mut recreate = json!({"spec": {"strategy": {"type": "Recreate"}}});
        apply("Deployment", &mut recreate, true);
        assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());
    }
}
