//! Advanced StatefulSet status from the observed pods (spec section 3.3), plus the `Ready`
//! condition that `kubectl wait --for=condition=Ready` reads. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSetCondition;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1beta1::statefulset::VolumeClaimStatus;
use kruise_api::apps::v1beta1::StatefulSetStatus;

use super::settings::{storage_bytes, Settings};
use crate::{pods, revision};

/// Condition set when creating or deleting pods failed (upstream's type).
pub const FAILED_CREATE_POD: &str = "FailedCreatePod";
/// Condition set when updating pods failed (upstream's type).
pub const FAILED_UPDATE_POD: &str = "FailedUpdatePod";
/// Condition that is True once the observed generation is rolled out: every desired pod exists,
/// is ready, and all but `partition` pods are ready on the update revision.
pub const READY: &str = "Ready";
/// Reason of `Ready=True`.
pub const REASON_COMPLETE: &str = "RolloutComplete";
/// Reason of `Ready=False`.
pub const REASON_PROGRESSING: &str = "RolloutInProgress";

/// Inputs of [`status`] besides the pods.
#[derive(Debug, Clone, Default)]
pub struct StatusInputs<'a> {
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// Status as last written.
    pub previous: Option<&'a StatefulSetStatus>,
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
    /// Storage requested by each existing claim, by claim name, when gate
    /// `StatefulSetAutoResizePVCGate` is on; `None` leaves `volumeClaims` out.
    pub claim_storage: Option<&'a BTreeMap<String, String>>,
}

/// `status.volumeClaims`: per volumeClaimTemplate, the pods whose claim requests at least the
/// template's storage (`compatibleReplicas`) and of those the ready ones
/// (`compatibleReadyReplicas`). A template without a storage request is matched by any existing
/// claim.
pub fn volume_claims(
    s: &Settings,
    owned: &[&Pod],
    claim_storage: &BTreeMap<String, String>,
) -> Vec<VolumeClaimStatus> {
    s.claim_templates
        .iter()
        .map(|template| {
            let want = s.claim_storage.get(template).and_then(|q| storage_bytes(q));
            let mut st = VolumeClaimStatus {
                volume_claim_name: template.clone(),
                ..Default::default()
            };
            for p in owned
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
            {
                let Some(ordinal) = s.ordinal_of(pods::name(p)) else {
                    continue;
                };
                let claim = s.claim_name(template, ordinal);
                let compatible = match (want, claim_storage.get(&claim)) {
                    (None, _) => true,
                    (Some(w), Some(have)) => storage_bytes(have).is_some_and(|h| h >= w),
                    (Some(_), None) => false,
                };
                if compatible {
                    st.compatible_replicas += 1;
                    st.compatible_ready_replicas += i32::from(pods::is_ready(p));
                }
            }
            st
        })
        .collect()
}

fn set_condition(
    conds: &mut Vec<StatefulSetCondition>,
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<&str>,
    now: Timestamp,
) {
    let value = if status { "True" } else { "False" };
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(Time(now));
            }
            c.status = value.into();
            c.reason = reason.map(str::to_string);
            c.message = message.map(str::to_string);
        }
        None => conds.push(StatefulSetCondition {
            type_: type_.into(),
            status: value.into(),
            reason: reason.map(str::to_string),
            message: message.map(str::to_string),
            last_transition_time: Some(Time(now)),
        }),
    }
}

fn error_condition(
    conds: &mut Vec<StatefulSetCondition>,
    type_: &str,
    error: Option<&String>,
    now: Timestamp,
) {
    match error {
        Some(msg) => set_condition(conds, type_, true, None, Some(msg), now),
        None => conds.retain(|c| c.type_ != type_),
    }
}

