//! CloneSet status from the observed pods (spec section 2.3). Pure.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::common::WorkloadCondition;
use kruise_api::apps::v1alpha1::cloneset::CloneSetStatus;

use super::settings::Settings;
use crate::{pods, revision};

/// Condition type set when creating or deleting pods failed.
pub const FAILED_SCALE: &str = "FailedScale";
/// Condition type set when updating pods failed.
pub const FAILED_UPDATE: &str = "FailedUpdate";
/// Condition type tracking rollout progress (only with `progressDeadlineSeconds`).
pub const PROGRESSING: &str = "Progressing";
/// `Progressing` reason: every replica is updated and available.
pub const REASON_AVAILABLE: &str = "CloneSetAvailable";
/// `Progressing` reason: updates are paused.
pub const REASON_PAUSED: &str = "CloneSetPaused";
/// `Progressing` reason: the pods the partition allows to update are updated and available.
pub const REASON_PARTITION_AVAILABLE: &str = "ProgressPartitionAvailable";
/// `Progressing` reason: the rollout is under way.
pub const REASON_UPDATED: &str = "CloneSetUpdated";
/// `Progressing` reason (status False): no progress within `progressDeadlineSeconds`.
pub const REASON_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Inputs of [`status`] besides the pods.
#[derive(Debug, Clone, Default)]
pub struct StatusInputs<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Status as last written.
    pub previous: Option<&'a CloneSetStatus>,
    /// Update revision name.
    pub update_revision: &'a str,
    /// Current revision name before this reconcile.
    pub current_revision: &'a str,
    /// Collision count used for the update revision.
    pub collision_count: i32,
    /// Selector string.
    pub label_selector: String,
    /// Error from scaling this round.
    pub scale_error: Option<String>,
    /// Error from updating this round.
    pub update_error: Option<String>,
}

fn set_condition(
    conds: &mut Vec<WorkloadCondition>,
    type_: &str,
    error: Option<&String>,
    now: Timestamp,
) {
    match error {
        Some(msg) => {
            let existing = conds.iter_mut().find(|c| c.type_ == type_);
            match existing {
                Some(c) if c.message.as_ref() == Some(msg) && c.status == "True" => {}
                Some(c) => {
                    if c.status != "True" {
                        c.last_transition_time = Some(Time(now));
                    }
                    c.status = "True".into();
                    c.message = Some(msg.clone());
                    c.last_update_time = Some(Time(now));
                }
                None => conds.push(WorkloadCondition {
                    type_: type_.to_string(),
                    status: "True".into(),
                    last_update_time: Some(Time(now)),
                    last_transition_time: Some(Time(now)),
                    reason: None,
                    message: Some(msg.clone()),
                }),
            }
        }
        None => conds.retain(|c| c.type_ != type_),
    }
}

/// Computes the status to write.
pub fn status(
    s: &Settings,
    active: &[&Pod],
    inputs: &StatusInputs<'_>,
    now: Timestamp,
) -> CloneSetStatus {
    let mut st = CloneSetStatus {
        observed_generation: inputs.generation,
        replicas: active.len() as i32,
        ..Default::default()
    };
    let mut updated_available = 0;
    for p in active {
        let ready = pods::is_ready(p);
        let available = pods::is_available_normal(p, s.min_ready_seconds, now);
        let updated = revision::pod_on_revision(p, inputs.update_revision);
        st.ready_replicas += i32::from(ready);
        st.available_replicas += i32::from(available);
        st.updated_replicas += i32::from(updated);
        st.updated_ready_replicas += i32::from(updated && ready);
        updated_available += i32::from(updated && available);
    }
    st.updated_available_replicas = Some(updated_available);
    st.expected_updated_replicas = Some((s.replicas - s.partition).max(0));
    st.update_revision = Some(inputs.update_revision.to_string());
    let converged = st.updated_replicas == st.replicas && st.replicas == s.replicas;
    st.current_revision = Some(if converged || inputs.current_revision.is_empty() {
        inputs.update_revision.to_string()
    } else {
        inputs.current_revision.to_string()
    });
    st.collision_count = Some(inputs.collision_count);
    st.label_selector = Some(inputs.label_selector.clone());
    let mut conds = inputs
        .previous
        .and_then(|p| p.conditions.clone())
        .unwrap_or_default();
    set_condition(&mut conds, FAILED_SCALE, inputs.scale_error.as_ref(), now);
    set_condition(&mut conds, FAILED_UPDATE, inputs.update_error.as_ref(), now);
    let progressing = progressing(s, &st, inputs.previous, now);
    match progressing {
        Some(c) => match conds.iter_mut().find(|c| c.type_ == PROGRESSING) {
            Some(existing) => *existing = c,
            None => conds.push(c),
        },
        None => conds.retain(|c| c.type_ != PROGRESSING),
    }
    st.conditions = (!conds.is_empty()).then_some(conds);
    st
}

