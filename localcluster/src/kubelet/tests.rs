//! Step-by-step tests of the kubelet simulator's state machine and the status it reports.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::plan::advance;
use super::status::{pod_status, status_patch};
use crate::latency::LatencyModel;
use crate::runtime::NodeState;

fn pod(extra_meta: serde_json::Value, spec: serde_json::Value) -> Pod {
    let mut meta = json!({"name": "p", "namespace": "default", "uid": "uid-1"});
    if let (Some(m), Some(extra)) = (meta.as_object_mut(), extra_meta.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}),
    )
    .expect("valid pod")
}

fn model() -> LatencyModel {
    LatencyModel {
        image_pull_ms_per_mb: 10,
        default_image_mb: 10,
        container_start_ms: 100,
        readiness_delay_ms: 100,
        schedule_delay_ms: 0,
        container_stop_ms: 50,
    }
}

/// Runs the simulator from `start` until nothing is scheduled or `until`, carrying status like
/// the API server would, and returns the final status.
fn run(
    pod: &mut Pod,
    state: &mut NodeState,
    start: Timestamp,
    until: Timestamp,
    m: &LatencyModel,
) -> (PodStatus, Vec<String>) {
    let mut now = start;
    let mut events = Vec::new();
    loop {
        let step = advance(pod, state, || "10.244.0.2".into(), now, m);
        events.extend(step.events.iter().map(|e| e.reason.to_string()));
        let status = pod_status(pod, state.pods.get("uid-1"), "192.168.0.1", true, now, m);
        pod.status = Some(status.clone());
        match step.next_wakeup {
            Some(at) if at <= until => now = at.max(now + Duration::from_millis(1)),
            _ => return (status, events),
        }
    }
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().expect("timestamp")
}

fn ready(status: &PodStatus) -> bool {
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[test]
fn a_new_pod_pulls_starts_and_becomes_ready_in_model_time() {
    let m = model();
    let mut p = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let mut state = NodeState::default();
    // pull 100 ms + start 100 ms + readiness 100 ms
    let (early, early_events) = run(
        &mut p,
        &mut state,
        t0(),
        t0() + Duration::from_millis(150),
        &m,
    );
    assert_eq!(early_events, ["Pulling", "Pulled", "Created"]);
    assert_eq!(early.phase.as_deref(), Some("Pending"));
    assert!(!ready(&early));
    let (status, events) = run(
        &mut p,
        &mut state,
        t0() + Duration::from_millis(150),
        t0() + Duration::from_secs(1),
        &m,
    );
    assert_eq!(status.phase.as_deref(), Some("Running"));
    assert!(ready(&status));
    assert_eq!(events, ["Started"]);
    let cs = &status.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(
        (cs.ready, cs.restart_count, cs.image.as_str()),
        (true, 0, "example.com/a:v1")
    );
    assert!(cs.image_id.starts_with("example.com/a@sha256:"));
    assert!(cs
        .container_id
        .as_deref()
        .is_some_and(|id| id.starts_with("containerd://")));
    assert_eq!(state.pulls.len(), 1);
    assert!(state.images.contains_key("example.com/a:v1"));
}

#[test]
fn a_cached_image_costs_no_pull() {
    let m = model();
    let mut state = NodeState::default();
    let mut first = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    run(
        &mut first,
        &mut state,
        t0(),
        t0() + Duration::from_secs(1),
        &m,
    );
    state.pods.clear();
    let mut second = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    // start 100 ms + readiness 100 ms, no pull
    let (status, events) = run(
        &mut second,
        &mut state,
        t0(),
        t0() + Duration::from_millis(210),
        &m,
    );
    assert!(ready(&status));
    assert_eq!(events[0], "Pulled");
    assert_eq!(state.pulls.len(), 1);
}

#[test]
fn a_second_pull_of_an_image_joins_the_one_under_way() {
    let m = model(); // 100 ms pulls
    let mut state = NodeState::default();
    let first = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let step = advance(&first, &mut state, || "10.244.0.2".into(), t0(), &m);
    assert_eq!(step.next_wakeup, Some(t0() + Duration::from_millis(100)));
    // 60 ms later another pod on the node wants the same image: it waits for the same fetch.
    let second = pod(
        json!({"name": "q", "uid": "uid-2"}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let later = t0() + Duration::from_millis(60);
    let step = advance(&second, &mut state, || "10.244.0.3".into(), later, &m);
    assert_eq!(step.next_wakeup, Some(t0() + Duration::from_millis(100)));
    // Once the fetch is done, a third pod finds the image cached even though neither puller's
    // own step has run since.
    let third = pod(
        json!({"name": "r", "uid": "uid-3"}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let after = t0() + Duration::from_millis(120);
    let step = advance(&third, &mut state, || "10.244.0.4".into(), after, &m);
    let reasons: Vec<&str> = step.events.iter().map(|e| e.reason).collect();
    assert_eq!(reasons, ["Pulled", "Created"]);
    assert!(state.images.contains_key("example.com/a:v1"));
}

#[test]
fn changing_one_image_restarts_only_that_container_in_place() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}, {"name": "b", "image": "example.com/b:v1"}]}),
    );
    run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    let before_b = state.pods["uid-1"].containers["b"].id.clone();
    p.spec.as_mut().expect("spec").containers[0].image = Some("example.com/a:v2".into());
    let later = t0() + Duration::from_secs(2);
    let (status, events) = run(
        &mut p,
        &mut state,
        later,
        later + Duration::from_secs(1),
        &m,
    );
    let statuses = status.container_statuses.clone().expect("statuses");
    assert_eq!(
        (statuses[0].restart_count, statuses[0].image.as_str()),
        (1, "example.com/a:v2")
    );
    assert_eq!(statuses[1].restart_count, 0);
    assert_eq!(state.pods["uid-1"].containers["b"].id, before_b);
    assert!(statuses[0]
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .is_some());
    assert_eq!(events[0], "Killing");
    assert!(ready(&status));
}

