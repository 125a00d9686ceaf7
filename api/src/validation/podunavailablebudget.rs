//! PodUnavailableBudget validation (`pkg/webhook/podunavailablebudget/validating/pub_create_update_handler.go`).

use serde_json::Value;

use super::common::*;
use super::Validated;
use crate::field::{FieldError, Path};
use crate::intstr;
use crate::policy::v1alpha1::podunavailablebudget::{self as pub_, PodUnavailableBudget};
use crate::selector;

impl Validated for PodUnavailableBudget {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        let path = Path::new("spec");
        let spec = &self.spec;
        match (&spec.selector, &spec.target_ref) {
            (None, None) => errs.push(FieldError::invalid(
                path.child("selector"),
                Value::Null,
                "no selector or targetRef defined in PodUnavailableBudget",
            )),
            (Some(_), Some(target)) => errs.push(FieldError::invalid(
                path.child("targetRef"),
                serde_json::to_value(target).unwrap_or_default(),
                "selector and targetRef are mutually exclusive",
            )),
            (Some(sel), None) if selector::is_empty(sel) => errs.push(FieldError::invalid(
                path.child("selector"),
                selector_value(sel),
                "empty selector is not valid for PodUnavailableBudget.",
            )),
            (Some(sel), None) => errs.extend(validate_label_selector(sel, &path.child("selector"))),
            (None, Some(target)) => {
                let tp = path.child("targetRef");
                for (field, value) in [
                    ("apiVersion", &target.api_version),
                    ("kind", &target.kind),
                    ("name", &target.name),
                ] {
                    if value.as_deref().unwrap_or_default().is_empty() {
                        errs.push(FieldError::required(tp.child(field), ""));
                    }
                }
            }
        }
        match (&spec.max_unavailable, &spec.min_available) {
            (None, None) => errs.push(FieldError::invalid(
                path.child("maxUnavailable"),
                Value::Null,
                "no maxUnavailable or minAvailable defined in PodUnavailableBudget",
            )),
            (Some(_), Some(min)) => errs.push(FieldError::invalid(
                path.child("minAvailable"),
                intstr::to_value(min),
                "maxUnavailable and minAvailable are mutually exclusive",
            )),
            (Some(v), None) => errs.extend(intstr::validate_int_or_percent_0_to_100(
                v,
                path.child("maxUnavailable").as_str(),
            )),
            (None, Some(v)) => errs.extend(intstr::validate_int_or_percent_0_to_100(
                v,
                path.child("minAvailable").as_str(),
            )),
        }
        let annotations = self.metadata.annotations.clone().unwrap_or_default();
        let ap = Path::new("metadata").child("annotations");
        if let Some(ops) = annotations.get(pub_::PROTECT_OPERATIONS_ANNOTATION) {
            for op in ops.split(',').map(str::trim) {
                if !pub_::PROTECT_OPERATIONS.contains(&op) {
                    errs.push(FieldError::not_supported(
                        ap.key(pub_::PROTECT_OPERATIONS_ANNOTATION),
                        op,
                        &pub_::PROTECT_OPERATIONS,
                    ));
                }
            }
        }
        if let Some(total) = annotations.get(pub_::PROTECT_TOTAL_REPLICAS_ANNOTATION) {
            if !total.parse::<i32>().is_ok_and(|n| n >= 1) {
                errs.push(FieldError::invalid(
                    ap.key(pub_::PROTECT_TOTAL_REPLICAS_ANNOTATION),
                    total.as_str(),
                    "must be a positive integer",
                ));
            }
        }
        errs
    }
}
