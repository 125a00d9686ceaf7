//! kubectl's printers for built-in kinds (columns and cell logic as in
//! kubernetes/pkg/printers/internalversion).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{age, col, created, name_of, wide, Column, NAME};

/// Computes a row's cells.
pub type RowFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

fn s<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn i(obj: &Value, pointer: &str) -> i64 {
    obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn or_none(value: Option<&str>) -> String {
    match value {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => "<none>".to_string(),
    }
}

fn age_cell(obj: &Value, now: DateTime<Utc>) -> Value {
    json!(age(created(obj), now))
}

/// The columns and row function of a built-in kind.
pub fn printer(kind: &str, group: &str) -> (Vec<Column>, RowFn) {
    match (group, kind) {
        ("", "Pod") => (
            vec![
                NAME,
                col("Ready", "string"),
                col("Status", "string"),
                col("Restarts", "string"),
                col("Age", "string"),
                wide("IP", "string"),
                wide("Node", "string"),
                wide("Nominated Node", "string"),
                wide("Readiness Gates", "string"),
            ],
            pod_row,
        ),
        ("", "Node") => (
            vec![
                NAME,
                col("Status", "string"),
                col("Roles", "string"),
                col("Age", "string"),
                col("Version", "string"),
                wide("Internal-IP", "string"),
                wide("External-IP", "string"),
                wide("OS-Image", "string"),
                wide("Kernel-Version", "string"),
                wide("Container-Runtime", "string"),
            ],
            node_row,
        ),
        ("", "Namespace") => (
            vec![NAME, col("Status", "string"), col("Age", "string")],
            |o, now| {
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/status/phase").unwrap_or("")),
                    age_cell(o, now),
                ]
            },
        ),
        ("", "ConfigMap") => (
            vec![NAME, col("Data", "integer"), col("Age", "string")],
            |o, now| {
                let data = o
                    .get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
                    + o.get("binaryData")
                        .and_then(Value::as_object)
                        .map_or(0, |m| m.len());
                vec![json!(name_of(o)), json!(data), age_cell(o, now)]
            },
        ),
        ("", "Secret") => (
            vec![
                NAME,
                col("Type", "string"),
                col("Data", "integer"),
                col("Age", "string"),
            ],
            |o, now| {
                let data = o
                    .get("data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/type").unwrap_or("Opaque")),
                    json!(data),
                    age_cell(o, now),
                ]
            },
        ),
        ("", "ServiceAccount") => (
            vec![NAME, col("Secrets", "string"), col("Age", "string")],
            |o, now| {
                vec![
                    json!(name_of(o)),
                    json!(arr(o, "/secrets").len()),
                    age_cell(o, now),
                ]
            },
        ),
        ("", "Service") => (
            vec![
                NAME,
                col("Type", "string"),
                col("Cluster-IP", "string"),
                col("External-IP", "string"),
                col("Port(s)", "string"),
                col("Age", "string"),
                wide("Selector", "string"),
            ],
            service_row,
        ),
        ("", "Event") | ("events.k8s.io", "Event") => (
            vec![
                col("Last Seen", "string"),
                col("Type", "string"),
                col("Reason", "string"),
                col("Object", "string"),
                wide("Subobject", "string"),
                wide("Source", "string"),
                col("Message", "string"),
                wide("First Seen", "string"),
                wide("Count", "string"),
                wide("Name", "string"),
            ],
            event_row,
        ),
        ("", "PersistentVolumeClaim") => (
            vec![
                NAME,
                col("Status", "string"),
                col("Volume", "string"),
                col("Capacity", "string"),
                col("Access Modes", "string"),
                col("StorageClass", "string"),
                col("VolumeAttributesClass", "string"),
                col("Age", "string"),
                wide("VolumeMode", "string"),
            ],
            |o, now| {
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/status/phase").unwrap_or("Pending")),
                    json!(s(o, "/spec/volumeName").unwrap_or("")),
                    json!(s(o, "/status/capacity/storage").unwrap_or("")),
                    json!(access_modes(arr(o, "/status/accessModes"))),
                    json!(s(o, "/spec/storageClassName").unwrap_or("<unset>")),
                    json!("<unset>"),
                    age_cell(o, now),
                    json!(s(o, "/spec/volumeMode").unwrap_or("Filesystem")),
                ]
            },
        ),
        ("", "PersistentVolume") => (
            vec![
                NAME,
                col("Capacity", "string"),
                col("Access Modes", "string"),
                col("Reclaim Policy", "string"),
                col("Status", "string"),
                col("Claim", "string"),
                col("StorageClass", "string"),
                col("Reason", "string"),
                col("Age", "string"),
            ],
            |o, now| {
                let claim = match (
                    s(o, "/spec/claimRef/namespace"),
                    s(o, "/spec/claimRef/name"),
                ) {
                    (Some(ns), Some(n)) => format!("{ns}/{n}"),
                    _ => String::new(),
                };
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/spec/capacity/storage").unwrap_or("")),
                    json!(access_modes(arr(o, "/spec/accessModes"))),
                    json!(s(o, "/spec/persistentVolumeReclaimPolicy").unwrap_or("")),
                    json!(s(o, "/status/phase").unwrap_or("")),
                    json!(claim),
                    json!(s(o, "/spec/storageClassName").unwrap_or("")),
                    json!(s(o, "/status/reason").unwrap_or("")),
                    age_cell(o, now),
                ]
            },
        ),
        ("", "Endpoints") => (
            vec![NAME, col("Endpoints", "string"), col("Age", "string")],
            |o, now| {
                let mut eps = Vec::new();
                for subset in arr(o, "/subsets") {
                    for addr in arr(subset, "/addresses") {
                        for port in arr(subset, "/ports") {
                            eps.push(format!(
                                "{}:{}",
                                s(addr, "/ip").unwrap_or(""),
                                i(port, "/port")
                            ));
                        }
                    }
                }
                vec![
                    json!(name_of(o)),
                    json!(or_none(Some(&eps.join(",")))),
                    age_cell(o, now),
                ]
            },
        ),
        ("apps", "Deployment") => (
            vec![
                NAME,
                col("Ready", "string"),
                col("Up-to-date", "integer"),
                col("Available", "integer"),
                col("Age", "string"),
                wide("Containers", "string"),
                wide("Images", "string"),
                wide("Selector", "string"),
            ],
            |o, now| {
                let (containers, images) = containers_images(o);
                vec![
                    json!(name_of(o)),
                    json!(format!(
                        "{}/{}",
                        i(o, "/status/readyReplicas"),
                        i(o, "/spec/replicas")
                    )),
                    json!(i(o, "/status/updatedReplicas")),
                    json!(i(o, "/status/availableReplicas")),
                    age_cell(o, now),
                    json!(containers),
                    json!(images),
                    json!(selector_string(o.pointer("/spec/selector"))),
                ]
            },
        ),
        ("apps", "ReplicaSet") => (
            vec![
                NAME,
                col("Desired", "integer"),
                col("Current", "integer"),
                col("Ready", "integer"),
                col("Age", "string"),
                wide("Containers", "string"),
                wide("Images", "string"),
                wide("Selector", "string"),
            ],
            |o, now| {
                let (containers, images) = containers_images(o);
                vec![
                    json!(name_of(o)),
                    json!(i(o, "/spec/replicas")),
                    json!(i(o, "/status/replicas")),
                    json!(i(o, "/status/readyReplicas")),
                    age_cell(o, now),
                    json!(containers),
                    json!(images),
                    json!(selector_string(o.pointer("/spec/selector"))),
                ]
            },
        ),
        ("apps", "StatefulSet") => (
            vec![
                NAME,
                col("Ready", "string"),
                col("Age", "string"),
                wide("Containers", "string"),
                wide("Images", "string"),
            ],
            |o, now| {
                let (containers, images) = containers_images(o);
                vec![
                    json!(name_of(o)),
                    json!(format!(
                        "{}/{}",
                        i(o, "/status/readyReplicas"),
                        i(o, "/spec/replicas")
                    )),
                    age_cell(o, now),
                    json!(containers),
                    json!(images),
                ]
            },
        ),
        ("apps", "DaemonSet") => (
            vec![
                NAME,
                col("Desired", "integer"),
                col("Current", "integer"),
                col("Ready", "integer"),
                col("Up-to-date", "integer"),
                col("Available", "integer"),
                col("Node Selector", "string"),
                col("Age", "string"),
            ],
            |o, now| {
                let selector = o
                    .pointer("/spec/template/spec/nodeSelector")
                    .and_then(Value::as_object)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                vec![
                    json!(name_of(o)),
                    json!(i(o, "/status/desiredNumberScheduled")),
                    json!(i(o, "/status/currentNumberScheduled")),
                    json!(i(o, "/status/numberReady")),
                    json!(i(o, "/status/updatedNumberScheduled")),
                    json!(i(o, "/status/numberAvailable")),
                    json!(or_none(selector.as_deref())),
                    age_cell(o, now),
                ]
            },
        ),
        ("apps", "ControllerRevision") => (
            vec![
                NAME,
                col("Controller", "string"),
                col("Revision", "integer"),
                col("Age", "string"),
            ],
            |o, now| {
                let controller = arr(o, "/metadata/ownerReferences")
                    .iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
                    .map(|r| {
                        format!(
                            "{}/{}",
                            s(r, "/kind").unwrap_or("").to_lowercase(),
                            s(r, "/name").unwrap_or("")
                        )
                    })
                    .unwrap_or_else(|| "<none>".to_string());
                vec![
                    json!(name_of(o)),
                    json!(controller),
                    json!(i(o, "/revision")),
                    age_cell(o, now),
                ]
            },
        ),
        ("batch", "Job") => (
            vec![
                NAME,
                col("Status", "string"),
                col("Completions", "string"),
                col("Duration", "string"),
                col("Age", "string"),
            ],
            |o, now| {
                let conditions = arr(o, "/status/conditions");
                let has = |t: &str| {
                    conditions
                        .iter()
                        .any(|c| s(c, "/type") == Some(t) && s(c, "/status") == Some("True"))
                };
                let status = if has("Complete") {
                    "Complete"
                } else if has("Failed") {
                    "Failed"
                } else if o.pointer("/metadata/deletionTimestamp").is_some() {
                    "Terminating"
                } else if has("Suspended") {
                    "Suspended"
                } else {
                    "Running"
                };
                let completions = match o.pointer("/spec/completions").and_then(Value::as_i64) {
                    Some(c) => format!("{}/{c}", i(o, "/status/succeeded")),
                    None => format!(
                        "{}/1 of {}",
                        i(o, "/status/succeeded"),
                        i(o, "/spec/parallelism").max(1)
                    ),
                };
                let duration = match (s(o, "/status/startTime"), s(o, "/status/completionTime")) {
                    (Some(start), Some(end)) => age(
                        Some(start),
                        DateTime::parse_from_rfc3339(end)
                            .map(|t| t.with_timezone(&Utc))
                            .unwrap_or(now),
                    ),
                    (Some(start), None) => age(Some(start), now),
                    _ => String::new(),
                };
                vec![
                    json!(name_of(o)),
                    json!(status),
                    json!(completions),
                    json!(duration),
                    age_cell(o, now),
                ]
            },
        ),
        ("batch", "CronJob") => (
            vec![
                NAME,
                col("Schedule", "string"),
                col("Timezone", "string"),
                col("Suspend", "boolean"),
                col("Active", "integer"),
                col("Last Schedule", "string"),
                col("Age", "string"),
            ],
            |o, now| {
                let last = s(o, "/status/lastScheduleTime")
                    .map(|t| age(Some(t), now))
                    .unwrap_or_else(|| "<none>".into());
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/spec/schedule").unwrap_or("")),
                    json!(or_none(s(o, "/spec/timeZone"))),
                    json!(o
                        .pointer("/spec/suspend")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)),
                    json!(arr(o, "/status/active").len()),
                    json!(last),
                    age_cell(o, now),
                ]
            },
        ),
        ("coordination.k8s.io", "Lease") => (
            vec![NAME, col("Holder", "string"), col("Age", "string")],
            |o, now| {
                vec![
                    json!(name_of(o)),
                    json!(s(o, "/spec/holderIdentity").unwrap_or("")),
                    age_cell(o, now),
                ]
            },
        ),
        ("policy", "PodDisruptionBudget") => (
            vec![
                NAME,
                col("Min Available", "string"),
                col("Max Unavailable", "string"),
                col("Allowed Disruptions", "integer"),
                col("Age", "string"),
            ],
            |o, now| {
                let show = |p: &str| match o.pointer(p) {
                    Some(Value::String(v)) => v.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    _ => "N/A".to_string(),
                };
                vec![
                    json!(name_of(o)),
                    json!(show("/spec/minAvailable")),
                    json!(show("/spec/maxUnavailable")),
                    json!(i(o, "/status/disruptionsAllowed")),
                    age_cell(o, now),
                ]
            },
        ),
        ("admissionregistration.k8s.io", _) => (
            vec![NAME, col("Webhooks", "integer"), col("Age", "string")],
            |o, now| {
                vec![
                    json!(name_of(o)),
                    json!(arr(o, "/webhooks").len()),
                    age_cell(o, now),
                ]
            },
        ),
        _ => (
            vec![
                NAME,
                Column {
                    name: "Created At",
                    column_type: "date",
                    format: "",
                    priority: 0,
                    description: "",
                },
            ],
            |o, _| vec![json!(name_of(o)), json!(created(o).unwrap_or(""))],
        ),
    }
}

