//! ImagePullJob, ImageListPullJob, NodeImage and ContainerRecreateRequest validation.

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequest;
use crate::apps::v1alpha1::imagelistpulljob::ImageListPullJob;
use crate::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobTemplate};
use crate::apps::v1alpha1::nodeimage::NodeImage;
use crate::field::{FieldError, Path};
use crate::intstr;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// A loose image-reference check: non-empty, no whitespace, no upper case in the repository part.
fn validate_image(image: &str, path: &Path) -> Vec<FieldError> {
    if image.is_empty() {
        return vec![FieldError::required(path, "image can not be empty")];
    }
    let repo = image.split(['@']).next().unwrap_or(image);
    let repo = repo
        .rsplit_once(':')
        .filter(|(_, tag)| !tag.contains('/'))
        .map_or(repo, |(r, _)| r);
    if image.chars().any(char::is_whitespace) || repo.chars().any(|c| c.is_ascii_uppercase()) {
        return vec![FieldError::invalid(
            path,
            image,
            "invalid image reference format",
        )];
    }
    vec![]
}

fn validate_pull_template(t: &ImagePullJobTemplate, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(sel) = &t.selector {
        let sp = path.child("selector");
        let has_labels = sel.match_labels.as_ref().is_some_and(|m| !m.is_empty())
            || sel
                .match_expressions
                .as_ref()
                .is_some_and(|e| !e.is_empty());
        if let Some(names) = &sel.names {
            if has_labels {
                errs.push(FieldError::forbidden(
                    &sp,
                    "can not set both names and labelSelector in this spec.selector",
                ));
            }
            errs.extend(validate_unique(
                names.iter().map(String::as_str),
                &sp.child("names"),
            ));
        }
        if t.pod_selector.is_some() {
            errs.push(FieldError::forbidden(
                path.child("podSelector"),
                "can not set both selector and podSelector",
            ));
        }
    }
    if let Some(parallelism) = &t.parallelism {
        let pp = path.child("parallelism");
        match parallelism {
            IntOrString::Int(_) => {
                errs.extend(intstr::validate_non_negative(parallelism, pp.as_str()))
            }
            IntOrString::String(s) => errs.push(FieldError::invalid(
                &pp,
                s.as_str(),
                "parallelism must be an integer",
            )),
        }
    }
    let timeout = t
        .pull_policy
        .as_ref()
        .and_then(|p| p.timeout_seconds)
        .unwrap_or(600);
    if let Some(pull) = &t.pull_policy {
        let pp = path.child("pullPolicy");
        if let Some(v) = pull.timeout_seconds {
            errs.extend(validate_non_negative(v.into(), &pp.child("timeoutSeconds")));
        }
        if let Some(v) = pull.backoff_limit {
            errs.extend(validate_non_negative(v.into(), &pp.child("backoffLimit")));
        }
    }
    let cp = path.child("completionPolicy");
    let policy = &t.completion_policy;
    match policy
        .type_
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("Always")
    {
        "Always" => {
            if let Some(deadline) = policy
                .active_deadline_seconds
                .filter(|d| *d <= i64::from(timeout))
            {
                errs.push(FieldError::invalid(
                    cp.child("activeDeadlineSeconds"),
                    deadline,
                    "activeDeadlineSeconds must be greater than pullPolicy.timeoutSeconds",
                ));
            }
        }
        "Never" => {
            if policy.active_deadline_seconds.is_some()
                || policy.ttl_seconds_after_finished.is_some()
            {
                errs.push(FieldError::forbidden(
                    &cp,
                    "activeDeadlineSeconds and ttlSecondsAfterFinished are only allowed with type Always",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            cp.child("type"),
            other,
            &["Always", "Never"],
        )),
    }
    if let Some(ttl) = policy.ttl_seconds_after_finished {
        errs.extend(validate_non_negative(
            ttl.into(),
            &cp.child("ttlSecondsAfterFinished"),
        ));
    }
    if let Some(p) = t
        .image_pull_policy
        .as_deref()
        .filter(|p| *p != "Always" && *p != "IfNotPresent")
    {
        errs.push(FieldError::not_supported(
            path.child("imagePullPolicy"),
            p,
            &["Always", "IfNotPresent"],
        ));
    }
    errs
}

impl Validated for ImagePullJob {
    fn validate(&self) -> Vec<FieldError> {
        let path = Path::new("spec");
        let mut errs = validate_object_name(&self.metadata);
        errs.extend(validate_image(&self.spec.image, &path.child("image")));
        errs.extend(validate_pull_template(&self.spec.template, &path));
        errs
    }
}

impl Validated for ImageListPullJob {
    fn validate(&self) -> Vec<FieldError> {
        let path = Path::new("spec");
        let mut errs = validate_object_name(&self.metadata);
        let ip = path.child("images");
        if self.spec.images.is_empty() {
            errs.push(FieldError::required(&ip, "images can not be empty"));
        }
        if self.spec.images.len() > 255 {
            errs.push(FieldError::too_many(&ip, self.spec.images.len(), 255));
        }
        for (i, image) in self.spec.images.iter().enumerate() {
            errs.extend(validate_image(image, &ip.index(i)));
        }
        errs.extend(validate_unique(
            self.spec.images.iter().map(String::as_str),
            &ip,
        ));
        errs.extend(validate_pull_template(&self.spec.template, &path));
        errs
    }
}

impl Validated for NodeImage {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        let ip = Path::new("spec").child("images");
        let images = self.spec.images.clone().unwrap_or_default();
        if images.len() > 256 {
            errs.push(FieldError::too_many(&ip, images.len(), 256));
        }
        for (name, image) in &images {
            let p = ip.key(name);
            errs.extend(validate_unique(
                image.tags.iter().map(|t| t.tag.as_str()),
                &p.child("tags"),
            ));
            for (i, tag) in image.tags.iter().enumerate() {
                if tag.tag.is_empty() {
                    errs.push(FieldError::required(
                        p.child("tags").index(i).child("tag"),
                        "",
                    ));
                }
            }
        }
        errs
    }
}

impl Validated for ContainerRecreateRequest {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_object_name(&self.metadata);
        let path = Path::new("spec");
        let spec = &self.spec;
        if spec.pod_name.is_empty() {
            errs.push(FieldError::required(
                path.child("podName"),
                "podName can not be empty",
            ));
        }
        let cp = path.child("containers");
        if spec.containers.is_empty() {
            errs.push(FieldError::required(&cp, "containers list can not be null"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let p = cp.index(i);
            if c.name.is_empty() {
                errs.push(FieldError::required(p.child("name"), ""));
            } else if !seen.insert(c.name.as_str()) {
                errs.push(FieldError::invalid(
                    p.child("name"),
                    c.name.as_str(),
                    format!("can not recreate {} multi times", c.name),
                ));
            }
            if c.pre_stop.is_some() || c.ports.is_some() || c.status_context.is_some() {
                errs.push(FieldError::forbidden(
                    &p,
                    "preStop, ports, statusContext in container are ready-only fields",
                ));
            }
        }
        if let Some(deadline) = spec.active_deadline_seconds.filter(|d| *d < 3) {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                deadline,
                "activeDeadlineSeconds can not be less than 3s",
            ));
        }
        if let Some(ttl) = spec.ttl_seconds_after_finished {
            errs.extend(validate_non_negative(
                ttl.into(),
                &path.child("ttlSecondsAfterFinished"),
            ));
        }
        if let Some(strategy) = &spec.strategy {
            let sp = path.child("strategy");
            if let Some(p) = strategy
                .failure_policy
                .as_deref()
                .filter(|p| *p != "Fail" && *p != "Ignore")
            {
                errs.push(FieldError::not_supported(
                    sp.child("failurePolicy"),
                    p,
                    &["Fail", "Ignore"],
                ));
            }
            if let Some(v) = strategy.termination_grace_period_seconds {
                errs.extend(validate_non_negative(
                    v,
                    &sp.child("terminationGracePeriodSeconds"),
                ));
            }
            if let Some(v) = strategy.unready_grace_period_seconds {
                errs.extend(validate_non_negative(
                    v,
                    &sp.child("unreadyGracePeriodSeconds"),
                ));
            }
            if let Some(v) = strategy.min_started_seconds {
                errs.extend(validate_non_negative(
                    v.into(),
                    &sp.child("minStartedSeconds"),
                ));
            }
        }
        errs
    }
}
