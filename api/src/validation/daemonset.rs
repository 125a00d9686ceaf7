//! Advanced DaemonSet validation (`pkg/webhook/daemonset/validating/daemonset_validation.go`).

use serde_json::json;

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::daemonset::{self as ds, DaemonSet, DaemonSetSpec};
use crate::field::{FieldError, Path};
use crate::intstr;

impl Validated for DaemonSet {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        errs.extend(validate_daemonset_spec(&self.spec, &Path::new("spec")));
        errs
    }
}

const UPDATE_TYPES: [&str; 2] = [ds::ROLLING_UPDATE, ds::ON_DELETE];
const ROLLING_TYPES: [&str; 3] = [ds::STANDARD, ds::IN_PLACE_IF_POSSIBLE, ds::SURGING];

/// Validates an Advanced DaemonSet spec at `path`.
pub fn validate_daemonset_spec(spec: &DaemonSetSpec, path: &Path) -> Vec<FieldError> {
    let mut errs =
        validate_selector_and_template_labels(&spec.selector, &spec.template, path, "daemonset");
    let template_path = path.child("template");
    errs.extend(validate_pod_template(
        &spec.template,
        &template_path,
        RestartRule::Always,
        &[],
    ));
    errs.extend(forbid_active_deadline(
        &spec.template,
        &template_path,
        "DaemonSet",
    ));
    if let Some(v) = spec.min_ready_seconds {
        errs.extend(validate_non_negative(
            v.into(),
            &path.child("minReadySeconds"),
        ));
    }
    if let Some(v) = spec.revision_history_limit {
        errs.extend(validate_non_negative(
            v.into(),
            &path.child("revisionHistoryLimit"),
        ));
    }
    if let Some(burst) = &spec.burst_replicas {
        errs.extend(intstr::validate_non_negative(
            burst,
            path.child("burstReplicas").as_str(),
        ));
    }
    if spec
        .lifecycle
        .as_ref()
        .is_some_and(|l| l.in_place_update.is_some())
    {
        errs.push(FieldError::invalid(
            path.child("lifecycle").child("inPlaceUpdate"),
            json!(spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.in_place_update.clone())),
            "inPlaceUpdate hook has not supported yet",
        ));
    }
    let Some(strategy) = &spec.update_strategy else {
        return errs;
    };
    let p = path.child("updateStrategy");
    let type_ = strategy
        .type_
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(ds::ROLLING_UPDATE);
    if !UPDATE_TYPES.contains(&type_) {
        errs.push(FieldError::not_supported(
            p.child("type"),
            type_,
            &UPDATE_TYPES,
        ));
    }
    if type_ != ds::ROLLING_UPDATE {
        return errs;
    }
    let rp = p.child("rollingUpdate");
    let Some(ru) = &strategy.rolling_update else {
        errs.push(FieldError::required(
            &rp,
            "rollingUpdate is required when type is RollingUpdate",
        ));
        return errs;
    };
    let ru_type = ru
        .type_
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(ds::STANDARD);
    if !ROLLING_TYPES.contains(&ru_type) {
        errs.push(FieldError::not_supported(
            rp.child("rollingUpdateType"),
            ru_type,
            &ROLLING_TYPES,
        ));
    }
    let mu_path = rp.child("maxUnavailable");
    let ms_path = rp.child("maxSurge");
    let mut format_errs = Vec::new();
    if let Some(mu) = &ru.max_unavailable {
        format_errs.extend(intstr::validate_int_or_percent_0_to_100(
            mu,
            mu_path.as_str(),
        ));
    }
    if let Some(ms) = &ru.max_surge {
        format_errs.extend(intstr::validate_int_or_percent_0_to_100(
            ms,
            ms_path.as_str(),
        ));
    }
    if format_errs.is_empty() {
        let mu_zero = ru.max_unavailable.as_ref().is_none_or(intstr::is_zero);
        let ms_zero = ru.max_surge.as_ref().is_none_or(intstr::is_zero);
        let value = |v: &Option<_>| v.as_ref().map(intstr::to_value).unwrap_or(json!(0));
        if mu_zero && ms_zero {
            errs.push(FieldError::invalid(
                &mu_path,
                value(&ru.max_unavailable),
                "cannot be 0 when maxSurge is 0",
            ));
        } else if !mu_zero && !ms_zero {
            errs.push(FieldError::invalid(
                &ms_path,
                value(&ru.max_surge),
                "may not be set when maxUnavailable is non-zero",
            ));
        }
        if !ms_zero && ru_type == ds::IN_PLACE_IF_POSSIBLE {
            errs.push(FieldError::invalid(
                &ms_path,
                value(&ru.max_surge),
                "must be 0 when rollingUpdateType is InPlaceIfPossible",
            ));
        }
    }
    errs.extend(format_errs);
    if let Some(partition) = &ru.partition {
        errs.extend(intstr::validate_int_or_percent_0_to_100(
            partition,
            rp.child("partition").as_str(),
        ));
    }
    if let Some(sel) = &ru.selector {
        errs.extend(validate_label_selector(sel, &rp.child("selector")));
    }
    errs
}
