//! CloneSet validation (`pkg/webhook/cloneset/validating/validation.go`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::cloneset::{self, CloneSet, CloneSetSpec, CloneSetUpdateStrategy};
use crate::field::{FieldError, Path};
use crate::intstr;

impl Validated for CloneSet {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        errs.extend(validate_cloneset_spec(&self.spec, &Path::new("spec"), true));
        errs
    }
}

/// Validates a CloneSet spec at `path`; `with_replicas` is false inside a UnitedDeployment
/// template, where replicas and partition are set per subset.
pub fn validate_cloneset_spec(
    spec: &CloneSetSpec,
    path: &Path,
    with_replicas: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let replicas = spec.replicas.unwrap_or(1);
    if let Some(r) = spec.replicas {
        errs.extend(validate_non_negative(r.into(), &path.child("replicas")));
    }
    errs.extend(validate_selector_and_template_labels(
        &spec.selector,
        &spec.template,
        path,
        "cloneset",
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
        "cloneset",
    ));
    if let Some(scale) = &spec.scale_strategy {
        let p = path.child("scaleStrategy");
        if let Some(names) = &scale.pods_to_delete {
            errs.extend(validate_unique(
                names.iter().map(String::as_str),
                &p.child("podsToDelete"),
            ));
        }
        if let Some(mu) = &scale.max_unavailable {
            errs.extend(intstr::validate_int_or_percent_0_to_100(
                mu,
                p.child("maxUnavailable").as_str(),
            ));
        }
    }
    if let Some(strategy) = &spec.update_strategy {
        errs.extend(validate_update_strategy(
            strategy,
            replicas,
            &path.child("updateStrategy"),
            with_replicas,
        ));
    }
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_non_negative(
            limit.into(),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(min_ready) = spec.min_ready_seconds {
        errs.extend(validate_non_negative(
            min_ready.into(),
            &path.child("minReadySeconds"),
        ));
    }
    if let Some(deadline) = spec.progress_deadline_seconds {
        let p = path.child("progressDeadlineSeconds");
        if deadline < 0 {
            errs.extend(validate_non_negative(deadline.into(), &p));
        } else if deadline != i32::MAX && deadline <= spec.min_ready_seconds.unwrap_or(0) {
            errs.push(FieldError::invalid(
                &p,
                deadline,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

fn validate_update_strategy(
    s: &CloneSetUpdateStrategy,
    replicas: i32,
    path: &Path,
    with_partition: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let type_ = s
        .type_
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(cloneset::RECREATE);
    if !cloneset::UPDATE_STRATEGY_TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(
            path.child("type"),
            type_,
            &cloneset::UPDATE_STRATEGY_TYPES,
        ));
    }
    if let Some(partition) = &s.partition {
        let p = path.child("partition");
        if !with_partition {
            errs.push(FieldError::forbidden(
                &p,
                "partition is set per subset by the UnitedDeployment",
            ));
        }
        errs.extend(intstr::validate_int_or_percent_0_to_100(
            partition,
            p.as_str(),
        ));
    }
    let mu_path = path.child("maxUnavailable");
    let ms_path = path.child("maxSurge");
    let mu_errs = s
        .max_unavailable
        .as_ref()
        .map(|v| intstr::validate_int_or_percent_0_to_100(v, mu_path.as_str()));
    let ms_errs = s
        .max_surge
        .as_ref()
        .map(|v| intstr::validate_int_or_percent_0_to_100(v, ms_path.as_str()));
    let formats_ok =
        mu_errs.as_ref().is_none_or(Vec::is_empty) && ms_errs.as_ref().is_none_or(Vec::is_empty);
    errs.extend(mu_errs.into_iter().flatten());
    errs.extend(ms_errs.into_iter().flatten());
    if type_ == cloneset::IN_PLACE_ONLY && s.max_surge.as_ref().is_some_and(|v| !intstr::is_zero(v))
    {
        errs.push(FieldError::invalid(
            &ms_path,
            intstr::to_value(s.max_surge.as_ref().unwrap_or(&IntOrString::Int(0))),
            "can not use maxSurge with strategy type InPlaceOnly",
        ));
    }
    if formats_ok && replicas > 0 {
        let zero = IntOrString::Int(0);
        let default_mu = IntOrString::String("20%".into());
        let mu = intstr::scaled_value(
            s.max_unavailable.as_ref().unwrap_or(&default_mu),
            replicas,
            true,
        )
        .unwrap_or(0);
        let ms = intstr::scaled_value(s.max_surge.as_ref().unwrap_or(&zero), replicas, true)
            .unwrap_or(0);
        if mu < 1 && ms < 1 {
            errs.push(FieldError::invalid(
                &mu_path,
                intstr::to_value(s.max_unavailable.as_ref().unwrap_or(&default_mu)),
                "maxUnavailable and maxSurge should not both be less than 1",
            ));
        }
    }
    if let Some(prio) = &s.priority_strategy {
        errs.extend(validate_priority_strategy(
            prio,
            &path.child("priorityStrategy"),
        ));
    }
    if let Some(scatter) = &s.scatter_strategy {
        errs.extend(validate_scatter_strategy(
            scatter,
            &path.child("scatterStrategy"),
        ));
    }
    if let Some(grace) = s
        .in_place_update_strategy
        .as_ref()
        .and_then(|i| i.grace_period_seconds)
    {
        errs.extend(validate_non_negative(
            grace.into(),
            &path
                .child("inPlaceUpdateStrategy")
                .child("gracePeriodSeconds"),
        ));
    }
    errs
}
