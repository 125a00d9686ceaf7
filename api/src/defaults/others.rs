//! Defaults of jobs, SidecarSet, image pulling, CRR, PUB and the federation kinds.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::pod::{default_container, default_pod_template, PullPolicyDefault};
use super::{set_if_empty, Defaulted};
use crate::apps::v1alpha1::{
    advancedcronjob as acj, broadcastjob as bcj, containerrecreaterequest as crr,
    imagelistpulljob as ilpj, imagepulljob as ipj, nodeimage, sidecarset as ss,
};
use crate::federation::v1alpha1::{ManagedCluster, Work};
use crate::policy::v1alpha1::PodUnavailableBudget;

/// BroadcastJob spec defaults (also used inside AdvancedCronJob templates).
pub(crate) fn default_broadcastjob_spec(spec: &mut bcj::BroadcastJobSpec) {
    spec.parallelism.get_or_insert(IntOrString::Int(i32::MAX));
    set_if_empty(&mut spec.completion_policy.type_, bcj::COMPLETION_ALWAYS);
    let failure = spec.failure_policy.get_or_insert_with(Default::default);
    set_if_empty(&mut failure.type_, bcj::FAILURE_FAIL_FAST);
    default_pod_template(&mut spec.template, PullPolicyDefault::Always);
}

impl Defaulted for bcj::BroadcastJob {
    fn apply_defaults(&mut self) {
        default_broadcastjob_spec(&mut self.spec);
    }
}

impl Defaulted for acj::AdvancedCronJob {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        set_if_empty(&mut spec.concurrency_policy, "Allow");
        spec.paused.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        if let Some(job) = spec.template.job_template.as_mut() {
            if let Some(pod) = job.spec.as_mut().map(|s| &mut s.template) {
                default_pod_template(pod, PullPolicyDefault::Always);
            }
        }
        if let Some(bj) = spec
            .template
            .broadcast_job_template
            .as_mut()
            .and_then(|t| t.spec.as_mut())
        {
            default_broadcastjob_spec(bj);
        }
    }
}

fn default_sidecar(c: &mut ss::SidecarContainer, inject_policy: &str) {
    default_container(&mut c.container, PullPolicyDefault::Kubernetes);
    let s = &mut c.sidecar;
    set_if_empty(&mut s.pod_inject_policy, inject_policy);
    let upgrade = s.upgrade_strategy.get_or_insert_with(Default::default);
    set_if_empty(&mut upgrade.upgrade_type, ss::COLD_UPGRADE);
    let share = s.share_volume_policy.get_or_insert_with(Default::default);
    set_if_empty(&mut share.type_, ss::SHARE_VOLUME_DISABLED);
}

impl Defaulted for ss::SidecarSet {
    fn apply_defaults(&mut self) {
        let spec = &mut self.spec;
        let strategy = spec.update_strategy.get_or_insert_with(Default::default);
        set_if_empty(&mut strategy.type_, ss::ROLLING_UPDATE);
        strategy.max_unavailable.get_or_insert(IntOrString::Int(1));
        strategy.partition.get_or_insert(IntOrString::Int(0));
        spec.revision_history_limit.get_or_insert(10);
        for c in spec.containers.iter_mut().flatten() {
            default_sidecar(c, ss::BEFORE_APP_CONTAINER);
        }
        for c in spec.init_containers.iter_mut().flatten() {
            default_sidecar(c, ss::AFTER_APP_CONTAINER);
        }
        for patch in spec.patch_pod_metadata.iter_mut().flatten() {
            set_if_empty(&mut patch.patch_policy, "Retain");
        }
        if let Some(rev) = spec
            .injection_strategy
            .as_mut()
            .and_then(|i| i.revision.as_mut())
        {
            set_if_empty(&mut rev.policy, "Always");
        }
    }
}

fn default_pull_template(t: &mut ipj::ImagePullJobTemplate, image_pull_policy: bool) {
    set_if_empty(&mut t.completion_policy.type_, bcj::COMPLETION_ALWAYS);
    let pull = t.pull_policy.get_or_insert_with(Default::default);
    pull.timeout_seconds.get_or_insert(600);
    pull.backoff_limit.get_or_insert(3);
    if image_pull_policy {
        set_if_empty(&mut t.image_pull_policy, "IfNotPresent");
    }
}

impl Defaulted for ipj::ImagePullJob {
    fn apply_defaults(&mut self) {
        default_pull_template(&mut self.spec.template, true);
    }
}

impl Defaulted for ilpj::ImageListPullJob {
    fn apply_defaults(&mut self) {
        default_pull_template(&mut self.spec.template, false);
    }
}

impl Defaulted for nodeimage::NodeImage {
    fn apply_defaults(&mut self) {
        for image in self.spec.images.iter_mut().flat_map(|m| m.values_mut()) {
            for tag in image.tags.iter_mut() {
                let pull = tag.pull_policy.get_or_insert_with(Default::default);
                pull.timeout_seconds.get_or_insert(600);
                pull.backoff_limit.get_or_insert(3);
            }
        }
    }
}

/// Sets `createdAt` on NodeImage tags that lack it (the webhook uses the admission time).
pub fn default_nodeimage_created_at(obj: &mut nodeimage::NodeImage, now: &Time) {
    for image in obj.spec.images.iter_mut().flat_map(|m| m.values_mut()) {
        for tag in image.tags.iter_mut() {
            tag.created_at.get_or_insert_with(|| now.clone());
        }
    }
}

impl Defaulted for crr::ContainerRecreateRequest {
    fn apply_defaults(&mut self) {
        let strategy = self.spec.strategy.get_or_insert_with(Default::default);
        set_if_empty(&mut strategy.failure_policy, "Fail");
    }
}

/// Sets the CRR's termination grace period from its pod (the webhook reads the pod).
pub fn default_crr_grace_period(
    obj: &mut crr::ContainerRecreateRequest,
    pod_grace_seconds: Option<i64>,
) {
    let strategy = obj.spec.strategy.get_or_insert_with(Default::default);
    if strategy.termination_grace_period_seconds.is_none() {
        strategy.termination_grace_period_seconds = pod_grace_seconds;
    }
}

impl Defaulted for PodUnavailableBudget {
    fn apply_defaults(&mut self) {}
}

impl Defaulted for ManagedCluster {
    fn apply_defaults(&mut self) {}
}

impl Defaulted for Work {
    fn apply_defaults(&mut self) {}
}