/// Whether the rollout moved since `prev` was written: a new update revision, a different
/// number of updated pods, or more ready/available pods.
fn made_progress(prev: Option<&CloneSetStatus>, st: &CloneSetStatus) -> bool {
    let Some(p) = prev else { return true };
    p.update_revision != st.update_revision
        || p.updated_replicas != st.updated_replicas
        || st.ready_replicas > p.ready_replicas
        || st.available_replicas > p.available_replicas
        || st.updated_ready_replicas > p.updated_ready_replicas
        || st.updated_available_replicas.unwrap_or(0) > p.updated_available_replicas.unwrap_or(0)
}

/// The `Progressing` condition (spec 2.3), or `None` when `progressDeadlineSeconds` is unset.
///
/// `lastUpdateTime` moves on every change of reason and, while `CloneSetUpdated`, whenever the
/// rollout makes progress; the deadline runs from it. Paused time does not count because resuming
/// changes the reason from `CloneSetPaused` back to `CloneSetUpdated`, which restarts the clock.
pub fn progressing(
    s: &Settings,
    st: &CloneSetStatus,
    previous: Option<&CloneSetStatus>,
    now: Timestamp,
) -> Option<WorkloadCondition> {
    let deadline = s.progress_deadline_seconds?;
    let prev = previous
        .and_then(|p| p.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == PROGRESSING));
    let updated_available = st.updated_available_replicas.unwrap_or(0);
    let expected_updated = st.expected_updated_replicas.unwrap_or(s.replicas);
    let all_available = st.replicas == s.replicas
        && st.updated_replicas == s.replicas
        && updated_available == s.replicas
        && st.available_replicas == s.replicas
        && st.current_revision == st.update_revision;
    let progressed = made_progress(previous, st);
    let (status, reason, message) = if all_available {
        (
            "True",
            REASON_AVAILABLE,
            "CloneSet is available".to_string(),
        )
    } else if s.paused {
        ("True", REASON_PAUSED, "CloneSet is paused".to_string())
    } else if expected_updated < s.replicas && updated_available >= expected_updated {
        (
            "True",
            REASON_PARTITION_AVAILABLE,
            "CloneSet has been paused due to partition ready".to_string(),
        )
    } else {
        let exceeded = prev.is_some_and(|c| {
            let since = c.last_update_time.as_ref().map(|t| t.0).unwrap_or(now);
            let waited = now.duration_since(since).as_secs_f64();
            match c.reason.as_deref() {
                Some(REASON_UPDATED) => !progressed && waited > f64::from(deadline),
                Some(REASON_DEADLINE_EXCEEDED) => !progressed,
                _ => false,
            }
        });
        if exceeded {
            let rev = st.update_revision.clone().unwrap_or_default();
            (
                "False",
                REASON_DEADLINE_EXCEEDED,
                format!("CloneSet revision {rev} has timed out progressing"),
            )
        } else {
            (
                "True",
                REASON_UPDATED,
                "CloneSet is progressing".to_string(),
            )
        }
    };
    let mut cond = WorkloadCondition {
        type_: PROGRESSING.to_string(),
        status: status.to_string(),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
        reason: Some(reason.to_string()),
        message: Some(message),
    };
    if let Some(p) = prev {
        if p.status == cond.status {
            cond.last_transition_time = p.last_transition_time.clone();
        }
        let same_reason = p.reason.as_deref() == Some(reason);
        let refresh = reason == REASON_UPDATED && progressed;
        if same_reason && !refresh {
            cond.last_update_time = p.last_update_time.clone();
        }
    }
    Some(cond)
}

