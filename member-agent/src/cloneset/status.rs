//! CloneSet status from the observed pods (spec section 2.3). Pure.

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
    st.conditions = (!conds.is_empty()).then_some(conds);
    st
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
}
