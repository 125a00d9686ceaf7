//! Rules shared by several kinds: names, selectors, pod templates, priority/scatter strategies.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{json, Value};
use std::collections::BTreeSet;

use crate::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use crate::field::{FieldError, Path};
use crate::selector;

/// Message for a bad DNS-1123 label.
pub const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// Message for a bad DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn is_label_body(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Go's `IsDNS1123Label` as field errors.
pub fn validate_dns1123_label(value: &str, field: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(FieldError::invalid(
            field,
            value,
            "must be no more than 63 characters",
        ));
    }
    if !is_label_body(value) {
        errs.push(FieldError::invalid(field, value, DNS1123_LABEL_MSG));
    }
    errs
}

/// Go's `IsDNS1123Subdomain` as field errors.
pub fn validate_dns1123_subdomain(value: &str, field: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(FieldError::invalid(
            field,
            value,
            "must be no more than 253 characters",
        ));
    }
    if value.is_empty() || !value.split('.').all(is_label_body) {
        errs.push(FieldError::invalid(field, value, DNS1123_SUBDOMAIN_MSG));
    }
    errs
}

/// `metadata.name`: present (or generateName) and a DNS-1123 subdomain.
pub fn validate_object_name(meta: &ObjectMeta) -> Vec<FieldError> {
    let path = Path::new("metadata").child("name");
    match meta.name.as_deref() {
        Some(name) if !name.is_empty() => validate_dns1123_subdomain(name, &path),
        _ if meta.generate_name.as_deref().is_some_and(|g| !g.is_empty()) => vec![],
        _ => vec![FieldError::required(
            &path,
            "name or generateName is required",
        )],
    }
}

/// Name rule of BroadcastJob, AdvancedCronJob and SidecarSet: `^[a-zA-Z0-9\-]+$`, at most 63.
pub fn validate_simple_name(meta: &ObjectMeta) -> Vec<FieldError> {
    let path = Path::new("metadata").child("name");
    let Some(name) = meta.name.as_deref().filter(|n| !n.is_empty()) else {
        return vec![FieldError::required(
            &path,
            "name or generateName is required",
        )];
    };
    let mut errs = Vec::new();
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        errs.push(FieldError::invalid(
            &path,
            name,
            "must match ^[a-zA-Z0-9\\-]+$",
        ));
    }
    if name.len() > 63 {
        errs.push(FieldError::invalid(
            &path,
            name,
            "must be no more than 63 characters",
        ));
    }
    errs
}

/// The selector as JSON, for error messages.
pub fn selector_value(sel: &LabelSelector) -> Value {
    serde_json::to_value(sel).unwrap_or(Value::Null)
}