/// How long until a `CloneSetUpdated` condition in `st` reaches its deadline (plus a second of
/// slack); `None` when no deadline is running.
pub fn progress_requeue(s: &Settings, st: &CloneSetStatus, now: Timestamp) -> Option<Duration> {
    let deadline = s.progress_deadline_seconds?;
    let c = st
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == PROGRESSING && c.reason.as_deref() == Some(REASON_UPDATED))?;
    let since = c.last_update_time.as_ref()?.0;
    let elapsed = now.duration_since(since).as_secs_f64().max(0.0);
    let left = (f64::from(deadline) - elapsed).max(0.0);
    Some(Duration::from_secs_f64(left) + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::{pod, with_label};

    #[test]
    fn counts_and_revisions() {
        let s = Settings {
            replicas: 3,
            partition: 1,
            ..Default::default()
        };
        let normal = |p| with_label(p, crate::lifecycle::STATE_LABEL, "Normal");
        let a = normal(pod("a", "cs-new", true));
        let b = normal(pod("b", "cs-old", true));
        let c = pod("c", "cs-new", false);
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let inputs = StatusInputs {
            generation: Some(4),
            update_revision: "cs-new",
            current_revision: "cs-old",
            label_selector: "app=x".into(),
            scale_error: Some("boom".into()),
            ..Default::default()
        };
        let st = status(&s, &[&a, &b, &c], &inputs, now);
        assert_eq!(
            (st.replicas, st.ready_replicas, st.available_replicas),
            (3, 2, 2)
        );
        assert_eq!((st.updated_replicas, st.updated_ready_replicas), (2, 1));
        assert_eq!(st.expected_updated_replicas, Some(2));
        assert_eq!(st.current_revision.as_deref(), Some("cs-old"));
        assert_eq!(st.observed_generation, Some(4));
        let conds = st.conditions.unwrap();
        assert_eq!(conds[0].type_, FAILED_SCALE);
        assert_eq!(conds[0].message.as_deref(), Some("boom"));

        let b2 = normal(pod("b", "cs-new", true));
        let st = status(&s, &[&a, &b2, &c], &inputs, now);
        assert_eq!(st.current_revision.as_deref(), Some("cs-new"));
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + secs).unwrap()
    }

    /// A status with `(replicas, updated, updated_available, available)` on revisions cur/upd.
    fn st(n: (i32, i32, i32, i32), cur: &str, upd: &str) -> CloneSetStatus {
        CloneSetStatus {
            replicas: n.0,
            ready_replicas: n.3,
            available_replicas: n.3,
            updated_replicas: n.1,
            updated_ready_replicas: n.2,
            updated_available_replicas: Some(n.2),
            expected_updated_replicas: Some(n.0),
            current_revision: Some(cur.into()),
            update_revision: Some(upd.into()),
            ..Default::default()
        }
    }

    fn with_cond(mut s: CloneSetStatus, c: Option<WorkloadCondition>) -> CloneSetStatus {
        s.conditions = c.map(|c| vec![c]);
        s
    }

    #[test]
    fn progressing_reasons_follow_the_rollout() {
        let s = Settings {
            replicas: 4,
            progress_deadline_seconds: Some(60),
            ..Default::default()
        };
        let reason = |c: &Option<WorkloadCondition>| {
            c.as_ref()
                .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
        };
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        // no deadline: no condition
        let none = Settings {
            progress_deadline_seconds: None,
            ..s.clone()
        };
        assert_eq!(
            progressing(&none, &st((4, 4, 4, 4), "r", "r"), None, at(0)),
            None
        );
        // all updated and available
        let c = progressing(&s, &st((4, 4, 4, 4), "r", "r"), None, at(0));
        assert_eq!(reason(&c), pair("True", REASON_AVAILABLE));
        assert_eq!(c.unwrap().message.as_deref(), Some("CloneSet is available"));
        // rolling out
        let rolling = st((4, 1, 0, 3), "r1", "r2");
        let c = progressing(&s, &rolling, None, at(0));
        assert_eq!(reason(&c), pair("True", REASON_UPDATED));
        // paused wins over progressing
        let paused = Settings {
            paused: true,
            ..s.clone()
        };
        let c = progressing(&paused, &rolling, None, at(0));
        assert_eq!(reason(&c), pair("True", REASON_PAUSED));
        assert_eq!(c.unwrap().message.as_deref(), Some("CloneSet is paused"));
        // partition reached
        let mut part = st((4, 2, 2, 4), "r1", "r2");
        part.expected_updated_replicas = Some(2);
        let c = progressing(&s, &part, None, at(0));
        assert_eq!(reason(&c), pair("True", REASON_PARTITION_AVAILABLE));
        assert_eq!(
            c.unwrap().message.as_deref(),
            Some("CloneSet has been paused due to partition ready")
        );
    }

    #[test]
    fn deadline_runs_from_the_last_progress_and_not_while_paused() {
        let s = Settings {
            replicas: 4,
            progress_deadline_seconds: Some(60),
            ..Default::default()
        };
        let rolling = st((4, 1, 0, 3), "r1", "r2");
        let start = progressing(&s, &rolling, None, at(0));
        let prev = with_cond(rolling.clone(), start.clone());
        // no progress for 50s: still progressing, clock unchanged, requeue for the rest
        let c = progressing(&s, &rolling, Some(&prev), at(50)).unwrap();
        assert_eq!(c.reason.as_deref(), Some(REASON_UPDATED));
        assert_eq!(c.last_update_time, Some(Time(at(0))));
        let requeue = progress_requeue(&s, &with_cond(rolling.clone(), Some(c)), at(50));
        assert_eq!(requeue, Some(Duration::from_secs(11)));
        // progress at 50s refreshes lastUpdateTime
        let better = st((4, 2, 1, 3), "r1", "r2");
        let c = progressing(&s, &better, Some(&prev), at(50)).unwrap();
        assert_eq!(c.last_update_time, Some(Time(at(50))));
        assert_eq!(c.last_transition_time, Some(Time(at(0))));
        // no progress for 61s: exceeded, status False, and it stays exceeded
        let c = progressing(&s, &rolling, Some(&prev), at(61)).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some(REASON_DEADLINE_EXCEEDED))
        );
        assert_eq!(
            c.message.as_deref(),
            Some("CloneSet revision r2 has timed out progressing")
        );
        assert_eq!(c.last_transition_time, Some(Time(at(61))));
        let exceeded = with_cond(rolling.clone(), Some(c));
        let c = progressing(&s, &rolling, Some(&exceeded), at(100)).unwrap();
        assert_eq!(c.reason.as_deref(), Some(REASON_DEADLINE_EXCEEDED));
        assert_eq!(progress_requeue(&s, &exceeded, at(100)), None);
        // progress after exceeding: back to progressing with a fresh clock
        let c = progressing(&s, &better, Some(&exceeded), at(100)).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("True", Some(REASON_UPDATED))
        );
        assert_eq!(c.last_update_time, Some(Time(at(100))));
        // paused for a long time, then resumed: the clock restarts at the resume
        let paused = Settings {
            paused: true,
            ..s.clone()
        };
        let p = progressing(&paused, &rolling, Some(&prev), at(10));
        let during = with_cond(rolling.clone(), p);
        let p = progressing(&paused, &rolling, Some(&during), at(500)).unwrap();
        assert_eq!(p.last_update_time, Some(Time(at(10))));
        let c = progressing(&s, &rolling, Some(&during), at(1000)).unwrap();
        assert_eq!(c.reason.as_deref(), Some(REASON_UPDATED));
        assert_eq!(c.last_update_time, Some(Time(at(1000))));
    }

    #[test]
    fn status_carries_and_drops_the_progressing_condition() {
        let s = Settings {
            replicas: 1,
            progress_deadline_seconds: Some(30),
            ..Default::default()
        };
        let a = with_label(
            pod("a", "cs-new", true),
            crate::lifecycle::STATE_LABEL,
            "Normal",
        );
        let inputs = StatusInputs {
            update_revision: "cs-new",
            current_revision: "cs-new",
            ..Default::default()
        };
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let out = status(&s, &[&a], &inputs, now);
        let c = out.conditions.clone().unwrap();
        assert_eq!(c[0].type_, PROGRESSING);
        assert_eq!(c[0].reason.as_deref(), Some(REASON_AVAILABLE));
        let off = Settings {
            progress_deadline_seconds: None,
            ..s
        };
        let inputs = StatusInputs {
            previous: Some(&out),
            ..inputs
        };
        assert_eq!(status(&off, &[&a], &inputs, now).conditions, None);
    }
}
