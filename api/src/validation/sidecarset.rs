//! SidecarSet validation (`pkg/webhook/sidecarset/validating/sidecarset_create_update_handler.go`).

use std::collections::BTreeSet;

use super::common::*;
use super::Validated;
use crate::apps::v1alpha1::sidecarset::{self as ss, SidecarContainer, SidecarSet};
use crate::field::{FieldError, Path};
use crate::intstr;
use crate::selector;

impl Validated for SidecarSet {
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = validate_simple_name(&self.metadata);
        let path = Path::new("spec");
        let spec = &self.spec;
        match &spec.selector {
            None => errs.push(FieldError::required(
                path.child("selector"),
                "no selector defined for SidecarSet",
            )),
            Some(sel) if selector::is_empty(sel) => errs.push(FieldError::invalid(
                path.child("selector"),
                selector_value(sel),
                "empty selector is not valid for sidecarset.",
            )),
            Some(sel) => errs.extend(validate_label_selector(sel, &path.child("selector"))),
        }
        if let Some(ns_sel) = &spec.namespace_selector {
            let p = path.child("namespaceSelector");
            if selector::is_empty(ns_sel) {
                errs.push(FieldError::invalid(
                    &p,
                    selector_value(ns_sel),
                    "empty namespaceSelector is not valid for sidecarset.",
                ));
            }
            if spec.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
                errs.push(FieldError::forbidden(
                    &p,
                    "namespace and namespaceSelector are mutually exclusive",
                ));
            }
        }
        let containers = spec.containers.as_deref().unwrap_or_default();
        let init_containers = spec.init_containers.as_deref().unwrap_or_default();
        if containers.is_empty() && init_containers.is_empty() {
            errs.push(FieldError::required(
                path.child("containers"),
                "no initContainer or container defined for SidecarSet",
            ));
        }
        let rolling = spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            .filter(|v| !v.is_empty())
            .unwrap_or(ss::ROLLING_UPDATE)
            == ss::ROLLING_UPDATE;
        let mut names = BTreeSet::new();
        for (i, c) in init_containers.iter().enumerate() {
            let p = path.child("initContainers").index(i);
            errs.extend(validate_sidecar(c, &p, &mut names, false));
            if c.container.restart_policy.as_deref() == Some("Always") && rolling {
                errs.push(FieldError::invalid(
                    p.child("restartPolicy"),
                    "Always",
                    "The initContainer in-place upgrade is not currently supported.",
                ));
            }
        }
        for (i, c) in containers.iter().enumerate() {
            errs.extend(validate_sidecar(
                c,
                &path.child("containers").index(i),
                &mut names,
                true,
            ));
        }
        let volume_names: Vec<&str> = spec
            .volumes
            .iter()
            .flatten()
            .map(|v| v.name.as_str())
            .collect();
        errs.extend(validate_unique(volume_names, &path.child("volumes")));
        if let Some(strategy) = &spec.update_strategy {
            let p = path.child("updateStrategy");
            let types = [ss::ROLLING_UPDATE, ss::NOT_UPDATE];
            if let Some(t) = strategy.type_.as_deref().filter(|t| !types.contains(t)) {
                errs.push(FieldError::not_supported(p.child("type"), t, &types));
            }
            if let Some(partition) = &strategy.partition {
                errs.extend(intstr::validate_int_or_percent_0_to_100(
                    partition,
                    p.child("partition").as_str(),
                ));
                if strategy.selector.is_some() && !intstr::is_zero(partition) {
                    errs.push(FieldError::invalid(
                        p.child("selector"),
                        selector_value(strategy.selector.as_ref().unwrap_or(&Default::default())),
                        "Partition and Selector cannot be used together",
                    ));
                }
            }
            if let Some(sel) = &strategy.selector {
                errs.extend(validate_label_selector(sel, &p.child("selector")));
            }
            if let Some(mu) = &strategy.max_unavailable {
                let mp = p.child("maxUnavailable");
                let format = intstr::validate_int_or_percent_0_to_100(mu, mp.as_str());
                if format.is_empty() && intstr::is_zero(mu) {
                    errs.push(FieldError::invalid(
                        &mp,
                        intstr::to_value(mu),
                        "must be greater than 0",
                    ));
                }
                errs.extend(format);
            }
            if let Some(prio) = &strategy.priority_strategy {
                errs.extend(validate_priority_strategy(
                    prio,
                    &p.child("priorityStrategy"),
                ));
            }
            if let Some(scatter) = &strategy.scatter_strategy {
                errs.extend(validate_scatter_strategy(
                    scatter,
                    &p.child("scatterStrategy"),
                ));
            }
        }
        if let Some(rev) = spec
            .injection_strategy
            .as_ref()
            .and_then(|i| i.revision.as_ref())
        {
            let p = path.child("injectionStrategy").child("revision");
            if rev.custom_version.is_none() && rev.revision_name.is_none() {
                errs.push(FieldError::required(
                    &p,
                    "customVersion or revisionName must be set",
                ));
            }
            if let Some(policy) = rev
                .policy
                .as_deref()
                .filter(|v| *v != "Always" && *v != "Partial")
            {
                errs.push(FieldError::not_supported(
                    p.child("policy"),
                    policy,
                    &["Always", "Partial"],
                ));
            }
        }
        let mut keys = BTreeSet::new();
        for (i, patch) in spec.patch_pod_metadata.iter().flatten().enumerate() {
            let p = path.child("patchPodMetadata").index(i);
            let annotations = patch.annotations.clone().unwrap_or_default();
            if annotations.is_empty() {
                errs.push(FieldError::required(
                    p.child("annotations"),
                    "annotations can not be empty",
                ));
            }
            for key in annotations.keys() {
                if !keys.insert(key.clone()) {
                    errs.push(FieldError::duplicate(p.child("annotations"), key.as_str()));
                }
            }
            if let Some(policy) = patch
                .patch_policy
                .as_deref()
                .filter(|v| !ss::PATCH_POLICIES.contains(v))
            {
                errs.push(FieldError::not_supported(
                    p.child("patchPolicy"),
                    policy,
                    &ss::PATCH_POLICIES,
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
}

fn validate_sidecar(
    c: &SidecarContainer,
    p: &Path,
    names: &mut BTreeSet<String>,
    app_container: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name = &c.container.name;
    if name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else {
        errs.extend(validate_dns1123_label(name, &p.child("name")));
        if !names.insert(name.clone()) {
            errs.push(FieldError::duplicate(p.child("name"), name.as_str()));
        }
    }
    if c.container
        .image
        .as_deref()
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        errs.push(FieldError::required(p.child("image"), ""));
    }
    let s = &c.sidecar;
    let inject = [ss::BEFORE_APP_CONTAINER, ss::AFTER_APP_CONTAINER];
    if let Some(v) = s
        .pod_inject_policy
        .as_deref()
        .filter(|v| app_container && !inject.contains(v))
    {
        errs.push(FieldError::not_supported(
            p.child("podInjectPolicy"),
            v,
            &inject,
        ));
    }
    if let Some(upgrade) = &s.upgrade_strategy {
        let up = p.child("upgradeStrategy");
        let types = [ss::COLD_UPGRADE, ss::HOT_UPGRADE];
        match upgrade.upgrade_type.as_deref() {
            Some(t) if !types.contains(&t) => errs.push(FieldError::not_supported(
                up.child("upgradeType"),
                t,
                &types,
            )),
            Some(ss::HOT_UPGRADE)
                if upgrade
                    .hot_upgrade_empty_image
                    .as_deref()
                    .unwrap_or_default()
                    .is_empty() =>
            {
                errs.push(FieldError::required(
                    up.child("hotUpgradeEmptyImage"),
                    "hotUpgradeEmptyImage must be set when upgradeType is HotUpgrade",
                ))
            }
            _ => {}
        }
    }
    let share = [ss::SHARE_VOLUME_ENABLED, ss::SHARE_VOLUME_DISABLED];
    for (field, policy) in [
        ("shareVolumePolicy", &s.share_volume_policy),
        ("shareVolumeDevicePolicy", &s.share_volume_device_policy),
    ] {
        if let Some(t) = policy
            .as_ref()
            .and_then(|x| x.type_.as_deref())
            .filter(|t| !share.contains(t))
        {
            errs.push(FieldError::not_supported(
                p.child(field).child("type"),
                t,
                &share,
            ));
        }
    }
    if let Some(policy) = &s.resources_policy {
        let rp = p.child("resourcesPolicy");
        let has_resources = c.container.resources.as_ref().is_some_and(|r| {
            r.limits.as_ref().is_some_and(|l| !l.is_empty())
                || r.requests.as_ref().is_some_and(|q| !q.is_empty())
        });
        if has_resources {
            errs.push(FieldError::forbidden(
                &rp,
                "resourcesPolicy cannot be used together with resources",
            ));
        }
        if !app_container && c.container.restart_policy.as_deref() != Some("Always") {
            errs.push(FieldError::forbidden(
                &rp,
                "resourcesPolicy is only allowed on initContainers with restartPolicy Always",
            ));
        }
        if !["sum", "max"].contains(&policy.target_containers_mode.as_str()) {
            errs.push(FieldError::not_supported(
                rp.child("targetContainersMode"),
                policy.target_containers_mode.as_str(),
                &["sum", "max"],
            ));
        }
        if policy.resources_expr.limits.is_none() && policy.resources_expr.requests.is_none() {
            errs.push(FieldError::required(
                rp.child("resourcesExpr"),
                "at least one of limits and requests is required",
            ));
        }
    }
    for (i, env) in s.transfer_env.iter().flatten().enumerate() {
        let ep = p.child("transferEnv").index(i);
        if env.source_container_name.is_some() == env.source_container_name_from.is_some() {
            errs.push(FieldError::invalid(
                &ep,
                serde_json::to_value(env).unwrap_or_default(),
                "exactly one of sourceContainerName and sourceContainerNameFrom must be set",
            ));
        }
        if env.env_name.is_some() == env.env_names.as_ref().is_some_and(|n| !n.is_empty()) {
            errs.push(FieldError::invalid(
                &ep,
                serde_json::to_value(env).unwrap_or_default(),
                "exactly one of envName and envNames must be set",
            ));
        }
    }
    errs
}