/// Operators and values of a label selector (`ValidateLabelSelector`).
pub fn validate_label_selector(sel: &LabelSelector, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, req) in sel.match_expressions.iter().flatten().enumerate() {
        let p = path.child("matchExpressions").index(i);
        let has_values = req.values.as_ref().is_some_and(|v| !v.is_empty());
        match req.operator.as_str() {
            "In" | "NotIn" if !has_values => errs.push(FieldError::required(
                p.child("values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if has_values => errs.push(FieldError::forbidden(
                p.child("values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => errs.push(FieldError::invalid(
                p.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        if req.key.is_empty() {
            errs.push(FieldError::invalid(
                p.child("key"),
                "",
                "name part must be non-empty",
            ));
        }
    }
    errs
}

/// Selector non-empty, well-formed and matching the template labels (workload rule).
pub fn validate_selector_and_template_labels(
    sel: &LabelSelector,
    template: &PodTemplateSpec,
    spec_path: &Path,
    kind: &str,
) -> Vec<FieldError> {
    let sel_path = spec_path.child("selector");
    if selector::is_empty(sel) {
        return vec![FieldError::invalid(
            &sel_path,
            selector_value(sel),
            format!("empty selector is not valid for a {kind}."),
        )];
    }
    let mut errs = validate_label_selector(sel, &sel_path);
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    if !selector::matches(sel, &labels) {
        errs.push(FieldError::invalid(
            spec_path
                .child("template")
                .child("metadata")
                .child("labels"),
            json!(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs
}

/// Which `restartPolicy` values a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartRule {
    /// Long-running workloads: only `Always` (or unset).
    Always,
    /// Jobs: `Never` or `OnFailure`.
    NeverOrOnFailure,
}

/// Core pod-template rules: containers present, names unique DNS labels, images set, volume
/// references resolvable (`extra_volumes` are the volumeClaimTemplate names), restart policy.
pub fn validate_pod_template(
    template: &PodTemplateSpec,
    path: &Path,
    restart: RestartRule,
    extra_volumes: &[String],
) -> Vec<FieldError> {
    let spec_path = path.child("spec");
    let Some(spec) = template.spec.as_ref() else {
        return vec![FieldError::required(&spec_path, "")];
    };
    let mut errs = Vec::new();
    let mut volume_names: BTreeSet<String> = extra_volumes.iter().cloned().collect();
    for (i, v) in spec.volumes.iter().flatten().enumerate() {
        let p = spec_path.child("volumes").index(i).child("name");
        if v.name.is_empty() {
            errs.push(FieldError::required(&p, ""));
        } else {
            errs.extend(validate_dns1123_label(&v.name, &p));
            if !volume_names.insert(v.name.clone()) {
                errs.push(FieldError::duplicate(&p, v.name.as_str()));
            }
        }
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(spec_path.child("containers"), ""));
    }
    let mut container_names = BTreeSet::new();
    let groups = [
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
        ("containers", &spec.containers[..]),
    ];
    for (field, containers) in groups {
        for (i, c) in containers.iter().enumerate() {
            let p = spec_path.child(field).index(i);
            if c.name.is_empty() {
                errs.push(FieldError::required(p.child("name"), ""));
            } else {
                errs.extend(validate_dns1123_label(&c.name, &p.child("name")));
                if !container_names.insert(c.name.clone()) {
                    errs.push(FieldError::duplicate(p.child("name"), c.name.as_str()));
                }
            }
            if c.image.as_deref().unwrap_or_default().trim().is_empty() {
                errs.push(FieldError::required(p.child("image"), ""));
            }
            for (j, m) in c.volume_mounts.iter().flatten().enumerate() {
                if !volume_names.contains(&m.name) {
                    errs.push(FieldError::not_found(
                        p.child("volumeMounts").index(j).child("name"),
                        m.name.as_str(),
                    ));
                }
            }
        }
    }
    let policy = spec.restart_policy.as_deref().unwrap_or_default();
    match restart {
        RestartRule::Always if !policy.is_empty() && policy != "Always" => errs.push(
            FieldError::not_supported(spec_path.child("restartPolicy"), policy, &["Always"]),
        ),
        RestartRule::NeverOrOnFailure if policy != "Never" && policy != "OnFailure" => {
            errs.push(FieldError::invalid(
                spec_path.child("restartPolicy"),
                policy,
                "pod restartPolicy can only be Never or OnFailure",
            ))
        }
        _ => {}
    }
    errs
}

/// `activeDeadlineSeconds` is forbidden in long-running workload templates.
pub fn forbid_active_deadline(
    template: &PodTemplateSpec,
    path: &Path,
    kind: &str,
) -> Vec<FieldError> {
    if template
        .spec
        .as_ref()
        .is_some_and(|s| s.active_deadline_seconds.is_some())
    {
        vec![FieldError::forbidden(
            path.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        )]
    } else {
        vec![]
    }
}

/// A non-negative `int32`/`int64` field.
pub fn validate_non_negative(value: i64, path: &Path) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(
            path,
            value,
            crate::intstr::NON_NEGATIVE_MSG,
        )]
    } else {
        vec![]
    }
}

/// `priorityStrategy` rules (§1.4).
pub fn validate_priority_strategy(p: &UpdatePriorityStrategy, path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let weights = p.weight_priority.as_deref().unwrap_or_default();
    let orders = p.order_priority.as_deref().unwrap_or_default();
    if !weights.is_empty() && !orders.is_empty() {
        errs.push(FieldError::invalid(
            path,
            json!(p),
            "only one of weightPriority and orderPriority can be used",
        ));
    }
    for (i, w) in weights.iter().enumerate() {
        let p = path.child("weightPriority").index(i);
        if !(1..=100).contains(&w.weight) {
            errs.push(FieldError::invalid(
                p.child("weight"),
                w.weight,
                "weight must be valid number in the range 1-100",
            ));
        }
        if selector::is_empty(&w.match_selector) {
            errs.push(FieldError::invalid(
                p.child("matchSelector"),
                selector_value(&w.match_selector),
                "selector can not be empty",
            ));
        }
    }
    for (i, o) in orders.iter().enumerate() {
        if o.ordered_key.is_empty() {
            errs.push(FieldError::invalid(
                path.child("orderPriority").index(i).child("orderedKey"),
                "",
                "order key can not be empty",
            ));
        }
    }
    errs
}

/// `scatterStrategy` rules (§1.4).
pub fn validate_scatter_strategy(terms: &[UpdateScatterTerm], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in terms.iter().enumerate() {
        let p = path.index(i);
        if t.key.is_empty() {
            errs.push(FieldError::invalid(
                p.child("key"),
                "",
                "key can not be empty",
            ));
        }
        if !seen.insert((t.key.clone(), t.value.clone())) {
            errs.push(FieldError::duplicate(&p, format!("{}:{}", t.key, t.value)));
        }
    }
    errs
}

/// Names in a list must be unique; returns one Duplicate error per repeat.
pub fn validate_unique<'a>(
    names: impl IntoIterator<Item = &'a str>,
    path: &Path,
) -> Vec<FieldError> {
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .enumerate()
        .filter(|(_, n)| !seen.insert(*n))
        .map(|(i, n)| FieldError::duplicate(path.index(i), n))
        .collect()
}
