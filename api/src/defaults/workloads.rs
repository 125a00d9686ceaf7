//! Defaults of the long-running workloads: CloneSet, Advanced StatefulSet, Advanced DaemonSet,
//! UnitedDeployment, WorkloadSpread.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{default_pod_template, PullPolicyDefault};
use super::{set_if_empty, Defaulted};
use crate::apps::common::InPlaceUpdateStrategy;
use crate::apps::v1alpha1::{
    cloneset, daemonset, statefulset as sts_alpha, uniteddeployment as ud, workloadspread as ws,
};
use crate::apps::v1beta1::statefulset as sts;

/// CloneSet spec defaults (also used for UnitedDeployment's cloneSetTemplate, without replicas).
pub(crate) fn default_cloneset_spec(spec: &mut cloneset::CloneSetSpec, with_replicas: bool) {
    if with_replicas {
        spec.replicas.get_or_insert(1);
    }
    spec.revision_history_limit.get_or_insert(10);
    let strategy = spec.update_strategy.get_or_insert_with(Default::default);
    let type_ = set_if_empty(&mut strategy.type_, cloneset::RECREATE).clone();
    if with_replicas {
        strategy.partition.get_or_insert(IntOrString::Int(0));
    }
    strategy
        .max_unavailable
        .get_or_insert_with(|| IntOrString::String("20%".into()));
    strategy.max_surge.get_or_insert(IntOrString::Int(0));
    if type_ == cloneset::IN_PLACE_IF_POSSIBLE || type_ == cloneset::IN_PLACE_ONLY {
        strategy
            .in_place_update_strategy
            .get_or_insert_with(InPlaceUpdateStrategy::default);
    }
    default_pod_template(&mut spec.template, PullPolicyDefault::Always);
}

impl Defaulted for cloneset::CloneSet {
    fn apply_defaults(&mut self) {
        default_cloneset_spec(&mut self.spec, true);
    }
}

fn default_sts_update_strategy(
    strategy: &mut Option<sts::StatefulSetUpdateStrategy>,
    with_partition: bool,
) {
    let strategy = strategy.get_or_insert_with(Default::default);
    let type_ = set_if_empty(&mut strategy.type_, sts::ROLLING_UPDATE);
    if type_ == sts::ROLLING_UPDATE {
        let ru = strategy.rolling_update.get_or_insert_with(Default::default);
        if with_partition {
            ru.partition.get_or_insert(0);
        }
        ru.max_unavailable.get_or_insert(IntOrString::Int(1));
        set_if_empty(&mut ru.pod_update_policy, sts::RECREATE);
        ru.min_ready_seconds.get_or_insert(0);
    }
}

/// Advanced StatefulSet (v1beta1) spec defaults; `in_template` skips replicas and partition.
pub(crate) fn default_statefulset_spec(spec: &mut sts::StatefulSetSpec, in_template: bool) {
    if !in_template {
        spec.replicas.get_or_insert(1);
    }
    set_if_empty(&mut spec.pod_management_policy, sts::ORDERED_READY);
    default_sts_update_strategy(&mut spec.update_strategy, !in_template);
    spec.revision_history_limit.get_or_insert(10);
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(Default::default);
    set_if_empty(&mut retention.when_deleted, "Retain");
    set_if_empty(&mut retention.when_scaled, "Retain");
    default_pod_template(&mut spec.template, PullPolicyDefault::Always);
}

impl Defaulted for sts::StatefulSet {
    fn apply_defaults(&mut self) {
        default_statefulset_spec(&mut self.spec, false);
    }
}

impl Defaulted for sts_alpha::StatefulSet {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        spec.replicas.get_or_insert(1);
        set_if_empty(&mut spec.pod_management_policy, sts::ORDERED_READY);
        default_sts_update_strategy(&mut spec.update_strategy, true);
        spec.revision_history_limit.get_or_insert(10);
        default_pod_template(&mut spec.template, PullPolicyDefault::Always);
    }
}

impl Defaulted for daemonset::DaemonSet {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        spec.burst_replicas.get_or_insert(IntOrString::Int(250));
        spec.revision_history_limit.get_or_insert(10);
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        let type_ = set_if_empty(&mut strategy.type_, daemonset::ROLLING_UPDATE);
        if type_ == daemonset::ROLLING_UPDATE {
            let ru = strategy.rolling_update.get_or_insert_with(Default::default);
            let ru_type = set_if_empty(&mut ru.type_, daemonset::STANDARD);
            if ru_type == daemonset::SURGING {
                *ru_type = daemonset::STANDARD.into();
                ru.max_surge.get_or_insert(IntOrString::Int(1));
                ru.max_unavailable.get_or_insert(IntOrString::Int(0));
            }
            if ru.max_unavailable.is_none() && ru.max_surge.is_none() {
                ru.max_unavailable = Some(IntOrString::Int(1));
                ru.max_surge = Some(IntOrString::Int(0));
            }
        }
    }
}

impl Defaulted for ud::UnitedDeployment {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        spec.replicas.get_or_insert(1);
        spec.revision_history_limit.get_or_insert(10);
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        set_if_empty(&mut strategy.type_, ud::MANUAL);
        strategy.manual_update.get_or_insert_with(Default::default);
        if let Some(waves) = strategy.waves.as_mut() {
            set_if_empty(&mut waves.unit, ud::WAVE_UNIT_SUBSET);
            waves.progress_deadline_seconds.get_or_insert(600);
        }
        let schedule = spec
            .topology
            .schedule_strategy
            .get_or_insert_with(Default::default);
        let schedule_type = set_if_empty(&mut schedule.type_, ud::FIXED);
        if schedule_type == ud::ADAPTIVE {
            let adaptive = schedule.adaptive.get_or_insert_with(Default::default);
            adaptive.reschedule_critical_seconds.get_or_insert(30);
            if adaptive.unschedulable_seconds().is_none() {
                adaptive.unschedulable_last_seconds = Some(300);
            }
        }
        if let Some(subsets) = spec.topology.subsets.as_mut() {
            let elastic = subsets
                .iter()
                .any(|s| s.min_replicas.is_some() || s.max_replicas.is_some());
            let fixed = subsets.iter().any(|s| s.replicas.is_some());
            if elastic && !fixed {
                for s in subsets.iter_mut() {
                    s.min_replicas.get_or_insert(IntOrString::Int(0));
                }
            }
        }
        let t = &mut spec.template;
        if let Some(tpl) = t.stateful_set_template.as_mut() {
            default_pod_template(&mut tpl.spec.template, PullPolicyDefault::Always);
        }
        if let Some(tpl) = t.advanced_stateful_set_template.as_mut() {
            default_statefulset_spec(&mut tpl.spec, true);
        }
        if let Some(tpl) = t.clone_set_template.as_mut() {
            default_cloneset_spec(&mut tpl.spec, false);
        }
        if let Some(tpl) = t.deployment_template.as_mut() {
            default_pod_template(&mut tpl.spec.template, PullPolicyDefault::Always);
        }
    }
}

impl Defaulted for ws::WorkloadSpread {
    fn apply_defaults(&mut self) {
        let schedule = self
            .spec
            .schedule_strategy
            .get_or_insert_with(Default::default);
        set_if_empty(&mut schedule.type_, ws::FIXED);
    }
}