#[test]
fn graceful_deletion_stops_containers_then_asks_for_final_delete() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        t0() + Duration::from_secs(31),
    ));
    p.metadata.deletion_grace_period_seconds = Some(30);
    let at = t0() + Duration::from_secs(1);
    let first = advance(&p, &mut state, || unreachable!(), at, &m);
    assert!(!first.delete_pod);
    assert_eq!(first.events[0].reason, "Killing");
    let done = advance(
        &p,
        &mut state,
        || unreachable!(),
        at + Duration::from_millis(50),
        &m,
    );
    assert!(done.delete_pod);
    assert!(state.pods.is_empty());
}

#[test]
fn job_like_pods_succeed_or_fail_by_their_declared_exit_code() {
    let m = model();
    for (code, phase) in [("0", "Succeeded"), ("3", "Failed")] {
        let mut state = NodeState::default();
        let mut p = pod(
            json!({"annotations": {"kruise-local.kruise.io/run-seconds": "1", "kruise-local.kruise.io/exit-code": code}}),
            json!({"restartPolicy": "Never", "containers": [{"name": "a", "image": "example.com/a:v1"}]}),
        );
        let (status, _) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(5), &m);
        assert_eq!(status.phase.as_deref(), Some(phase), "exit code {code}");
        assert!(!ready(&status));
    }
}

#[test]
fn readiness_gates_hold_ready_until_their_condition_is_true() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"readinessGates": [{"conditionType": "InPlaceUpdateReady"}], "containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let (status, _) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    assert!(!ready(&status));
    let r = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(r.reason.as_deref(), Some("ReadinessGatesNotReady"));
    let mut conditions = status.conditions.clone().unwrap_or_default();
    conditions.push(
        serde_json::from_value(json!({"type": "InPlaceUpdateReady", "status": "True"}))
            .expect("condition"),
    );
    p.status.as_mut().expect("status").conditions = Some(conditions);
    let (status, _) = run(
        &mut p,
        &mut state,
        t0() + Duration::from_secs(1),
        t0() + Duration::from_secs(2),
        &m,
    );
    assert!(ready(&status));
    assert!(status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "InPlaceUpdateReady" && c.status == "True"));
}

#[test]
fn status_patch_never_writes_back_a_readiness_gate_condition() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"readinessGates": [{"conditionType": "InPlaceUpdateReady"}], "containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let (mut status, _) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    // The pod as kubelet last saw it: the gate True. The controller may have set it False since.
    status.conditions.get_or_insert_with(Vec::new).push(
        serde_json::from_value(json!({"type": "InPlaceUpdateReady", "status": "True"}))
            .expect("condition"),
    );
    p.status = Some(status);
    let now = t0() + Duration::from_secs(2);
    let status = pod_status(&p, None, "10.0.0.1", true, now, &m);
    let patch = status_patch("uid-1", &status);
    let types: Vec<&str> = patch["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert!(
        types.contains(&"Ready") && types.contains(&"PodScheduled"),
        "{types:?}"
    );
    assert!(!types.contains(&"InPlaceUpdateReady"), "{types:?}");
    assert_eq!(patch["metadata"]["uid"], "uid-1");
}

#[test]
fn unpullable_images_wait_with_err_image_pull() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/unpullable:v1"}]}),
    );
    let (status, events) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    let waiting = status.container_statuses.expect("statuses")[0]
        .state
        .clone()
        .and_then(|s| s.waiting)
        .expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("ErrImagePull"));
    assert!(events.contains(&"Failed".to_string()));
    assert_eq!(status.phase.as_deref(), Some("Pending"));
}

#[test]
fn init_containers_run_to_completion_first() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"initContainers": [{"name": "init", "image": "example.com/i:v1"}], "containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let (status, _) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(2), &m);
    assert!(ready(&status));
    let init = &status.init_container_statuses.expect("init statuses")[0];
    assert_eq!(
        init.state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .map(|t| t.exit_code),
        Some(0)
    );
    assert!(status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Initialized" && c.status == "True"));
}

#[test]
fn pods_on_a_not_ready_node_report_not_ready() {
    let m = model();
    let mut state = NodeState::default();
    let mut p = pod(
        json!({}),
        json!({"containers": [{"name": "a", "image": "example.com/a:v1"}]}),
    );
    let (status, _) = run(&mut p, &mut state, t0(), t0() + Duration::from_secs(1), &m);
    assert!(ready(&status));
    let down = pod_status(
        &p,
        state.pods.get("uid-1"),
        "192.168.0.1",
        false,
        t0() + Duration::from_secs(2),
        &m,
    );
    assert!(!ready(&down));
    assert_eq!(down.phase.as_deref(), Some("Running"));
    assert!(!down.container_statuses.expect("statuses")[0].ready);
}
