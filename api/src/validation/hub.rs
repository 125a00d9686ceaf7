//! Hub extensions: cluster targets on subsets and UnitedDeployment update waves.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeSet;

use super::common::*;
use crate::apps::v1alpha1::uniteddeployment::{self as ud, Subset, UpdateWaves};
use crate::field::{FieldError, Path};

/// `updateStrategy.waves`: unit, order entries, deadline, and no manual partitions beside them.
pub(crate) fn validate_waves(
    waves: &UpdateWaves,
    subsets: &[Subset],
    partitions_set: bool,
    path: &Path,
) -> Vec<FieldError> {
    let names: BTreeSet<&str> = subsets.iter().map(|s| s.name.as_str()).collect();
    let mut errs = Vec::new();
    if partitions_set {
        errs.push(FieldError::forbidden(
            path,
            "waves and manualUpdate.partitions are mutually exclusive",
        ));
    }
    let unit = waves
        .unit
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(ud::WAVE_UNIT_SUBSET);
    let units = [ud::WAVE_UNIT_SUBSET, ud::WAVE_UNIT_CLUSTER];
    if !units.contains(&unit) {
        errs.push(FieldError::not_supported(path.child("unit"), unit, &units));
    }
    let cluster_subsets = subsets
        .iter()
        .any(|s| s.clusters.is_some() || s.cluster_selector.is_some());
    if unit == ud::WAVE_UNIT_CLUSTER && !cluster_subsets {
        errs.push(FieldError::invalid(
            path.child("unit"),
            unit,
            "waves by Cluster need subsets with clusters or clusterSelector",
        ));
    }
    if let Some(order) = waves.order.as_ref().filter(|_| units.contains(&unit)) {
        errs.extend(validate_unique(
            order.iter().map(String::as_str),
            &path.child("order"),
        ));
        let listed: BTreeSet<&str> = subsets
            .iter()
            .flat_map(|s| s.clusters.iter().flatten())
            .map(String::as_str)
            .collect();
        for (i, entry) in order.iter().enumerate() {
            let unknown = if unit == ud::WAVE_UNIT_SUBSET {
                !names.contains(entry.as_str())
            } else {
                subsets.iter().all(|s| s.cluster_selector.is_none())
                    && !listed.contains(entry.as_str())
            };
            if unknown {
                errs.push(FieldError::not_found(
                    path.child("order").index(i),
                    entry.as_str(),
                ));
            }
        }
    }
    if let Some(deadline) = waves.progress_deadline_seconds.filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            path.child("progressDeadlineSeconds"),
            deadline,
            "must be greater than 0",
        ));
    }
    errs
}

/// Hub extension rules for `clusters` / `clusterSelector` on subsets (UnitedDeployment and WorkloadSpread).
pub(crate) fn validate_cluster_targets<'a>(
    subsets: impl Iterator<Item = (Option<&'a [String]>, Option<&'a LabelSelector>)>,
    path: &Path,
) -> Vec<FieldError> {
    let targets: Vec<_> = subsets.collect();
    let mut errs = Vec::new();
    let any = targets.iter().any(|(c, s)| c.is_some() || s.is_some());
    for (i, (clusters, cluster_selector)) in targets.iter().enumerate() {
        let p = path.index(i);
        if clusters.is_some() && cluster_selector.is_some() {
            errs.push(FieldError::forbidden(
                p.child("clusterSelector"),
                "may not be set together with clusters",
            ));
        }
        if let Some(clusters) = clusters {
            if clusters.is_empty() {
                errs.push(FieldError::required(
                    p.child("clusters"),
                    "must name at least one cluster",
                ));
            }
            for (j, c) in clusters.iter().enumerate() {
                errs.extend(validate_dns1123_subdomain(c, &p.child("clusters").index(j)));
            }
            errs.extend(validate_unique(
                clusters.iter().map(String::as_str),
                &p.child("clusters"),
            ));
        }
        if let Some(sel) = cluster_selector {
            errs.extend(validate_label_selector(sel, &p.child("clusterSelector")));
        }
        if any && clusters.is_none() && cluster_selector.is_none() {
            errs.push(FieldError::required(
                &p,
                "every subset must set clusters or clusterSelector when any subset does",
            ));
        }
    }
    errs
}
