//! The pod status the kubelet simulator reports, computed from the simulated runtime (pure).

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::latency::LatencyModel;
use crate::runtime::{ContainerPhase, ContainerRuntime, PodRuntime};

/// Condition types the kubelet owns; every other condition on the pod is kept as it is.
const KUBELET_CONDITIONS: [&str; 4] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
];

fn is_ready(rt: &ContainerRuntime, now: Timestamp, model: &LatencyModel) -> bool {
    match rt.phase {
        ContainerPhase::Running { started_at } => started_at + model.readiness_delay() <= now,
        _ => false,
    }
}

fn container_id(rt: &ContainerRuntime) -> Option<String> {
    match rt.phase {
        ContainerPhase::Pulling { .. } | ContainerPhase::PullFailed { .. } => None,
        _ => Some(format!("containerd://{}", rt.id)),
    }
}

fn state(rt: &ContainerRuntime) -> ContainerState {
    match &rt.phase {
        ContainerPhase::Pulling { .. } | ContainerPhase::Creating { .. } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".into()),
                message: None,
            }),
            ..Default::default()
        },
        ContainerPhase::PullFailed { message, .. } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ErrImagePull".into()),
                message: Some(message.clone()),
            }),
            ..Default::default()
        },
        ContainerPhase::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        // Still running until it exits.
        ContainerPhase::Stopping { .. } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(rt.created_at)),
            }),
            ..Default::default()
        },
        ContainerPhase::Exited {
            exit_code,
            reason,
            started_at,
            finished_at,
        } => ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: *exit_code,
                reason: Some(reason.clone()),
                started_at: started_at.map(Time),
                finished_at: Some(Time(*finished_at)),
                container_id: container_id(rt),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

