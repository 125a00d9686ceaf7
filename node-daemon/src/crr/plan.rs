//! Pure decisions of a container recreate request on the node: which containers to kill now and
//! how each container's recreation stands, from what the runtime reports.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use kruise_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequestContainerRecreateState as RecreateState, ContainerRecreateRequestSpec,
};

pub const PENDING: &str = "Pending";
pub const RECREATING: &str = "Recreating";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";
pub const COMPLETED: &str = "Completed";

/// A container as the runtime reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeContainer {
    pub id: String,
    pub running: bool,
    /// Nanoseconds since the epoch at which it started (0 if it has not).
    pub started_at: i64,
}

/// What to do next.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Containers to stop now: (name, container id).
    pub kill: Vec<(String, String)>,
    /// Every container reached Succeeded or Failed.
    pub done: bool,
}

fn strip_runtime(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, rest)| rest)
}

/// Annotation the agent sets (an RFC 3339 time) once it marked the pod not-ready for a request
/// with `unreadyGracePeriodSeconds`.
pub const UNREADY_ACQUIRED: &str = "crr.apps.kruise.io/unready-acquired";

/// Whether containers may be stopped: the pod was marked not-ready at `acquired` and `grace`
/// seconds have passed since.
pub fn unready_grace_passed(acquired: Option<Timestamp>, grace: i64, now: Timestamp) -> bool {
    acquired.is_some_and(|t| now.duration_since(t).as_secs_f64() >= grace.max(0) as f64)
}

/// Initial per-container states, all Pending, in spec order.
pub fn initial_states(spec: &ContainerRecreateRequestSpec) -> Vec<RecreateState> {
    spec.containers
        .iter()
        .map(|c| RecreateState {
            name: c.name.clone(),
            phase: PENDING.into(),
            message: None,
            is_killed: None,
        })
        .collect()
}

/// The container ids recreation is measured against: the webhook's `statusContext` when set,
/// else what the runtime ran when the request was first seen.
pub fn baseline(
    spec: &ContainerRecreateRequestSpec,
    observed: &BTreeMap<String, RuntimeContainer>,
) -> BTreeMap<String, String> {
    spec.containers
        .iter()
        .filter_map(|c| {
            let id = c
                .status_context
                .as_ref()
                .map(|s| strip_runtime(&s.container_id).to_string())
                .filter(|id| !id.is_empty())
                .or_else(|| observed.get(&c.name).map(|r| r.id.clone()))?;
            Some((c.name.clone(), id))
        })
        .collect()
}

