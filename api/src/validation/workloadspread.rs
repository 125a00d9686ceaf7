//! WorkloadSpread validation (`pkg/webhook/workloadspread/validating/workloadspread_validation.go`).

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::common::*;
use super::hub::validate_cluster_targets;
use super::Validated;
use crate::apps::v1alpha1::workloadspread::{self as ws, WorkloadSpread};
use crate::field::{FieldError, Path};
use crate::intstr;

/// Supported target kinds as (API group, kind).
const TARGETS: [(&str, &str); 6] = [
    ("apps.kruise.io", "CloneSet"),
    ("apps", "Deployment"),
    ("apps", "ReplicaSet"),
    ("batch", "Job"),
    ("apps", "StatefulSet"),
    ("apps.kruise.io", "StatefulSet"),
];

impl Validated for WorkloadSpread {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        let path = Path::new("spec");
        let spec = &self.spec;
        let tp = path.child("targetRef");
        let target = &spec.target_ref;
        for (field, value) in [
            ("apiVersion", &target.api_version),
            ("kind", &target.kind),
            ("name", &target.name),
        ] {
            if value.is_empty() {
                errs.push(FieldError::required(tp.child(field), ""));
            }
        }
        let group = target.api_version.split_once('/').map_or("", |(g, _)| g);
        if !target.kind.is_empty() && !TARGETS.contains(&(group, target.kind.as_str())) {
            errs.push(FieldError::invalid(
                &tp,
                serde_json::to_value(target).unwrap_or_default(),
                "TargetReference is not allowed",
            ));
        }
        let is_statefulset = target.kind == "StatefulSet";
        if let Some(sel) = spec
            .target_filter
            .as_ref()
            .and_then(|f| f.selector.as_ref())
        {
            errs.extend(validate_label_selector(
                sel,
                &path.child("targetFilter").child("selector"),
            ));
        }
        let sp = path.child("subsets");
        let subsets = &spec.subsets;
        if subsets.is_empty() {
            errs.push(FieldError::required(
                &sp,
                "subsets number must >= 1 in WorkloadSpread",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        let mut percent_sum = 0i64;
        let first_is_percent = subsets
            .iter()
            .find_map(|s| s.max_replicas.as_ref())
            .map(|v| matches!(v, IntOrString::String(_)));
        for (i, s) in subsets.iter().enumerate() {
            let p = sp.index(i);
            if s.name.is_empty() {
                errs.push(FieldError::required(p.child("name"), ""));
            } else if !names.insert(s.name.as_str()) {
                errs.push(FieldError::duplicate(p.child("name"), s.name.as_str()));
            }
            if let Some(max) = &s.max_replicas {
                let mp = p.child("maxReplicas");
                let format = intstr::validate_int_or_percent_0_to_100(max, mp.as_str());
                let is_percent = matches!(max, IntOrString::String(_));
                if format.is_empty() {
                    if first_is_percent.is_some_and(|f| f != is_percent) {
                        errs.push(FieldError::invalid(
                            &mp,
                            intstr::to_value(max),
                            "the maxReplicas type of all subsets must be the same",
                        ));
                    }
                    if is_percent && is_statefulset {
                        errs.push(FieldError::invalid(
                            &mp,
                            intstr::to_value(max),
                            "maxReplicas must be an integer for StatefulSet targets",
                        ));
                    }
                    if let IntOrString::String(v) = max {
                        percent_sum += v.trim_end_matches('%').parse::<i64>().unwrap_or(0);
                    }
                }
                errs.extend(format);
            }
            if s.patch.as_ref().is_some_and(|v| !v.is_object()) {
                errs.push(FieldError::invalid(
                    p.child("patch"),
                    "",
                    "patch must be a JSON object",
                ));
            }
        }
        if first_is_percent == Some(true) {
            let last_unlimited = subsets.last().is_some_and(|s| s.max_replicas.is_none());
            if percent_sum > 100 {
                errs.push(FieldError::invalid(
                    &sp,
                    format!("{percent_sum}%"),
                    "maxReplicas sum of all subsets exceeds 100%",
                ));
            } else if percent_sum != 100 && !last_unlimited {
                errs.push(FieldError::invalid(
                    &sp,
                    format!("{percent_sum}%"),
                    "maxReplicas sum of all subsets must equal 100% when the last subset sets maxReplicas",
                ));
            }
        }
        errs.extend(validate_cluster_targets(
            subsets
                .iter()
                .map(|s| (s.clusters.as_deref(), s.cluster_selector.as_ref())),
            &sp,
        ));
        if let Some(schedule) = &spec.schedule_strategy {
            let p = path.child("scheduleStrategy");
            let t = schedule
                .type_
                .as_deref()
                .filter(|v| !v.is_empty())
                .unwrap_or(ws::FIXED);
            if t != ws::FIXED && t != ws::ADAPTIVE {
                errs.push(FieldError::not_supported(
                    p.child("type"),
                    t,
                    &[ws::ADAPTIVE, ws::FIXED],
                ));
            }
            if let Some(adaptive) = &schedule.adaptive {
                let ap = p.child("adaptive");
                if t != ws::ADAPTIVE {
                    errs.push(FieldError::forbidden(
                        &ap,
                        "adaptive is only allowed when type is Adaptive",
                    ));
                }
                if let Some(secs) = adaptive.reschedule_critical_seconds {
                    let rp = ap.child("rescheduleCriticalSeconds");
                    let max = if subsets.len() > 1 {
                        (300 - 5) / (subsets.len() as i32 - 1)
                    } else {
                        300 - 5
                    };
                    if !(0..=max).contains(&secs) {
                        errs.push(FieldError::invalid(
                            &rp,
                            secs,
                            format!("rescheduleCriticalSeconds must be in the range 0-{max}"),
                        ));
                    }
                }
            }
            if t == ws::ADAPTIVE
                && subsets.len() > 1
                && subsets.last().is_some_and(|s| s.max_replicas.is_some())
            {
                errs.push(FieldError::invalid(
                    sp.index(subsets.len() - 1).child("maxReplicas"),
                    subsets
                        .last()
                        .and_then(|s| s.max_replicas.as_ref())
                        .map(intstr::to_value)
                        .unwrap_or_default(),
                    "the last subset must not set maxReplicas with Adaptive scheduling",
                ));
            }
        }
        errs
    }
}
