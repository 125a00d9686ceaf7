//! BroadcastJob and AdvancedCronJob validation.

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::advancedcronjob::{self as acj, AdvancedCronJob};
use crate::apps::v1alpha1::broadcastjob::{self as bcj, BroadcastJob, BroadcastJobSpec};
use crate::field::{FieldError, Path};
use crate::intstr;

/// Labels the BroadcastJob controller owns; a template must not preset them.
const RESERVED_LABELS: [&str; 2] = ["broadcastjob-name", "broadcastjob-controller-uid"];

impl Validated for BroadcastJob {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_simple_name(&self.metadata);
        errs.extend(validate_broadcastjob_spec(&self.spec, &Path::new("spec")));
        errs
    }
}

/// Validates a BroadcastJob spec at `path`.
pub fn validate_broadcastjob_spec(spec: &BroadcastJobSpec, path: &Path) -> Vec<FieldError> {
    let template_path = path.child("template");
    let mut errs = validate_pod_template(
        &spec.template,
        &template_path,
        RestartRule::NeverOrOnFailure,
        &[],
    );
    let labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    for key in RESERVED_LABELS {
        if labels.is_some_and(|l| l.contains_key(key)) {
            errs.push(FieldError::forbidden(
                template_path.child("metadata").child("labels").key(key),
                format!("label {key} is set by the BroadcastJob controller"),
            ));
        }
    }
    if let Some(parallelism) = &spec.parallelism {
        errs.extend(intstr::validate_non_negative(
            parallelism,
            path.child("parallelism").as_str(),
        ));
    }
    let cp = path.child("completionPolicy");
    let completion = spec
        .completion_policy
        .type_
        .as_deref()
        .unwrap_or(bcj::COMPLETION_ALWAYS);
    match completion {
        bcj::COMPLETION_ALWAYS => {}
        bcj::COMPLETION_NEVER => {
            if spec.completion_policy.active_deadline_seconds.is_some() {
                errs.push(FieldError::forbidden(
                    cp.child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds is only allowed with completionPolicy type Always",
                ));
            }
            if spec.completion_policy.ttl_seconds_after_finished.is_some() {
                errs.push(FieldError::forbidden(
                    cp.child("ttlSecondsAfterFinished"),
                    "ttlSecondsAfterFinished is only allowed with completionPolicy type Always",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            cp.child("type"),
            other,
            &["Always", "Never"],
        )),
    }
    if let Some(v) = spec.completion_policy.active_deadline_seconds {
        errs.extend(validate_non_negative(v, &cp.child("activeDeadlineSeconds")));
    }
    if let Some(v) = spec.completion_policy.ttl_seconds_after_finished {
        errs.extend(validate_non_negative(
            v.into(),
            &cp.child("ttlSecondsAfterFinished"),
        ));
    }
    if let Some(failure) = &spec.failure_policy {
        let fp = path.child("failurePolicy");
        let types = [
            bcj::FAILURE_CONTINUE,
            bcj::FAILURE_FAIL_FAST,
            bcj::FAILURE_PAUSE,
        ];
        if let Some(t) = failure.type_.as_deref().filter(|t| !types.contains(t)) {
            errs.push(FieldError::not_supported(fp.child("type"), t, &types));
        }
        if let Some(limit) = failure.restart_limit {
            errs.extend(validate_non_negative(
                limit.into(),
                &fp.child("restartLimit"),
            ));
        }
    }
    errs
}

impl Validated for AdvancedCronJob {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_simple_name(&self.metadata);
        let path = Path::new("spec");
        let spec = &self.spec;
        errs.extend(validate_schedule(&spec.schedule, &path.child("schedule")));
        if let Some(tz) = &spec.time_zone {
            let p = path.child("timeZone");
            if tz.is_empty() || tz == "Local" {
                errs.push(FieldError::invalid(&p, tz.as_str(), "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones"));
            }
            if spec.schedule.starts_with("TZ=") || spec.schedule.starts_with("CRON_TZ=") {
                errs.push(FieldError::invalid(
                    &p,
                    tz.as_str(),
                    "cannot use both timeZone field and TZ or CRON_TZ in schedule",
                ));
            }
        }
        if let Some(policy) = spec.concurrency_policy.as_deref() {
            if !acj::CONCURRENCY_POLICIES.contains(&policy) {
                errs.push(FieldError::not_supported(
                    path.child("concurrencyPolicy"),
                    policy,
                    &acj::CONCURRENCY_POLICIES,
                ));
            }
        }
        if let Some(v) = spec.starting_deadline_seconds {
            errs.extend(validate_non_negative(
                v,
                &path.child("startingDeadlineSeconds"),
            ));
        }
        if let Some(v) = spec.successful_jobs_history_limit {
            errs.extend(validate_non_negative(
                v.into(),
                &path.child("successfulJobsHistoryLimit"),
            ));
        }
        if let Some(v) = spec.failed_jobs_history_limit {
            errs.extend(validate_non_negative(
                v.into(),
                &path.child("failedJobsHistoryLimit"),
            ));
        }
        let tp = path.child("template");
        match (
            &spec.template.job_template,
            &spec.template.broadcast_job_template,
        ) {
            (None, None) => errs.push(FieldError::required(
                &tp,
                "spec must have one template, either JobTemplate or BroadcastJobTemplate",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &tp,
                "",
                "spec can have only one template, either JobTemplate or BroadcastJobTemplate",
            )),
            (Some(job), None) => {
                if let Some(job_spec) = &job.spec {
                    errs.extend(validate_pod_template(
                        &job_spec.template,
                        &tp.child("jobTemplate").child("spec").child("template"),
                        RestartRule::NeverOrOnFailure,
                        &[],
                    ));
                }
            }
            (None, Some(bj)) => {
                if let Some(bj_spec) = &bj.spec {
                    errs.extend(validate_broadcastjob_spec(
                        bj_spec,
                        &tp.child("broadcastJobTemplate").child("spec"),
                    ));
                }
            }
        }
        errs
    }
}

/// A standard five-field cron expression (or a `@` descriptor), optionally prefixed with TZ=.
fn validate_schedule(schedule: &str, path: &Path) -> Vec<FieldError> {
    if schedule.trim().is_empty() {
        return vec![FieldError::required(path, "schedule must not be empty")];
    }
    let mut fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields
        .first()
        .is_some_and(|f| f.starts_with("TZ=") || f.starts_with("CRON_TZ="))
    {
        fields.remove(0);
    }
    let descriptor = fields.len() == 1 && fields[0].starts_with('@');
    let field_ok = |f: &&str| {
        f.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*/,-?".contains(&b))
    };
    if descriptor || (fields.len() == 5 && fields.iter().all(field_ok)) {
        vec![]
    } else {
        vec![FieldError::invalid(
            path,
            schedule,
            format!("expected exactly 5 fields, found {}", fields.len()),
        )]
    }
}