/// Advances `states` given the runtime's view at `now_ns`.
pub fn step(
    spec: &ContainerRecreateRequestSpec,
    states: &mut [RecreateState],
    baseline: &BTreeMap<String, String>,
    observed: &BTreeMap<String, RuntimeContainer>,
    now_ns: i64,
) -> Step {
    let strategy = spec.strategy.clone().unwrap_or_default();
    let ordered = strategy.ordered_recreate.unwrap_or(false);
    let force = strategy.force_recreate.unwrap_or(false);
    let fail_fast = strategy.failure_policy.as_deref().unwrap_or("Fail") == "Fail";
    let min_started_ns =
        i64::from(strategy.min_started_seconds.unwrap_or(0).max(0)) * 1_000_000_000;
    let mut out = Step::default();
    let mut earlier_unfinished = false;
    let mut failed_seen = states.iter().any(|s| s.phase == FAILED);
    for st in states.iter_mut() {
        if st.phase == SUCCEEDED || st.phase == FAILED {
            continue;
        }
        if fail_fast && failed_seen && st.phase == PENDING {
            st.phase = FAILED.into();
            st.message =
                Some("aborted: an earlier container failed and failurePolicy is Fail".into());
            continue;
        }
        let Some(current) = observed.get(&st.name) else {
            st.phase = FAILED.into();
            st.message = Some(format!("container {} not found in the runtime", st.name));
            failed_seen = true;
            continue;
        };
        let recreated = baseline.get(&st.name).is_some_and(|b| *b != current.id);
        if recreated {
            st.phase = RECREATING.into();
            if current.running && now_ns - current.started_at >= min_started_ns {
                st.phase = SUCCEEDED.into();
                st.message = None;
            } else {
                earlier_unfinished = true;
            }
            continue;
        }
        if st.is_killed == Some(true) {
            // Stopped; waiting for the kubelet to start the new container.
            earlier_unfinished = true;
            continue;
        }
        if ordered && earlier_unfinished {
            continue;
        }
        if !current.running && !force {
            st.message = Some(
                "container is not running yet; waiting (set forceRecreate to kill it anyway)"
                    .into(),
            );
            earlier_unfinished = true;
            continue;
        }
        st.phase = RECREATING.into();
        st.is_killed = Some(true);
        st.message = None;
        out.kill.push((st.name.clone(), current.id.clone()));
        earlier_unfinished = true;
    }
    out.done = states
        .iter()
        .all(|s| s.phase == SUCCEEDED || s.phase == FAILED);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn unready_grace_waits_for_the_agent_and_the_period() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        let now = at("2026-01-01T00:00:05Z");
        assert!(
            !super::unready_grace_passed(None, 0, now),
            "not acquired yet"
        );
        assert!(!super::unready_grace_passed(
            Some(at("2026-01-01T00:00:03Z")),
            3,
            now
        ));
        assert!(super::unready_grace_passed(
            Some(at("2026-01-01T00:00:02Z")),
            3,
            now
        ));
    }

    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ContainerRecreateRequestSpec {
        serde_json::from_value(v).expect("valid CRR spec")
    }

    fn running(id: &str, started_at: i64) -> RuntimeContainer {
        RuntimeContainer {
            id: id.into(),
            running: true,
            started_at,
        }
    }

    fn phases(states: &[RecreateState]) -> Vec<(&str, &str)> {
        states
            .iter()
            .map(|s| (s.name.as_str(), s.phase.as_str()))
            .collect()
    }

    #[test]
    fn ordered_recreate_kills_one_container_at_a_time() {
        let s = spec(
            json!({"podName": "p", "containers": [{"name": "a"}, {"name": "b"}], "strategy": {"orderedRecreate": true}}),
        );
        let mut obs = BTreeMap::from([
            ("a".to_string(), running("a1", 0)),
            ("b".to_string(), running("b1", 0)),
            ("c".to_string(), running("c1", 0)),
        ]);
        let base = baseline(&s, &obs);
        let mut states = initial_states(&s);
        // step 1: only a is killed
        let st = step(&s, &mut states, &base, &obs, 10);
        assert_eq!(st.kill, [("a".to_string(), "a1".to_string())]);
        assert_eq!(phases(&states), [("a", "Recreating"), ("b", "Pending")]);
        // step 2: a not restarted yet -> nothing new
        assert!(step(&s, &mut states, &base, &obs, 20).kill.is_empty());
        // step 3: a restarted -> Succeeded, b killed
        obs.insert("a".into(), running("a2", 25));
        let st = step(&s, &mut states, &base, &obs, 30);
        assert_eq!(st.kill, [("b".to_string(), "b1".to_string())]);
        assert_eq!(phases(&states), [("a", "Succeeded"), ("b", "Recreating")]);
        // step 4: b restarted -> done
        obs.insert("b".into(), running("b2", 35));
        let st = step(&s, &mut states, &base, &obs, 40);
        assert!(st.done);
        assert_eq!(phases(&states), [("a", "Succeeded"), ("b", "Succeeded")]);
    }

    #[test]
    fn unordered_recreate_kills_all_at_once() {
        let s = spec(json!({"podName": "p", "containers": [{"name": "a"}, {"name": "b"}]}));
        let obs = BTreeMap::from([
            ("a".to_string(), running("a1", 0)),
            ("b".to_string(), running("b1", 0)),
        ]);
        let base = baseline(&s, &obs);
        let mut states = initial_states(&s);
        assert_eq!(step(&s, &mut states, &base, &obs, 1).kill.len(), 2);
    }

    #[test]
    fn min_started_seconds_delays_success() {
        let s = spec(
            json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"minStartedSeconds": 2}}),
        );
        let mut obs = BTreeMap::from([("a".to_string(), running("a1", 0))]);
        let base = baseline(&s, &obs);
        let mut states = initial_states(&s);
        step(&s, &mut states, &base, &obs, 0);
        obs.insert("a".into(), running("a2", 1_000_000_000));
        assert!(!step(&s, &mut states, &base, &obs, 2_000_000_000).done);
        assert!(step(&s, &mut states, &base, &obs, 3_000_000_000).done);
    }

    #[test]
    fn a_container_already_recreated_counts_as_done() {
        let s = spec(
            json!({"podName": "p", "containers": [{"name": "a", "statusContext": {"containerID": "containerd://old", "restartCount": 0}}]}),
        );
        let obs = BTreeMap::from([("a".to_string(), running("new", 0))]);
        let base = baseline(&s, &obs);
        assert_eq!(base["a"], "old");
        let mut states = initial_states(&s);
        let st = step(&s, &mut states, &base, &obs, 5);
        assert!(st.kill.is_empty());
        assert!(st.done);
        assert_eq!(phases(&states), [("a", "Succeeded")]);
    }

    #[test]
    fn starting_containers_wait_unless_forced() {
        let s = spec(json!({"podName": "p", "containers": [{"name": "a"}]}));
        let forced = spec(
            json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"forceRecreate": true}}),
        );
        let obs = BTreeMap::from([(
            "a".to_string(),
            RuntimeContainer {
                id: "a1".into(),
                running: false,
                started_at: 0,
            },
        )]);
        let base = baseline(&s, &obs);
        let mut states = initial_states(&s);
        assert!(step(&s, &mut states, &base, &obs, 1).kill.is_empty());
        let mut states = initial_states(&forced);
        assert_eq!(step(&forced, &mut states, &base, &obs, 1).kill.len(), 1);
    }

    #[test]
    fn a_missing_container_fails_and_fail_policy_aborts_the_rest() {
        let s = spec(
            json!({"podName": "p", "containers": [{"name": "ghost"}, {"name": "a"}], "strategy": {"orderedRecreate": true}}),
        );
        let obs = BTreeMap::from([("a".to_string(), running("a1", 0))]);
        let base = baseline(&s, &obs);
        let mut states = initial_states(&s);
        let st = step(&s, &mut states, &base, &obs, 1);
        assert!(st.done);
        assert!(st.kill.is_empty());
        assert_eq!(phases(&states), [("ghost", "Failed"), ("a", "Failed")]);
    }
}
