//! UnitedDeployment validation (`pkg/webhook/uniteddeployment/validating/uniteddeployment_validation.go`)
//! plus the hub extensions (cluster subsets, update waves).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use std::collections::BTreeSet;

use super::cloneset::validate_cloneset_spec;
use super::common::*;
use super::hub::{validate_cluster_targets, validate_waves};
use super::statefulset::validate_statefulset_spec;
use super::Validated;
use crate::apps::v1alpha1::uniteddeployment::{
    self as ud, Subset, UnitedDeployment, UnitedDeploymentSpec,
};
use crate::field::{FieldError, Path};
use crate::intstr;
use crate::selector;

impl Validated for UnitedDeployment {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        errs.extend(validate_spec(&self.spec, &Path::new("spec")));
        errs
    }
}

fn validate_spec(spec: &UnitedDeploymentSpec, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(r) = spec.replicas {
        errs.extend(validate_non_negative(r.into(), &path.child("replicas")));
    }
    let sel_path = path.child("selector");
    if selector::is_empty(&spec.selector) {
        errs.push(FieldError::invalid(
            &sel_path,
            selector_value(&spec.selector),
            "empty selector is not valid for a UnitedDeployment.",
        ));
    } else {
        errs.extend(validate_label_selector(&spec.selector, &sel_path));
    }
    errs.extend(validate_template(spec, &path.child("template")));
    let subsets = spec.topology.subsets.as_deref().unwrap_or_default();
    let topo = path.child("topology");
    let schedule_type = spec
        .topology
        .schedule_strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .filter(|v| !v.is_empty())
        .unwrap_or(ud::FIXED);
    errs.extend(validate_subsets(
        subsets,
        spec.replicas,
        schedule_type == ud::ADAPTIVE,
        &topo.child("subsets"),
    ));
    errs.extend(validate_cluster_targets(
        subsets
            .iter()
            .map(|s| (s.clusters.as_deref(), s.cluster_selector.as_ref())),
        &topo.child("subsets"),
    ));
    if let Some(schedule) = &spec.topology.schedule_strategy {
        let p = topo.child("scheduleStrategy");
        if ![ud::FIXED, ud::ADAPTIVE].contains(&schedule_type) {
            errs.push(FieldError::not_supported(
                p.child("type"),
                schedule_type,
                &[ud::ADAPTIVE, ud::FIXED],
            ));
        }
        if let Some(adaptive) = &schedule.adaptive {
            let ap = p.child("adaptive");
            if let Some(v) = adaptive.reschedule_critical_seconds {
                errs.extend(validate_non_negative(
                    v.into(),
                    &ap.child("rescheduleCriticalSeconds"),
                ));
            }
            for (v, field) in [
                (
                    adaptive.unschedulable_last_seconds,
                    "unschedulableLastSeconds",
                ),
                (adaptive.unschedulable_duration, "unschedulableDuration"),
            ] {
                if let Some(v) = v {
                    errs.extend(validate_non_negative(v.into(), &ap.child(field)));
                }
            }
            let stateless = spec.template.clone_set_template.is_some()
                || spec.template.deployment_template.is_some();
            if adaptive.reserve_unschedulable_pods == Some(true) && !stateless {
                errs.push(FieldError::invalid(
                    ap.child("reserveUnschedulablePods"),
                    true,
                    "only stateless workloads (Deployment and CloneSet) are supported by reserved rescheduling",
                ));
            }
        }
    }
    let names: BTreeSet<&str> = subsets.iter().map(|s| s.name.as_str()).collect();
    if let Some(strategy) = &spec.update_strategy {
        let p = path.child("updateStrategy");
        if let Some(t) = strategy.type_.as_deref().filter(|t| *t != ud::MANUAL) {
            errs.push(FieldError::not_supported(p.child("type"), t, &[ud::MANUAL]));
        }
        let partitions = strategy
            .manual_update
            .as_ref()
            .and_then(|m| m.partitions.clone())
            .unwrap_or_default();
        let pp = p.child("manualUpdate").child("partitions");
        for (name, value) in &partitions {
            if !names.contains(name.as_str()) {
                errs.push(FieldError::invalid(
                    pp.key(name),
                    *value,
                    format!("subset {name} does not exist"),
                ));
            }
            errs.extend(validate_non_negative((*value).into(), &pp.key(name)));
        }
        if let Some(waves) = &strategy.waves {
            errs.extend(validate_waves(
                waves,
                subsets,
                !partitions.is_empty(),
                &p.child("waves"),
            ));
        }
    }
    if let Some(limit) = spec.revision_history_limit {
        errs.extend(validate_non_negative(
            limit.into(),
            &path.child("revisionHistoryLimit"),
        ));
    }
    errs
}

