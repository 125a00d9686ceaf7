//! Advanced StatefulSet validation (`pkg/webhook/statefulset/validating/statefulset_validation.go`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::statefulset as alpha;
use crate::apps::v1beta1::statefulset::{self as sts, StatefulSet, StatefulSetSpec};
use crate::field::{FieldError, Path};
use crate::intstr;

impl Validated for StatefulSet {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        errs.extend(validate_statefulset_spec(
            &self.spec,
            &Path::new("spec"),
            true,
        ));
        errs
    }
}

impl Validated for alpha::StatefulSet {
    /// v1alpha1 objects are converted to v1beta1 and validated there, as the webhook does.
    fn validate(&self) -> Vec<FieldError> {
        self.clone().into_v1beta1().validate()
    }
}

const POD_MANAGEMENT: [&str; 2] = [sts::ORDERED_READY, sts::PARALLEL];
const UPDATE_TYPES: [&str; 2] = [sts::ROLLING_UPDATE, sts::ON_DELETE];
const POD_UPDATE_POLICIES: [&str; 3] =
    [sts::RECREATE, sts::IN_PLACE_IF_POSSIBLE, sts::IN_PLACE_ONLY];

/// Validates an Advanced StatefulSet spec at `path`; `with_replicas` is false inside a
/// UnitedDeployment template, where replicas and partition must not be set.
pub fn validate_statefulset_spec(
    spec: &StatefulSetSpec,
    path: &Path,
    with_replicas: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match spec.replicas {
        Some(_) if !with_replicas => errs.push(FieldError::forbidden(
            path.child("replicas"),
            "replicas in advancedStatefulSetTemplate will not be used",
        )),
        Some(r) => errs.extend(validate_non_negative(r.into(), &path.child("replicas"))),
        None => {}
    }
    let policy = spec
        .pod_management_policy
        .as_deref()
        .unwrap_or(sts::ORDERED_READY);
    if !POD_MANAGEMENT.contains(&policy) {
        errs.push(FieldError::not_supported(
            path.child("podManagementPolicy"),
            policy,
            &POD_MANAGEMENT,
        ));
    }
    let parallel = policy == sts::PARALLEL;
    errs.extend(validate_selector_and_template_labels(
        &spec.selector,
        &spec.template,
        path,
        "statefulset",
    ));
    let vct_names: Vec<String> = spec
        .volume_claim_templates
        .iter()
        .flatten()
        .filter_map(|pvc| pvc.metadata.name.clone())
        .collect();
    let template_path = path.child("template");
    errs.extend(validate_pod_template(
        &spec.template,
        &template_path,
        RestartRule::Always,
        &vct_names,
    ));
    errs.extend(forbid_active_deadline(
        &spec.template,
        &template_path,
        "StatefulSet",
    ));

    if let Some(strategy) = &spec.update_strategy {
        let p = path.child("updateStrategy");
        let type_ = strategy
            .type_
            .as_deref()
            .filter(|v| !v.is_empty())
            .unwrap_or(sts::ROLLING_UPDATE);
        if !UPDATE_TYPES.contains(&type_) {
            errs.push(FieldError::not_supported(
                p.child("type"),
                type_,
                &UPDATE_TYPES,
            ));
        }
        if let Some(ru) = &strategy.rolling_update {
            let rp = p.child("rollingUpdate");
            if type_ != sts::ROLLING_UPDATE {
                errs.push(FieldError::invalid(
                    &rp,
                    json!(ru),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
            if let Some(partition) = ru.partition {
                if !with_replicas {
                    errs.push(FieldError::forbidden(
                        rp.child("partition"),
                        "partition in advancedStatefulSetTemplate will not be used",
                    ));
                }
                errs.extend(validate_non_negative(
                    partition.into(),
                    &rp.child("partition"),
                ));
            }
            match &ru.max_unavailable {
                None => errs.push(FieldError::required(rp.child("maxUnavailable"), "")),
                Some(mu) => errs.extend(validate_max_unavailable(
                    mu,
                    &rp.child("maxUnavailable"),
                    parallel,
                )),
            }
            let pod_policy = ru
                .pod_update_policy
                .as_deref()
                .filter(|v| !v.is_empty())
                .unwrap_or(sts::RECREATE);
            if !POD_UPDATE_POLICIES.contains(&pod_policy) {
                errs.push(FieldError::not_supported(
                    rp.child("podUpdatePolicy"),
                    pod_policy,
                    &POD_UPDATE_POLICIES,
                ));
            } else if pod_policy != sts::RECREATE && !has_in_place_gate(spec) {
                errs.push(FieldError::required(
                    template_path.child("spec").child("readinessGates"),
                    format!(
                        "must contains {} when podUpdatePolicy is {pod_policy}",
                        sts::IN_PLACE_UPDATE_READY
                    ),
                ));
            }
            if let Some(unordered) = &ru.unordered_update {
                let up = rp.child("unorderedUpdate");
                if !parallel {
                    errs.push(FieldError::invalid(
                        &up,
                        json!(unordered),
                        "unorderedUpdate can only work with Parallel PodManagementPolicyType",
                    ));
                }
                if let Some(prio) = &unordered.priority_strategy {
                    errs.extend(validate_priority_strategy(
                        prio,
                        &up.child("priorityStrategy"),
                    ));
                }
            }
            if let Some(min_ready) = ru.min_ready_seconds {
                let mp = rp.child("minReadySeconds");
                if min_ready < 0 {
                    errs.extend(validate_non_negative(min_ready.into(), &mp));
                } else if min_ready > 300 {
                    errs.push(FieldError::invalid(
                        &mp,
                        min_ready,
                        "must be no more than 300 seconds",
                    ));
                }
            }
            if let Some(grace) = ru
                .in_place_update_strategy
                .as_ref()
                .and_then(|s| s.grace_period_seconds)
            {
                errs.extend(validate_non_negative(
                    grace.into(),
                    &rp.child("inPlaceUpdateStrategy")
                        .child("gracePeriodSeconds"),
                ));
            }
        }
    }
    for (i, ordinal) in spec.reserve_ordinals.iter().flatten().enumerate() {
        errs.extend(validate_reserve_ordinal(
            ordinal,
            &path.child("reserveOrdinals").index(i),
        ));
    }
    if let Some(mu) = spec
        .scale_strategy
        .as_ref()
        .and_then(|s| s.max_unavailable.as_ref())
    {
        errs.extend(validate_max_unavailable(
            mu,
            &path.child("scaleStrategy").child("maxUnavailable"),
            parallel,
        ));
    }
    if let Some(retention) = &spec.persistent_volume_claim_retention_policy {
        let p = path.child("persistentVolumeClaimRetentionPolicy");
        for (field, value) in [
            ("whenDeleted", &retention.when_deleted),
            ("whenScaled", &retention.when_scaled),
        ] {
            if let Some(v) = value
                .as_deref()
                .filter(|v| *v != "Retain" && *v != "Delete")
            {
                errs.push(FieldError::not_supported(
                    p.child(field),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    if let Some(t) = spec
        .volume_claim_update_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
    {
        if t != "OnDelete" && t != "OnPodRollingUpdate" {
            errs.push(FieldError::not_supported(
                path.child("volumeClaimUpdateStrategy").child("type"),
                t,
                &["OnDelete", "OnPodRollingUpdate"],
            ));
        }
    }
    if let Some(start) = spec.ordinals.as_ref().and_then(|o| o.start) {
        errs.extend(validate_non_negative(
            start.into(),
            &path.child("ordinals").child("start"),
        ));
    }
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_non_negative(
            limit.into(),
            &path.child("revisionHistoryLimit"),
        ));
    }
    errs
}

fn has_in_place_gate(spec: &StatefulSetSpec) -> bool {
    spec.template
        .spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|gates| {
            gates
                .iter()
                .any(|g| g.condition_type == sts::IN_PLACE_UPDATE_READY)
        })
}

/// A positive int or non-zero percentage; anything but int 1 needs `Parallel`.
fn validate_max_unavailable(mu: &IntOrString, path: &Path, parallel: bool) -> Vec<FieldError> {
    let mut errs = intstr::validate_int_or_percent_0_to_100(mu, path.as_str());
    if errs.is_empty() && intstr::is_zero(mu) {
        errs.push(FieldError::invalid(
            path,
            intstr::to_value(mu),
            "must be greater than 0",
        ));
    }
    if errs.is_empty() && *mu != IntOrString::Int(1) && !parallel {
        errs.push(FieldError::invalid(
            path,
            intstr::to_value(mu),
            "can only work with Parallel PodManagementPolicyType",
        ));
    }
    errs
}

fn validate_reserve_ordinal(ordinal: &IntOrString, path: &Path) -> Vec<FieldError> {
    match ordinal {
        IntOrString::Int(i) => validate_non_negative((*i).into(), path),
        IntOrString::String(s) => {
            let range = s.split_once('-').and_then(|(a, b)| {
                let digits = |x: &str| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit());
                if digits(a) && digits(b) {
                    Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?))
                } else {
                    None
                }
            });
            match range {
                None => vec![FieldError::invalid(
                    path,
                    s.as_str(),
                    "must be a non-negative integer or a range \"a-b\" (^\\d+-\\d+$)",
                )],
                Some((a, b)) if a > b => {
                    vec![FieldError::invalid(
                        path,
                        s.as_str(),
                        "range start must not be greater than range end",
                    )]
                }
                Some(_) => vec![],
            }
        }
    }
}
