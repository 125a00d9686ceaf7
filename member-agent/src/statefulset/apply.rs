//! Executes an Advanced StatefulSet [`Plan`] against the API server: creates, updates and deletes,
//! nothing else.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1beta1::StatefulSet;
use kube::{Api, Resource, ResourceExt};

use super::plan::{Plan, PodUpdate, UpdateAction};
use super::settings::{Retention, Settings};
use super::{Context, Error};
use crate::lifecycle::{self, LifecycleState};
use crate::revision::CONTROLLER_REVISION_HASH;
use crate::workload::apply as write;

/// Pod label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Pod label with the pod's ordinal (gate `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// What executing a plan changed and what failed.
#[derive(Debug, Default)]
pub struct Applied {
    /// First error while creating or deleting.
    pub scale_error: Option<Error>,
    /// First error while updating.
    pub update_error: Option<Error>,
}

/// Everything needed to build the pods and claims of one set.
pub struct PodFactory<'a> {
    /// The (defaulted) set.
    pub set: &'a StatefulSet,
    /// Resolved settings.
    pub settings: &'a Settings,
    /// Templates by revision name.
    pub templates: &'a BTreeMap<String, PodTemplateSpec>,
    /// Write `apps.kubernetes.io/pod-index`.
    pub pod_index_label: bool,
}

fn controller_ref(set: &StatefulSet) -> Option<OwnerReference> {
    set.controller_owner_ref(&()).map(|mut o| {
        o.block_owner_deletion = Some(true);
        o
    })
}

impl PodFactory<'_> {
    /// The pod of an ordinal on a revision, as upstream's `newVersionedStatefulSetPod` builds it.
    pub fn pod(&self, revision_name: &str, ordinal: i32, now: Timestamp) -> Option<Pod> {
        let template = self.templates.get(revision_name)?.clone();
        let s = self.settings;
        let name = s.pod_name(ordinal);
        let mut meta = template.metadata.unwrap_or_default();
        let mut spec = template.spec.unwrap_or_default();
        let labels = meta.labels.get_or_insert_with(Default::default);
        labels.insert(POD_NAME_LABEL.into(), name.clone());
        if self.pod_index_label {
            labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
        }
        labels.insert(CONTROLLER_REVISION_HASH.into(), revision_name.to_string());
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: self.set.namespace(),
                labels: meta.labels.take(),
                annotations: meta.annotations.take(),
                finalizers: meta.finalizers.take(),
                owner_references: controller_ref(self.set).map(|o| vec![o]),
                ..Default::default()
            },
            spec: None,
            status: None,
        };
        let pre_normal = s
            .lifecycle
            .as_ref()
            .and_then(|l| l.pre_normal.as_ref())
            .is_some();
        let state = if pre_normal {
            LifecycleState::PreparingNormal
        } else {
            LifecycleState::Normal
        };
        lifecycle::set_state(&mut pod, state, now);
        spec.hostname = Some(name);
        if let Some(svc) = self
            .set
            .spec
            .service_name
            .as_ref()
            .filter(|n| !n.is_empty())
        {
            spec.subdomain = Some(svc.clone());
        }
        for vname in &s.claim_templates {
            let volume = Volume {
                name: vname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: s.claim_name(vname, ordinal),
                    read_only: None,
                }),
                ..Default::default()
            };
            let vols = spec.volumes.get_or_insert_with(Vec::new);
            match vols.iter_mut().find(|v| &v.name == vname) {
                Some(v) => *v = volume,
                None => vols.push(volume),
            }
        }
        pod.spec = Some(spec);
        Some(pod)
    }

    /// The claims of an ordinal. With `whenDeleted: Delete` they are owned by the set, so the
    /// garbage collector removes them with it.
    pub fn claims(&self, ordinal: i32) -> Vec<PersistentVolumeClaim> {
        let s = self.settings;
        let selector_labels = self
            .set
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        let owner = match s.when_deleted {
            Retention::Delete => self.set.controller_owner_ref(&()).map(|mut o| {
                o.controller = None;
                o.block_owner_deletion = None;
                vec![o]
            }),
            Retention::Retain => None,
        };
        self.set
            .spec
            .volume_claim_templates
            .iter()
            .flatten()
            .filter_map(|vct| {
                let vname = vct.metadata.name.clone()?;
                let mut labels = vct.metadata.labels.clone().unwrap_or_default();
                labels.extend(selector_labels.clone());
                Some(PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(s.claim_name(&vname, ordinal)),
                        namespace: self.set.namespace(),
                        labels: Some(labels),
                        annotations: vct.metadata.annotations.clone(),
                        owner_references: owner.clone(),
                        ..Default::default()
                    },
                    spec: vct.spec.clone(),
                    status: None,
                })
            })
            .collect()
    }
}

