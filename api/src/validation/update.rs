//! Update rules: what may change between the stored object and the new one.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde::Serialize;
use serde_json::Value;

use super::Validated;
use crate::apps::v1alpha1::{
    advancedcronjob::AdvancedCronJob, broadcastjob::BroadcastJob, cloneset,
    containerrecreaterequest::ContainerRecreateRequest, daemonset::DaemonSet,
    imagelistpulljob::ImageListPullJob, imagepulljob::ImagePullJob, nodeimage::NodeImage,
    sidecarset::SidecarSet, statefulset as sts_alpha, uniteddeployment::UnitedDeployment,
    workloadspread::WorkloadSpread,
};
use crate::apps::v1beta1::statefulset as sts;
use crate::federation::v1alpha1::{ManagedCluster, Work};
use crate::field::{FieldError, Path};
use crate::policy::v1alpha1::PodUnavailableBudget;

/// A kind whose updates are validated against the stored object.
pub trait ValidatedUpdate: Validated {
    /// Every create-time violation of `self` plus every forbidden change from `old`.
    fn validate_update(&self, old: &Self) -> Vec<FieldError>;
}

const CLONESET_MUTABLE: [&str; 9] = [
    "replicas",
    "template",
    "scaleStrategy",
    "updateStrategy",
    "minReadySeconds",
    "lifecycle",
    "revisionHistoryLimit",
    "volumeClaimTemplates",
    "progressDeadlineSeconds",
];
const STATEFULSET_MUTABLE: [&str; 11] = [
    "replicas",
    "ordinals",
    "template",
    "reserveOrdinals",
    "lifecycle",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "volumeClaimTemplates",
    "volumeClaimUpdateStrategy",
    "updateStrategy",
    "scaleStrategy",
];

fn quoted_list(fields: &[&str]) -> String {
    let quoted: Vec<String> = fields.iter().map(|f| format!("'{f}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

fn without(value: &impl Serialize, fields: &[&str]) -> Value {
    let mut v = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        for f in fields {
            map.remove(*f);
        }
    }
    v
}

/// `spec: Forbidden` when anything outside `mutable` changed.
fn only_fields_changed(
    new: &impl Serialize,
    old: &impl Serialize,
    mutable: &[&str],
    kind: &str,
) -> Vec<FieldError> {
    if without(new, mutable) == without(old, mutable) {
        vec![]
    } else {
        vec![FieldError::forbidden(
            "spec",
            format!(
                "updates to {kind} spec for fields other than {} are forbidden",
                quoted_list(mutable)
            ),
        )]
    }
}

fn immutable<T: Serialize + PartialEq>(new: &T, old: &T, path: &Path) -> Vec<FieldError> {
    if new == old {
        vec![]
    } else {
        vec![FieldError::invalid(
            path,
            serde_json::to_value(new).unwrap_or(Value::Null),
            "field is immutable",
        )]
    }
}

/// The pod spec with every container image blanked: equal values mean only images changed.
fn pod_spec_without_images(t: &PodTemplateSpec) -> Value {
    let mut spec = t.spec.clone().unwrap_or_default();
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.image = None;
    }
    serde_json::to_value(spec).unwrap_or(Value::Null)
}

fn images_only(new: &PodTemplateSpec, old: &PodTemplateSpec, detail: &str) -> Vec<FieldError> {
    if pod_spec_without_images(new) == pod_spec_without_images(old) {
        vec![]
    } else {
        vec![FieldError::forbidden(
            Path::new("spec").child("template"),
            detail,
        )]
    }
}

impl ValidatedUpdate for cloneset::CloneSet {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        errs.extend(only_fields_changed(
            &self.spec,
            &old.spec,
            &CLONESET_MUTABLE,
            "cloneset",
        ));
        let in_place_only = self
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            == Some(cloneset::IN_PLACE_ONLY);
        if in_place_only {
            errs.extend(images_only(
                &self.spec.template,
                &old.spec.template,
                "only allowed to update images in spec for InPlaceOnly",
            ));
        }
        errs
    }
}

impl ValidatedUpdate for sts::StatefulSet {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        errs.extend(only_fields_changed(
            &self.spec,
            &old.spec,
            &STATEFULSET_MUTABLE,
            "statefulset",
        ));
        let policy = self
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref())
            .and_then(|r| r.pod_update_policy.as_deref());
        if policy == Some(sts::IN_PLACE_ONLY) {
            errs.extend(images_only(
                &self.spec.template,
                &old.spec.template,
                "invalid template modified with InPlaceOnly strategy: only container images may change",
            ));
        }
        errs
    }
}