fn access_modes(modes: &[Value]) -> String {
    let short: Vec<&str> = modes
        .iter()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",")
}

fn containers_images(obj: &Value) -> (String, String) {
    let containers = arr(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().filter_map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().filter_map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// A label selector (`matchLabels` + `matchExpressions`) as a string.
pub fn selector_string(selector: Option<&Value>) -> String {
    let Some(selector) = selector else {
        return "<none>".into();
    };
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        parts.extend(
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))),
        );
    }
    for expr in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let key = s(expr, "/key").unwrap_or("");
        let values: Vec<&str> = arr(expr, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        match s(expr, "/operator").unwrap_or("") {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => {}
        }
    }
    if parts.is_empty() {
        "<none>".into()
    } else {
        parts.join(",")
    }
}

fn pod_row(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = arr(pod, "/spec/containers").len();
    let mut ready = 0;
    let mut restarts = 0;
    let mut last_restart: Option<String> = None;
    let phase = s(pod, "/status/phase").unwrap_or("");
    let mut reason = s(pod, "/status/reason")
        .filter(|r| !r.is_empty())
        .unwrap_or(phase)
        .to_string();
    let note_restart = |c: &Value, last: &mut Option<String>| {
        if let Some(t) = s(c, "/lastState/terminated/finishedAt") {
            if last.as_deref().is_none_or(|l| t > l) {
                *last = Some(t.to_string());
            }
        }
    };
    let init_statuses = arr(pod, "/status/initContainerStatuses");
    let init_specs = arr(pod, "/spec/initContainers");
    let mut initializing = false;
    for (idx, c) in init_statuses.iter().enumerate() {
        restarts += i(c, "/restartCount");
        note_restart(c, &mut last_restart);
        let sidecar = init_specs
            .get(idx)
            .and_then(|spec| s(spec, "/restartPolicy"))
            == Some("Always");
        if c.pointer("/state/terminated").is_some() && i(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if c.pointer("/state/terminated").is_some() {
            reason = match s(c, "/state/terminated/reason").filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if i(c, "/state/terminated/signal") != 0 => {
                    format!("Init:Signal:{}", i(c, "/state/terminated/signal"))
                }
                None => format!("Init:ExitCode:{}", i(c, "/state/terminated/exitCode")),
            };
        } else if let Some(r) =
            s(c, "/state/waiting/reason").filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{idx}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }
    let initialized_true = arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == Some("Initialized") && s(c, "/status") == Some("True"));
    if !initializing || initialized_true {
        restarts = 0;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += i(c, "/restartCount");
            note_restart(c, &mut last_restart);
            if let Some(r) = s(c, "/state/waiting/reason").filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if let Some(r) = s(c, "/state/terminated/reason").filter(|r| !r.is_empty()) {
                reason = r.to_string();
            } else if c.pointer("/state/terminated").is_some() {
                reason = if i(c, "/state/terminated/signal") != 0 {
                    format!("Signal:{}", i(c, "/state/terminated/signal"))
                } else {
                    format!("ExitCode:{}", i(c, "/state/terminated/exitCode"))
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let ready_condition = arr(pod, "/status/conditions")
                .iter()
                .any(|c| s(c, "/type") == Some("Ready") && s(c, "/status") == Some("True"));
            reason = if ready_condition {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        if s(pod, "/status/reason") == Some("NodeLost") {
            reason = "Unknown".into();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".into();
        }
    }
    let restarts_cell = match &last_restart {
        Some(t) => json!(format!("{restarts} ({} ago)", age(Some(t), now))),
        None => json!(restarts),
    };
    let gates = arr(pod, "/spec/readinessGates");
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr(pod, "/status/conditions");
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions.iter().any(|c| {
                    s(c, "/type") == s(g, "/conditionType") && s(c, "/status") == Some("True")
                })
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(name_of(pod)),
        json!(format!("{ready}/{total}")),
        json!(reason),
        restarts_cell,
        json!(age(created(pod), now)),
        json!(or_none(s(pod, "/status/podIP"))),
        json!(or_none(s(pod, "/spec/nodeName"))),
        json!(or_none(s(pod, "/status/nominatedNodeName"))),
        json!(gates_cell),
    ]
}

fn node_row(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut status = Vec::new();
    if let Some(ready) = arr(node, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == Some("Ready"))
    {
        status.push(if s(ready, "/status") == Some("True") {
            "Ready"
        } else {
            "NotReady"
        });
    }
    if status.is_empty() {
        status.push("Unknown");
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled");
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                        (!role.is_empty()).then(|| role.to_string())
                    } else if k == "kubernetes.io/role" {
                        v.as_str().filter(|r| !r.is_empty()).map(String::from)
                    } else {
                        None
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    roles.dedup();
    let address = |t: &str| {
        arr(node, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == Some(t))
            .and_then(|a| s(a, "/address"))
            .map(String::from)
            .unwrap_or_else(|| "<none>".into())
    };
    vec![
        json!(name_of(node)),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        json!(age(created(node), now)),
        json!(s(node, "/status/nodeInfo/kubeletVersion").unwrap_or("")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(s(node, "/status/nodeInfo/osImage").unwrap_or("<unknown>")),
        json!(s(node, "/status/nodeInfo/kernelVersion").unwrap_or("<unknown>")),
        json!(s(node, "/status/nodeInfo/containerRuntimeVersion").unwrap_or("<unknown>")),
    ]
}

fn service_row(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let protocol = s(p, "/protocol").unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) => format!("{}:{np}/{protocol}", i(p, "/port")),
                None => format!("{}/{protocol}", i(p, "/port")),
            }
        })
        .collect();
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        });
    let external: Vec<&str> = arr(svc, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| s(i, "/ip"))
        .collect();
    let svc_type = s(svc, "/spec/type").unwrap_or("ClusterIP");
    let external_cell = if !external.is_empty() {
        external.join(",")
    } else if svc_type == "LoadBalancer" {
        "<pending>".into()
    } else {
        "<none>".into()
    };
    vec![
        json!(name_of(svc)),
        json!(svc_type),
        json!(or_none(s(svc, "/spec/clusterIP"))),
        json!(external_cell),
        json!(or_none(Some(&ports.join(",")))),
        json!(age(created(svc), now)),
        json!(or_none(selector.as_deref())),
    ]
}