/// Starts the in-place update or the hook preparation of one pod.
async fn update_pod(
    ctx: &Context,
    set: &StatefulSet,
    pods: &Api<Pod>,
    key: &str,
    u: &PodUpdate,
    now: Timestamp,
) -> Result<(), Error> {
    let ns = set.namespace().unwrap_or_default();
    match &u.action {
        UpdateAction::InPlace(spec) => {
            let labels =
                BTreeMap::from([(CONTROLLER_REVISION_HASH.to_string(), u.revision.clone())]);
            let w = write::begin_in_place(ctx, pods, &ns, &u.name, spec, &labels, now).await?;
            write::expect_written(ctx, key, &u.name, w.gated.as_ref());
            write::expect_written(ctx, key, &u.name, w.updated.as_ref());
        }
        UpdateAction::PrepareUpdate { readd_hook } => {
            let hook = set
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.in_place_update.as_ref());
            let w = write::prepare_update(ctx, pods, &ns, &u.name, hook, *readd_hook, now).await?;
            write::expect_written(ctx, key, &u.name, w.as_ref());
        }
        UpdateAction::Refuse(msg) => {
            return Err(Error::Refused {
                message: msg.clone(),
            })
        }
    }
    Ok(())
}

/// Executes a plan: housekeeping, creates (claims first), deletes, claim deletions and resizes,
/// then in-place updates.
pub async fn apply(
    ctx: &Context,
    set: &StatefulSet,
    factory: &PodFactory<'_>,
    plan: &Plan,
    now: Timestamp,
) -> Applied {
    let mut out = Applied::default();
    let ns = set.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", set.name_any());
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);

    out.update_error = write::refresh_pods(ctx, &pods, &key, plan.refresh.clone(), now).await;

    let results: Vec<Result<(), Error>> = stream::iter(plan.create.clone())
        .map(|c| {
            let (pods, claims, key) = (&pods, &claims, &key);
            async move {
                let Some(pod) = factory.pod(&c.revision, c.ordinal, now) else {
                    return Err(Error::MissingRevision {
                        revision: c.revision.clone(),
                    });
                };
                let wanted = factory.claims(c.ordinal);
                write::create_pod_with_claims(ctx, pods, claims, key, wanted, &pod).await
            }
        })
        .buffer_unordered(write::CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.scale_error.get_or_insert(e);
    }

    for d in &plan.delete {
        let res = if d.pre_delete {
            write::mark_pre_delete(ctx, &pods, &ns, &d.name, now)
                .await
                .map(|w| write::expect_written(ctx, &key, &d.name, w.as_ref()))
        } else {
            write::delete_pod(ctx, &pods, &key, &d.name).await
        };
        if let Err(e) = res {
            out.scale_error.get_or_insert(e);
        }
    }

    for name in &plan.delete_claims {
        if let Err(e) = write::delete_claim(ctx, &claims, name).await {
            out.scale_error.get_or_insert(e);
        }
    }

    for r in &plan.resize_claims {
        if let Err(e) = write::resize_claim(ctx, &claims, &r.claim, &r.storage).await {
            out.update_error.get_or_insert(e);
        }
    }

    let results: Vec<Result<(), Error>> = stream::iter(plan.update.clone())
        .map(|u| {
            let (pods, key) = (&pods, &key);
            async move { update_pod(ctx, set, pods, key, &u, now).await }
        })
        .buffer_unordered(write::CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error.get_or_insert(e);
    }
    out
}
