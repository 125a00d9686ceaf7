//! ManagedCluster and Work validation.

use super::common::*;
use super::Validated;
use crate::federation::v1alpha1::work::{self, Work};
use crate::federation::v1alpha1::ManagedCluster;
use crate::field::{FieldError, Path};

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

impl Validated for ManagedCluster {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        for (i, taint) in self.spec.taints.iter().flatten().enumerate() {
            let p = Path::new("spec").child("taints").index(i);
            if taint.key.is_empty() {
                errs.push(FieldError::required(p.child("key"), ""));
            }
            if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
                errs.push(FieldError::not_supported(
                    p.child("effect"),
                    taint.effect.as_str(),
                    &TAINT_EFFECTS,
                ));
            }
        }
        errs
    }
}

impl Validated for Work {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        let path = Path::new("spec");
        if self.spec.cluster.is_empty() {
            errs.push(FieldError::required(path.child("cluster"), ""));
        } else {
            errs.extend(validate_dns1123_subdomain(
                &self.spec.cluster,
                &path.child("cluster"),
            ));
        }
        let wp = path.child("workload");
        match self.spec.workload.as_object() {
            None => errs.push(FieldError::invalid(
                &wp,
                "",
                "workload must be a Kubernetes object",
            )),
            Some(obj) => {
                for field in ["apiVersion", "kind"] {
                    if obj
                        .get(field)
                        .and_then(|v| v.as_str())
                        .is_none_or(str::is_empty)
                    {
                        errs.push(FieldError::required(wp.child(field), ""));
                    }
                }
                if obj
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(|v| v.as_str())
                    .is_none_or(str::is_empty)
                {
                    errs.push(FieldError::required(wp.child("metadata").child("name"), ""));
                }
            }
        }
        if let Some(policy) = self
            .spec
            .delete_option
            .as_ref()
            .and_then(|d| d.propagation_policy.as_deref())
        {
            if !work::PROPAGATION_POLICIES.contains(&policy) {
                errs.push(FieldError::not_supported(
                    path.child("deleteOption").child("propagationPolicy"),
                    policy,
                    &work::PROPAGATION_POLICIES,
                ));
            }
        }
        errs
    }
}