fn event_row(ev: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let regarding = ev
        .get("involvedObject")
        .or_else(|| ev.get("regarding"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let last = s(ev, "/lastTimestamp")
        .or_else(|| s(ev, "/deprecatedLastTimestamp"))
        .or_else(|| s(ev, "/eventTime"))
        .or_else(|| s(ev, "/series/lastObservedTime"))
        .or_else(|| created(ev));
    let first = s(ev, "/firstTimestamp")
        .or_else(|| s(ev, "/deprecatedFirstTimestamp"))
        .or_else(|| s(ev, "/eventTime"));
    let source = s(ev, "/source/component")
        .or_else(|| s(ev, "/reportingController"))
        .or_else(|| s(ev, "/reportingComponent"))
        .unwrap_or("");
    let count = ev
        .get("count")
        .or_else(|| ev.get("deprecatedCount"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    vec![
        json!(age(last, now)),
        json!(s(ev, "/type").unwrap_or("")),
        json!(s(ev, "/reason").unwrap_or("")),
        json!(format!(
            "{}/{}",
            s(&regarding, "/kind").unwrap_or("").to_lowercase(),
            s(&regarding, "/name").unwrap_or("")
        )),
        json!(s(&regarding, "/fieldPath").unwrap_or("")),
        json!(source),
        json!(s(ev, "/message").or_else(|| s(ev, "/note")).unwrap_or("")),
        json!(age(first, now)),
        json!(count),
        json!(name_of(ev)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(kind: &str, group: &str, obj: Value) -> Vec<Value> {
        let (_, row) = printer(kind, group);
        row(&obj, Utc::now())
    }

    #[test]
    fn pod_status_column() {
        let pending = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending"}});
        assert_eq!(cells("Pod", "", pending)[2], "Pending");
        let creating = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Pending",
            "containerStatuses": [{"name": "a", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        assert_eq!(cells("Pod", "", creating)[2], "ContainerCreating");
        let running = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "a", "ready": true, "restartCount": 2, "state": {"running": {}}},
                                  {"name": "b", "ready": false, "restartCount": 0, "state": {"running": {}}}]}});
        let row = cells("Pod", "", running);
        assert_eq!(row[1], "1/2");
        assert_eq!(row[2], "Running");
        assert_eq!(row[3], 2);
        let terminating = json!({"metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}, "spec": {"containers": []}, "status": {"phase": "Running"}});
        assert_eq!(cells("Pod", "", terminating)[2], "Terminating");
        let completed = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}, "status": {"phase": "Succeeded",
            "containerStatuses": [{"name": "a", "restartCount": 0, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}});
        assert_eq!(cells("Pod", "", completed)[2], "Completed");
    }

    #[test]
    fn node_status_and_roles() {
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}},
            "spec": {"unschedulable": true},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.31.9"}}});
        let row = cells("Node", "", node);
        assert_eq!(row[1], "Ready,SchedulingDisabled");
        assert_eq!(row[2], "control-plane");
        assert_eq!(row[4], "v1.31.9");
        let bare = json!({"metadata": {"name": "n"}, "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let row = cells("Node", "", bare);
        assert_eq!(row[1], "NotReady");
        assert_eq!(row[2], "<none>");
    }
}