fn template_labels_match(
    sel: &LabelSelector,
    meta: Option<&ObjectMeta>,
    path: &Path,
) -> Vec<FieldError> {
    let labels = meta.and_then(|m| m.labels.clone()).unwrap_or_default();
    if selector::is_empty(sel) || selector::matches(sel, &labels) {
        vec![]
    } else {
        vec![FieldError::invalid(
            path.child("metadata").child("labels"),
            json!(labels),
            "`selector` does not match template `labels`",
        )]
    }
}

fn validate_template(spec: &UnitedDeploymentSpec, path: &Path) -> Vec<FieldError> {
    let t = &spec.template;
    let count = [
        t.stateful_set_template.is_some(),
        t.advanced_stateful_set_template.is_some(),
        t.clone_set_template.is_some(),
        t.deployment_template.is_some(),
    ]
    .into_iter()
    .filter(|x| *x)
    .count();
    let kinds =
        "statefulSetTemplate, advancedStatefulSetTemplate, cloneSetTemplate or deploymentTemplate";
    match count {
        0 => {
            return vec![FieldError::required(
                path,
                format!("must provide one of {kinds}"),
            )]
        }
        1 => {}
        _ => {
            return vec![FieldError::forbidden(
                path,
                format!("must provide only one of {kinds}"),
            )]
        }
    }
    let mut errs = Vec::new();
    if let Some(tpl) = &t.stateful_set_template {
        let p = path.child("statefulSetTemplate");
        errs.extend(template_labels_match(
            &spec.selector,
            tpl.metadata.as_ref(),
            &p,
        ));
        if tpl.spec.replicas.is_some() {
            errs.push(FieldError::forbidden(
                p.child("spec").child("replicas"),
                "replicas in statefulSetTemplate will not be used",
            ));
        }
        if tpl
            .spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.partition)
            .is_some()
        {
            errs.push(FieldError::forbidden(
                p.child("spec")
                    .child("updateStrategy")
                    .child("rollingUpdate")
                    .child("partition"),
                "partition in statefulSetTemplate will not be used",
            ));
        }
        errs.extend(validate_pod_template(
            &tpl.spec.template,
            &p.child("spec").child("template"),
            RestartRule::Always,
            &[],
        ));
    }
    if let Some(tpl) = &t.advanced_stateful_set_template {
        let p = path.child("advancedStatefulSetTemplate");
        errs.extend(template_labels_match(
            &spec.selector,
            tpl.metadata.as_ref(),
            &p,
        ));
        errs.extend(validate_statefulset_spec(
            &tpl.spec,
            &p.child("spec"),
            false,
        ));
    }
    if let Some(tpl) = &t.clone_set_template {
        let p = path.child("cloneSetTemplate");
        errs.extend(template_labels_match(
            &spec.selector,
            tpl.metadata.as_ref(),
            &p,
        ));
        errs.extend(validate_cloneset_spec(&tpl.spec, &p.child("spec"), false));
    }
    if let Some(tpl) = &t.deployment_template {
        let p = path.child("deploymentTemplate");
        errs.extend(template_labels_match(
            &spec.selector,
            tpl.metadata.as_ref(),
            &p,
        ));
        errs.extend(validate_pod_template(
            &tpl.spec.template,
            &p.child("spec").child("template"),
            RestartRule::Always,
            &[],
        ));
    }
    errs
}

/// An int >= 0 or an integer percentage 0..=100 (the UD subset replicas rule).
fn validate_subset_quantity(v: &IntOrString, path: &Path) -> Vec<FieldError> {
    let mut errs = intstr::validate_int_or_percent_0_to_100(v, path.as_str());
    if let IntOrString::String(s) = v {
        if errs.is_empty() && !intstr::is_strict_percent(s) {
            errs.push(FieldError::invalid(
                path,
                s.as_str(),
                "must be an integer percentage such as \"30%\"",
            ));
        }
    }
    errs
}

fn resolve(v: &IntOrString, total: i32) -> Option<i64> {
    match v {
        IntOrString::Int(i) => Some((*i).into()),
        IntOrString::String(s) if intstr::is_strict_percent(s) => {
            let p: i64 = s.trim_end_matches('%').parse().ok()?;
            Some((i64::from(total) * p * 2 + 100) / 200)
        }
        IntOrString::String(_) => None,
    }
}

