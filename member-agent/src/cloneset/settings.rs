//! The numbers a CloneSet spec resolves to (percentages rounded the way upstream rounds them).

use std::collections::BTreeSet;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::common::{Lifecycle, UpdatePriorityStrategy, UpdateScatterTerm};
use kruise_api::apps::v1alpha1::cloneset::{CloneSet, IN_PLACE_IF_POSSIBLE, IN_PLACE_ONLY};
use kruise_api::intstr::{self, IntOrPercent};

/// Label on a CloneSet asking that PreparingDelete pods do not count towards replicas.
pub const EXCLUDE_PREPARING_DELETE_LABEL: &str =
    "apps.kruise.io/cloneset-scaling-exclude-preparing-delete";

/// How pods are updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpdateType {
    /// Recreate every pod.
    #[default]
    ReCreate,
    /// In place when only images/metadata changed, else recreate.
    InPlaceIfPossible,
    /// Only in place.
    InPlaceOnly,
}

/// A CloneSet spec with every IntOrString resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Desired replicas.
    pub replicas: i32,
    /// Pods kept on the current revision.
    pub partition: i32,
    /// Extra pods allowed during an update.
    pub max_surge: i32,
    /// Unavailable pods allowed during an update.
    pub max_unavailable: i32,
    /// Unavailable pods allowed while scaling up (`i32::MAX` = unlimited).
    pub scale_max_unavailable: i32,
    /// Updates paused.
    pub paused: bool,
    /// Update type.
    pub update_type: UpdateType,
    /// In-place grace period in seconds.
    pub grace_seconds: i32,
    /// minReadySeconds.
    pub min_ready_seconds: i32,
    /// Lifecycle hooks.
    pub lifecycle: Option<Lifecycle>,
    /// `scaleStrategy.podsToDelete`.
    pub pods_to_delete: BTreeSet<String>,
    /// PreparingDelete pods do not count towards replicas.
    pub exclude_preparing_delete: bool,
    /// PVCs of vanished pods are deleted instead of reused.
    pub disable_pvc_reuse: bool,
    /// Update priority.
    pub priority: Option<UpdatePriorityStrategy>,
    /// Update scatter.
    pub scatter: Vec<UpdateScatterTerm>,
    /// `progressDeadlineSeconds`; `None` (unset or `MaxInt32`) disables the `Progressing` condition.
    pub progress_deadline_seconds: Option<i32>,
}

/// Upstream's `CalculatePartitionReplicas`: percent rounds up, a percent below 100% with more than
/// one replica leaves at least one pod to update, clamped to `[0, replicas]`.
pub fn partition_replicas(partition: Option<&IntOrString>, replicas: i32) -> i32 {
    let Some(p) = partition else { return 0 };
    let value = intstr::scaled_value(p, replicas, true).unwrap_or(0);
    let value = match intstr::parse(p) {
        Ok(IntOrPercent::Percent(pct)) if pct < 100.0 && replicas > 1 && value >= replicas => {
            replicas - 1
        }
        _ => value,
    };
    value.clamp(0, replicas.max(0))
}

impl Settings {
    /// Resolves a (defaulted) CloneSet. Malformed values count as 0, as upstream does.
    pub fn from_cloneset(cs: &CloneSet) -> Self {
        let spec = &cs.spec;
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let us = spec.update_strategy.clone().unwrap_or_default();
        let ss = spec.scale_strategy.clone().unwrap_or_default();
        let paused = us.paused.unwrap_or(false);
        let mut max_surge = us
            .max_surge
            .as_ref()
            .and_then(|v| intstr::scaled_value(v, replicas, true).ok())
            .unwrap_or(0);
        if paused {
            max_surge = 0;
        }
        let max_unavailable = intstr::scaled_value(
            us.max_unavailable
                .as_ref()
                .unwrap_or(&IntOrString::String("20%".into())),
            replicas,
            max_surge == 0,
        )
        .unwrap_or(0);
        let scale_max_unavailable = ss
            .max_unavailable
            .as_ref()
            .and_then(|v| intstr::scaled_value(v, replicas, true).ok())
            .unwrap_or(i32::MAX);
        let update_type = match us.type_.as_deref() {
            Some(IN_PLACE_IF_POSSIBLE) => UpdateType::InPlaceIfPossible,
            Some(IN_PLACE_ONLY) => UpdateType::InPlaceOnly,
            _ => UpdateType::ReCreate,
        };
        Settings {
            replicas,
            partition: partition_replicas(us.partition.as_ref(), replicas),
            max_surge,
            max_unavailable,
            scale_max_unavailable,
            paused,
            update_type,
            grace_seconds: us
                .in_place_update_strategy
                .as_ref()
                .and_then(|s| s.grace_period_seconds)
                .unwrap_or(0),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            lifecycle: spec.lifecycle.clone(),
            pods_to_delete: ss
                .pods_to_delete
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect(),
            exclude_preparing_delete: cs
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(EXCLUDE_PREPARING_DELETE_LABEL))
                .is_some_and(|v| v == "true"),
            disable_pvc_reuse: ss.disable_pvc_reuse.unwrap_or(false),
            priority: us.priority_strategy.clone(),
            scatter: us.scatter_strategy.clone().unwrap_or_default(),
            progress_deadline_seconds: spec.progress_deadline_seconds.filter(|d| *d != i32::MAX),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_rounding_follows_upstream() {
        let pct = |s: &str| IntOrString::String(s.into());
        assert_eq!(partition_replicas(None, 5), 0);
        assert_eq!(partition_replicas(Some(&IntOrString::Int(3)), 5), 3);
        assert_eq!(partition_replicas(Some(&IntOrString::Int(9)), 5), 5);
        assert_eq!(partition_replicas(Some(&pct("50%")), 5), 3);
        assert_eq!(partition_replicas(Some(&pct("99%")), 5), 4);
        assert_eq!(partition_replicas(Some(&pct("100%")), 5), 5);
        assert_eq!(partition_replicas(Some(&pct("99%")), 1), 1);
        assert_eq!(partition_replicas(Some(&pct("bad")), 5), 0);
    }

    #[test]
    fn max_unavailable_rounds_down_with_surge() {
        let cs: CloneSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "a"},
            "spec": {"replicas": 5, "selector": {}, "template": {},
                     "updateStrategy": {"maxUnavailable": "30%", "maxSurge": "10%"}}
        }))
        .unwrap();
        let s = Settings::from_cloneset(&cs);
        assert_eq!((s.max_surge, s.max_unavailable), (1, 1));
        let mut cs2 = cs.clone();
        cs2.spec.update_strategy.as_mut().unwrap().max_surge = None;
        let s = Settings::from_cloneset(&cs2);
        assert_eq!((s.max_surge, s.max_unavailable), (0, 2));
        assert_eq!(s.scale_max_unavailable, i32::MAX);
    }
}