impl ValidatedUpdate for sts_alpha::StatefulSet {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        self.clone()
            .into_v1beta1()
            .validate_update(&old.clone().into_v1beta1())
    }
}

impl ValidatedUpdate for DaemonSet {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        errs.extend(immutable(
            &self.spec.selector,
            &old.spec.selector,
            &Path::new("spec").child("selector"),
        ));
        errs
    }
}

impl ValidatedUpdate for SidecarSet {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        let old_containers = old.spec.containers.as_deref().unwrap_or_default();
        for (i, c) in self.spec.containers.iter().flatten().enumerate() {
            let name = &c.container.name;
            let p = Path::new("spec").child("containers").index(i);
            match old_containers.iter().find(|o| &o.container.name == name) {
                None => errs.push(FieldError::forbidden(
                    &p,
                    format!("container {name} is not found"),
                )),
                Some(o) => {
                    let upgrade = |x: &crate::apps::v1alpha1::sidecarset::SidecarContainer| {
                        x.sidecar
                            .upgrade_strategy
                            .as_ref()
                            .and_then(|u| u.upgrade_type.clone())
                            .unwrap_or_else(|| "ColdUpgrade".into())
                    };
                    if upgrade(c) != upgrade(o) {
                        errs.push(FieldError::forbidden(
                            p.child("upgradeStrategy").child("upgradeType"),
                            format!("container {name} upgradeType is immutable"),
                        ));
                    }
                }
            }
        }
        errs
    }
}

impl ValidatedUpdate for UnitedDeployment {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        let spec = Path::new("spec");
        errs.extend(immutable(
            &self.spec.selector,
            &old.spec.selector,
            &spec.child("selector"),
        ));
        let old_subsets = old.spec.topology.subsets.as_deref().unwrap_or_default();
        for (i, s) in self.spec.topology.subsets.iter().flatten().enumerate() {
            let Some(o) = old_subsets.iter().find(|o| o.name == s.name) else {
                continue;
            };
            let p = spec.child("topology").child("subsets").index(i);
            errs.extend(immutable(
                &s.node_selector_term,
                &o.node_selector_term,
                &p.child("nodeSelectorTerm"),
            ));
            errs.extend(immutable(
                &s.tolerations,
                &o.tolerations,
                &p.child("tolerations"),
            ));
        }
        errs
    }
}

impl ValidatedUpdate for WorkloadSpread {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        let group = |v: &str| {
            v.split_once('/')
                .map_or(String::new(), |(g, _)| g.to_string())
        };
        let (n, o) = (&self.spec.target_ref, &old.spec.target_ref);
        if group(&n.api_version) != group(&o.api_version) || n.kind != o.kind || n.name != o.name {
            errs.push(FieldError::forbidden(
                Path::new("spec").child("targetRef"),
                "change TargetReference is not permitted for WorkloadSpread",
            ));
        }
        errs
    }
}

impl ValidatedUpdate for PodUnavailableBudget {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        if self.spec.selector != old.spec.selector || self.spec.target_ref != old.spec.target_ref {
            errs.push(FieldError::forbidden(
                "spec",
                "selector and targetRef cannot be modified",
            ));
        }
        errs
    }
}

impl ValidatedUpdate for ContainerRecreateRequest {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        if self.spec != old.spec {
            errs.push(FieldError::forbidden(
                "spec",
                "spec of ContainerRecreateRequest is immutable",
            ));
        }
        errs
    }
}

impl ValidatedUpdate for Work {
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = self.validate();
        errs.extend(immutable(
            &self.spec.cluster,
            &old.spec.cluster,
            &Path::new("spec").child("cluster"),
        ));
        errs
    }
}

/// Kinds without update-only rules validate the new object as on create.
macro_rules! create_rules_only {
    ($($kind:ty),+ $(,)?) => {
        $(impl ValidatedUpdate for $kind {
            fn validate_update(&self, _old: &Self) -> Vec<FieldError> {
                self.validate()
            }
        })+
    };
}

create_rules_only!(
    BroadcastJob,
    AdvancedCronJob,
    ImagePullJob,
    ImageListPullJob,
    NodeImage,
    ManagedCluster
);