fn validate_subsets(
    subsets: &[Subset],
    replicas: Option<i32>,
    adaptive: bool,
    path: &Path,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, s) in subsets.iter().enumerate() {
        let p = path.index(i);
        if s.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            errs.extend(validate_dns1123_label(&s.name, &p.child("name")));
            if !names.insert(s.name.as_str()) {
                errs.push(FieldError::duplicate(p.child("name"), s.name.as_str()));
            }
        }
        for (field, value) in [
            ("replicas", &s.replicas),
            ("minReplicas", &s.min_replicas),
            ("maxReplicas", &s.max_replicas),
        ] {
            if let Some(v) = value {
                errs.extend(validate_subset_quantity(v, &p.child(field)));
            }
        }
        if adaptive && s.replicas.is_some() {
            errs.push(FieldError::forbidden(p.child("replicas"), "subset.replicas is not allowed with Adaptive scheduling; use minReplicas/maxReplicas"));
        }
        if s.patch.as_ref().is_some_and(|v| !v.is_object()) {
            errs.push(FieldError::invalid(
                p.child("patch"),
                "",
                "patch must be a JSON object",
            ));
        }
    }
    let total = replicas.unwrap_or(0);
    let fixed = subsets.iter().any(|s| s.replicas.is_some());
    let elastic = subsets
        .iter()
        .any(|s| s.min_replicas.is_some() || s.max_replicas.is_some());
    if fixed && elastic {
        errs.push(FieldError::invalid(
            path,
            "",
            "subset.Replicas and subset.MinReplicas/subset.MaxReplicas are mutually exclusive in a UnitedDeployment",
        ));
        return errs;
    }
    if elastic {
        if replicas.is_none() {
            errs.push(FieldError::required(
                Path::new("spec").child("replicas"),
                "replicas is required when subset minReplicas/maxReplicas are used",
            ));
        }
        if subsets.iter().all(|s| s.max_replicas.is_some()) {
            errs.push(FieldError::invalid(
                path,
                "",
                "at least one subset.maxReplicas must be empty",
            ));
        }
        let (mut sum_min, mut sum_max) = (0i64, 0i64);
        for (i, s) in subsets.iter().enumerate() {
            let min = s
                .min_replicas
                .as_ref()
                .and_then(|v| resolve(v, total))
                .unwrap_or(0);
            let max = s
                .max_replicas
                .as_ref()
                .map_or(Some(1_000_000), |v| resolve(v, total))
                .unwrap_or(1_000_000);
            if min > max {
                errs.push(FieldError::invalid(
                    path.index(i).child("minReplicas"),
                    s.min_replicas
                        .as_ref()
                        .map(intstr::to_value)
                        .unwrap_or_default(),
                    "subset.minReplicas must be less than or equal to subset.maxReplicas",
                ));
            }
            sum_min += min;
            sum_max += max;
        }
        if sum_min > sum_max {
            errs.push(FieldError::invalid(
                path,
                sum_min,
                "sum of subset.minReplicas must be less than or equal to sum of subset.maxReplicas",
            ));
        }
        return errs;
    }
    if !fixed {
        return errs;
    }
    let percent_sum: i64 = subsets
        .iter()
        .filter_map(|s| match &s.replicas {
            Some(IntOrString::String(p)) if intstr::is_strict_percent(p) => {
                p.trim_end_matches('%').parse::<i64>().ok()
            }
            _ => None,
        })
        .sum();
    if percent_sum > 100 {
        errs.push(FieldError::invalid(
            path,
            format!("{percent_sum}%"),
            "sum of subset replicas percentages should not be greater than 100%",
        ));
    }
    let Some(r) = replicas else {
        if let Some(i) = subsets
            .iter()
            .position(|s| !matches!(s.replicas, Some(IntOrString::Int(_))))
        {
            errs.push(FieldError::required(
                path.index(i).child("replicas"),
                "every subset must set integer replicas when spec.replicas is not set",
            ));
        }
        return errs;
    };
    let sum: i64 = subsets
        .iter()
        .filter_map(|s| s.replicas.as_ref().and_then(|v| resolve(v, r)))
        .sum();
    let all_specified = subsets.iter().all(|s| s.replicas.is_some());
    if sum > i64::from(r) {
        errs.push(FieldError::invalid(
            path,
            sum,
            format!("sum of indicated subset replicas {sum} should not be greater than UnitedDeployment replicas {r}"),
        ));
    } else if all_specified && sum < i64::from(r) {
        errs.push(FieldError::invalid(
            path,
            sum,
            format!("if replicas of all subsets are provided, the sum of indicated subset replicas {sum} should equal UnitedDeployment replicas {r}"),
        ));
    }
    errs
}