fn container_status(
    rt: &ContainerRuntime,
    now: Timestamp,
    model: &LatencyModel,
) -> ContainerStatus {
    let pulled = !matches!(
        rt.phase,
        ContainerPhase::Pulling { .. } | ContainerPhase::PullFailed { .. }
    );
    ContainerStatus {
        name: rt.name.clone(),
        image: rt.image.clone(),
        image_id: if pulled {
            rt.image_id.clone()
        } else {
            String::new()
        },
        container_id: container_id(rt),
        ready: is_ready(rt, now, model),
        started: Some(matches!(
            rt.phase,
            ContainerPhase::Running { .. } | ContainerPhase::Stopping { .. }
        )),
        restart_count: rt.restart_count,
        state: Some(state(rt)),
        last_state: rt.last_termination.as_ref().map(|t| ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: t.exit_code,
                reason: Some(t.reason.clone()),
                started_at: t.started_at.map(Time),
                finished_at: Some(Time(t.finished_at)),
                container_id: Some(format!("containerd://{}", t.container_id)),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn waiting_status(name: &str, image: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.to_string(),
        image: image.to_string(),
        image_id: String::new(),
        ready: false,
        started: Some(false),
        restart_count: 0,
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(
                    if image.is_empty() {
                        "ContainerCreating"
                    } else {
                        "PodInitializing"
                    }
                    .into(),
                ),
                message: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in containers {
        let r = c.resources.as_ref();
        let requests = r.and_then(|r| r.requests.as_ref());
        let limits = r.and_then(|r| r.limits.as_ref());
        any |= requests.is_some_and(|m| !m.is_empty()) || limits.is_some_and(|m| !m.is_empty());
        for res in ["cpu", "memory"] {
            let l = limits.and_then(|m| m.get(res));
            let q = requests.and_then(|m| m.get(res)).or(l);
            guaranteed &= l.is_some() && q == l;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let prior = old.iter().find(|c| c.type_ == type_);
    let transition = match prior {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: if ok { None } else { reason.map(str::to_string) },
        message: if ok { None } else { message },
        last_transition_time: transition,
        last_probe_time: None,
        observed_generation: None,
    }
}

/// The status kubelet would report for `pod` given its runtime `rt` on a node at `node_ip`.
/// On a NotReady node every container reports not ready, as the node lifecycle controller marks them.
pub fn pod_status(
    pod: &Pod,
    rt: Option<&PodRuntime>,
    node_ip: &str,
    node_ready: bool,
    now: Timestamp,
    model: &LatencyModel,
) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let lookup = |name: &str| rt.and_then(|r| r.containers.get(name));
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            lookup(&c.name).map_or_else(
                || waiting_status(&c.name, c.image.as_deref().unwrap_or_default()),
                |r| container_status(r, now, model),
            )
        })
        .collect();
    let initialized = spec.init_containers.iter().flatten().all(|c| {
        lookup(&c.name)
            .is_some_and(|r| matches!(r.phase, ContainerPhase::Exited { exit_code: 0, .. }))
    });
    let mut statuses: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| match lookup(&c.name) {
            Some(r) => container_status(r, now, model),
            None => {
                let mut s = waiting_status(&c.name, c.image.as_deref().unwrap_or_default());
                if initialized {
                    s.state = Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("ContainerCreating".into()),
                            message: None,
                        }),
                        ..Default::default()
                    });
                }
                s
            }
        })
        .collect();

    if !node_ready {
        for s in &mut statuses {
            s.ready = false;
        }
    }
    let mains: Vec<Option<&ContainerRuntime>> =
        spec.containers.iter().map(|c| lookup(&c.name)).collect();
    let all_exited = !mains.is_empty()
        && mains
            .iter()
            .all(|m| m.is_some_and(|r| matches!(r.phase, ContainerPhase::Exited { .. })));
    let exit_codes: Vec<i32> = mains
        .iter()
        .filter_map(|m| match m.map(|r| &r.phase) {
            Some(ContainerPhase::Exited { exit_code, .. }) => Some(*exit_code),
            _ => None,
        })
        .collect();
    let terminal = all_exited
        && match restart_policy {
            "Never" => true,
            "OnFailure" => exit_codes.iter().all(|c| *c == 0),
            _ => false,
        };
    let ever_started = mains.iter().flatten().any(|r| {
        r.restart_count > 0
            || matches!(
                r.phase,
                ContainerPhase::Running { .. }
                    | ContainerPhase::Stopping { .. }
                    | ContainerPhase::Exited { .. }
            )
    });
    let phase = if rt.is_none() {
        "Pending"
    } else if terminal {
        if exit_codes.iter().all(|c| *c == 0) {
            "Succeeded"
        } else {
            "Failed"
        }
    } else if initialized && ever_started {
        "Running"
    } else {
        "Pending"
    };

    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let containers_ready = unready.is_empty() && !statuses.is_empty();
    let gates: Vec<&str> = spec
        .readiness_gates
        .iter()
        .flatten()
        .map(|g| g.condition_type.as_str())
        .collect();
    let missing_gate = gates.iter().find(|g| {
        !old_conditions
            .iter()
            .any(|c| &c.type_ == *g && c.status == "True")
    });
    let ready = containers_ready && missing_gate.is_none() && !terminal;

    let mut conditions: Vec<PodCondition> = Vec::new();
    conditions.push(condition(
        &old_conditions,
        "PodReadyToStartContainers",
        rt.is_some(),
        None,
        None,
        now,
    ));
    conditions.push(condition(
        &old_conditions,
        "Initialized",
        initialized,
        Some("ContainersNotInitialized"),
        Some(format!(
            "containers with incomplete status: [{}]",
            init_statuses.iter().filter(|s| !matches!(s.state.as_ref().and_then(|s| s.terminated.as_ref()), Some(t) if t.exit_code == 0)).map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
        )),
        now,
    ));
    let (reason, message) = if terminal {
        (Some("PodCompleted"), None)
    } else if !node_ready {
        (
            Some("NodeNotReady"),
            Some("the node this pod runs on is not ready".to_string()),
        )
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    conditions.push(condition(
        &old_conditions,
        "ContainersReady",
        containers_ready && !terminal,
        reason,
        message.clone(),
        now,
    ));
    let (ready_reason, ready_message) = match (containers_ready && !terminal, missing_gate) {
        (true, Some(g)) => {
            let exists = old_conditions.iter().any(|c| c.type_ == *g);
            let msg = if exists {
                format!("the status of pod readiness gate \"{g}\" is not \"True\", but False")
            } else {
                format!("corresponding condition of pod readiness gate \"{g}\" does not exist.")
            };
            (Some("ReadinessGatesNotReady"), Some(msg))
        }
        _ => (reason, message),
    };
    conditions.push(condition(
        &old_conditions,
        "Ready",
        ready,
        ready_reason,
        ready_message,
        now,
    ));
    // Keep PodScheduled first and every condition owned by someone else (readiness gates, ...).
    // The pod is bound to this node, so it is scheduled whatever an earlier attempt said.
    let mut merged = vec![condition(
        &old_conditions,
        "PodScheduled",
        true,
        None,
        None,
        now,
    )];
    merged.extend(conditions);
    merged.extend(
        old_conditions
            .iter()
            .filter(|c| {
                c.type_ != "PodScheduled" && !KUBELET_CONDITIONS.contains(&c.type_.as_str())
            })
            .cloned(),
    );

    let pod_ip = rt.map(|r| r.pod_ip.clone());
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(merged),
        host_ip: Some(node_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: node_ip.to_string(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: old
            .start_time
            .clone()
            .or_else(|| rt.map(|r| Time(r.created_at))),
        qos_class: Some(qos_class(pod).to_string()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..old
    }
}

/// The strategic-merge patch kubelet sends for `status`: only the conditions kubelet owns, so
/// a condition another controller owns (a readiness gate such as `InPlaceUpdateReady`) is never
/// written back from this, possibly stale, view of the pod.
pub fn status_patch(uid: &str, status: &PodStatus) -> serde_json::Value {
    let mut status = status.clone();
    if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| {
            c.type_ == "PodScheduled" || KUBELET_CONDITIONS.contains(&c.type_.as_str())
        });
    }
    serde_json::json!({
        "metadata": {"uid": uid},
        "status": status,
    })
}