/// Computes the status to write from the owned pods (terminating ones included).
pub fn status(
    s: &Settings,
    owned: &[&Pod],
    inputs: &StatusInputs<'_>,
    now: Timestamp,
) -> StatefulSetStatus {
    let mut st = StatefulSetStatus {
        observed_generation: inputs.generation,
        ..Default::default()
    };
    let (mut updated_ready, mut updated_available) = (0, 0);
    for p in owned {
        st.replicas += 1;
        let ready = pods::is_ready(p);
        let available = ready && pods::is_available(p, s.min_ready_seconds, now);
        st.ready_replicas += i32::from(ready);
        st.available_replicas += i32::from(available);
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if revision::pod_on_revision(p, inputs.current_revision) {
            st.current_replicas += 1;
        }
        if revision::pod_on_revision(p, inputs.update_revision) {
            st.updated_replicas += 1;
            updated_ready += i32::from(ready);
            updated_available += i32::from(available);
        }
    }
    st.updated_ready_replicas = Some(updated_ready);
    st.updated_available_replicas = Some(updated_available);
    st.update_revision = Some(inputs.update_revision.to_string());
    let rolled = st.updated_replicas == st.replicas && st.ready_replicas == st.replicas;
    if rolled || inputs.current_revision.is_empty() {
        st.current_revision = Some(inputs.update_revision.to_string());
        st.current_replicas = st.updated_replicas;
    } else {
        st.current_revision = Some(inputs.current_revision.to_string());
    }
    st.collision_count = Some(inputs.collision_count);
    st.label_selector = Some(inputs.label_selector.clone());

    let mut conds = inputs
        .previous
        .and_then(|p| p.conditions.clone())
        .unwrap_or_default();
    error_condition(
        &mut conds,
        FAILED_CREATE_POD,
        inputs.scale_error.as_ref(),
        now,
    );
    error_condition(
        &mut conds,
        FAILED_UPDATE_POD,
        inputs.update_error.as_ref(),
        now,
    );
    let expected_updated = if s.on_delete {
        0
    } else {
        (s.replicas - s.partition).max(0)
    };
    let complete = st.replicas == s.replicas
        && st.ready_replicas == s.replicas
        && updated_ready >= expected_updated;
    let (reason, message) = if complete {
        (REASON_COMPLETE, format!("{} pods ready", s.replicas))
    } else {
        (
            REASON_PROGRESSING,
            format!(
                "{} of {} pods ready, {} of {} updated and ready",
                st.ready_replicas, s.replicas, updated_ready, expected_updated
            ),
        )
    };
    set_condition(
        &mut conds,
        READY,
        complete,
        Some(reason),
        Some(&message),
        now,
    );
    st.conditions = Some(conds);
    if let Some(claims) = inputs
        .claim_storage
        .filter(|_| !s.claim_templates.is_empty())
    {
        st.volume_claims = Some(volume_claims(s, owned, claims));
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;

    fn inputs<'a>() -> StatusInputs<'a> {
        StatusInputs {
            generation: Some(7),
            update_revision: "web-new",
            current_revision: "web-old",
            label_selector: "app=web".into(),
            ..Default::default()
        }
    }

    #[test]
    fn counts_revisions_and_ready_condition() {
        let s = Settings {
            replicas: 3,
            partition: 1,
            ..Default::default()
        };
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let a = pod("web-0", "web-old", true);
        let b = pod("web-1", "web-new", true);
        let c = pod("web-2", "web-new", false);
        let st = status(&s, &[&a, &b, &c], &inputs(), now);
        assert_eq!(
            (st.replicas, st.ready_replicas, st.available_replicas),
            (3, 2, 2)
        );
        assert_eq!((st.current_replicas, st.updated_replicas), (1, 2));
        assert_eq!(st.updated_ready_replicas, Some(1));
        assert_eq!(st.current_revision.as_deref(), Some("web-old"));
        assert_eq!(st.observed_generation, Some(7));
        let ready = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some(REASON_PROGRESSING))
        );

        // step 2: the last pod becomes ready; partition 1 keeps web-0 old, so the rollout is done
        let c = pod("web-2", "web-new", true);
        let prev = st.clone();
        let mut inp = inputs();
        inp.previous = Some(&prev);
        let later: Timestamp = "2026-01-01T00:02:00Z".parse().unwrap();
        let st = status(&s, &[&a, &b, &c], &inp, later);
        let ready = st
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == READY)
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_transition_time, Some(Time(later)));
        assert_eq!(st.current_revision.as_deref(), Some("web-old"));

        // step 3: partition 0 and every pod on the update revision: current catches up
        let s0 = Settings {
            replicas: 3,
            ..Default::default()
        };
        let a = pod("web-0", "web-new", true);
        let st = status(&s0, &[&a, &b, &c], &inp, later);
        assert_eq!(st.current_revision.as_deref(), Some("web-new"));
        assert_eq!(st.current_replicas, 3);
    }

    #[test]
    fn errors_become_conditions_and_clear() {
        let s = Settings {
            replicas: 1,
            ..Default::default()
        };
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let mut inp = inputs();
        inp.scale_error = Some("quota".into());
        let st = status(&s, &[], &inp, now);
        let conds = st.conditions.clone().unwrap();
        assert!(conds
            .iter()
            .any(|c| c.type_ == FAILED_CREATE_POD && c.message.as_deref() == Some("quota")));
        let mut inp = inputs();
        inp.previous = Some(&st);
        let st = status(&s, &[], &inp, now);
        assert!(!st
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == FAILED_CREATE_POD));
    }

    #[test]
    fn volume_claims_count_pods_whose_claims_match_the_template() {
        let s = Settings {
            name: "web".into(),
            replicas: 3,
            claim_templates: vec!["data".into(), "logs".into()],
            claim_storage: BTreeMap::from([("data".into(), "2Gi".into())]),
            ..Default::default()
        };
        let now: Timestamp = "2026-01-01T00:01:00Z".parse().unwrap();
        let a = pod("web-0", "web-new", true);
        let b = pod("web-1", "web-new", false);
        let c = pod("web-2", "web-old", true);
        let claims = BTreeMap::from([
            ("data-web-0".to_string(), "2Gi".to_string()),
            ("data-web-1".to_string(), "4Gi".to_string()),
            ("data-web-2".to_string(), "1Gi".to_string()),
        ]);
        let with_gate = StatusInputs {
            claim_storage: Some(&claims),
            ..inputs()
        };
        let st = status(&s, &[&a, &b, &c], &with_gate, now);
        let vc = st.volume_claims.unwrap();
        assert_eq!(vc.len(), 2);
        assert_eq!(
            (
                vc[0].volume_claim_name.as_str(),
                vc[0].compatible_replicas,
                vc[0].compatible_ready_replicas
            ),
            ("data", 2, 1)
        );
        // No storage in the template: every pod is compatible.
        assert_eq!(
            (vc[1].compatible_replicas, vc[1].compatible_ready_replicas),
            (3, 2)
        );
        // Gate off: the field is left out.
        assert_eq!(
            status(&s, &[&a, &b, &c], &inputs(), now).volume_claims,
            None
        );
    }
}
