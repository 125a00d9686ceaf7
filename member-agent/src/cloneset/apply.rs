//! Executes a CloneSet [`Plan`] against the API server: creates, updates and deletes, nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::{Api, Resource, ResourceExt};
use rand::Rng;

use super::plan::{Plan, PodCreate, Refresh, UpdateAction, INSTANCE_ID_LABEL};
use super::{Context, Error};
use crate::inplace;
use crate::lifecycle::{self, LifecycleState};
use crate::pods::SPECIFIED_DELETE_LABEL;
use crate::revision::{self, CONTROLLER_REVISION_HASH, POD_TEMPLATE_HASH};
use crate::workload::apply as write;

const ID_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// What executing a plan changed and what failed.
#[derive(Debug, Default)]
pub struct Applied {
    /// First error while creating or deleting.
    pub scale_error: Option<Error>,
    /// First error while updating.
    pub update_error: Option<Error>,
}

/// A random 5-character instance id (Kubernetes' `rand.String(5)` alphabet).
pub fn random_id() -> String {
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char)
        .collect()
}

/// Everything needed to build pods for one CloneSet.
pub struct PodFactory<'a> {
    /// The (defaulted) CloneSet.
    pub cs: &'a CloneSet,
    /// Templates by revision name.
    pub templates: &'a BTreeMap<String, PodTemplateSpec>,
    /// Write the short hash into `controller-revision-hash`.
    pub short_hash: bool,
}

fn owner_ref(cs: &CloneSet) -> Option<OwnerReference> {
    cs.controller_owner_ref(&()).map(|mut o| {
        o.block_owner_deletion = Some(true);
        o
    })
}

impl PodFactory<'_> {
    /// The pod for an instance id on a revision, as upstream's `newVersionedPods` builds it.
    pub fn pod(&self, revision_name: &str, id: &str, now: Timestamp) -> Option<Pod> {
        let template = self.templates.get(revision_name)?.clone();
        let cs_name = self.cs.name_any();
        let mut meta = template.metadata.unwrap_or_default();
        let mut spec = template.spec.unwrap_or_default();
        let labels = meta.labels.get_or_insert_with(Default::default);
        labels.insert(INSTANCE_ID_LABEL.into(), id.into());
        let hash = revision::short_hash(revision_name).to_string();
        labels.insert(
            CONTROLLER_REVISION_HASH.into(),
            if self.short_hash {
                hash.clone()
            } else {
                revision_name.to_string()
            },
        );
        labels.insert(POD_TEMPLATE_HASH.into(), hash);
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some(format!("{cs_name}-{id}")),
                namespace: self.cs.namespace(),
                labels: meta.labels.take(),
                annotations: meta.annotations.take(),
                finalizers: meta.finalizers.take(),
                owner_references: owner_ref(self.cs).map(|o| vec![o]),
                ..Default::default()
            },
            spec: None,
            status: None,
        };
        lifecycle::set_state(&mut pod, LifecycleState::PreparingNormal, now);
        inplace::inject_readiness_gate(&mut spec);
        for vct in self.cs.spec.volume_claim_templates.iter().flatten() {
            let vname = vct.metadata.name.clone().unwrap_or_default();
            let volume = Volume {
                name: vname.clone(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: format!("{vname}-{cs_name}-{id}"),
                    read_only: None,
                }),
                ..Default::default()
            };
            let vols = spec.volumes.get_or_insert_with(Vec::new);
            match vols.iter_mut().find(|v| v.name == vname) {
                Some(v) => *v = volume,
                None => vols.push(volume),
            }
        }
        pod.spec = Some(spec);
        Some(pod)
    }

    /// The PVCs of an instance id.
    pub fn pvcs(&self, id: &str) -> Vec<PersistentVolumeClaim> {
        let cs_name = self.cs.name_any();
        let selector_labels = self
            .cs
            .spec
            .selector
            .match_labels
            .clone()
            .unwrap_or_default();
        self.cs
            .spec
            .volume_claim_templates
            .iter()
            .flatten()
            .map(|vct| {
                let vname = vct.metadata.name.clone().unwrap_or_default();
                let mut labels = selector_labels.clone();
                labels.insert(INSTANCE_ID_LABEL.into(), id.into());
                PersistentVolumeClaim {
                    metadata: ObjectMeta {
                        name: Some(format!("{vname}-{cs_name}-{id}")),
                        namespace: self.cs.namespace(),
                        labels: Some(labels),
                        annotations: vct.metadata.annotations.clone(),
                        owner_references: owner_ref(self.cs).map(|o| vec![o]),
                        ..Default::default()
                    },
                    spec: vct.spec.clone(),
                    status: None,
                }
            })
            .collect()
    }
}

pub use crate::workload::apply::mutate_pod;

/// The shared housekeeping step of a CloneSet one.
fn shared_refresh(r: &Refresh) -> write::Refresh {
    match r {
        Refresh::SetInPlaceReady(v) => write::Refresh::SetInPlaceReady(*v),
        Refresh::FinishGrace => write::Refresh::FinishGrace,
        Refresh::Lifecycle(s) => write::Refresh::Lifecycle(*s),
    }
}

/// Executes a plan. Creates go in slow-start batches (1, 2, 4, ...) that stop at the first error.
pub async fn apply(
    ctx: &Arc<Context>,
    cs: &CloneSet,
    factory: &PodFactory<'_>,
    plan: &Plan,
    taken_ids: &std::collections::BTreeSet<String>,
    now: Timestamp,
) -> Applied {
    let mut out = Applied::default();
    let ns = cs.namespace().unwrap_or_default();
    let key = format!("{ns}/{}", cs.name_any());
    let uid = cs.uid().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);

    // Housekeeping: conditions (status) and metadata/spec changes, grouped per pod.
    let steps = plan
        .refresh
        .iter()
        .map(|(name, r)| (name.clone(), shared_refresh(r)));
    out.update_error = write::refresh_pods(ctx, &pods, &key, steps, now).await;

    for name in &plan.regret {
        match mutate_pod(ctx, &pods, &ns, name, false, |p| {
            lifecycle::set_state(p, LifecycleState::PreparingNormal, now);
            true
        })
        .await
        {
            Ok(Some(p)) => {
                ctx.expectations
                    .expect_update(&key, name, p.metadata.resource_version.as_deref())
            }
            Ok(None) => {}
            Err(e) => {
                out.scale_error.get_or_insert(e);
            }
        }
    }

    if !plan.create.is_empty() {
        if let Err(e) = create_pods(
            ctx,
            factory,
            &pods,
            &pvcs,
            &plan.create,
            taken_ids,
            &key,
            now,
        )
        .await
        {
            out.scale_error.get_or_insert(e);
        }
    }

    for d in &plan.delete {
        let res = if d.pre_delete {
            write::mark_pre_delete(ctx, &pods, &ns, &d.name, now)
                .await
                .map(|written| {
                    if let Some(p) = written {
                        ctx.expectations.expect_update(
                            &key,
                            &d.name,
                            p.metadata.resource_version.as_deref(),
                        );
                    }
                })
        } else {
            delete_pod(ctx, &pods, &pvcs, &d.name, &key, &uid).await
        };
        if let Err(e) = res {
            out.scale_error.get_or_insert(e);
        }
    }

    for id in &plan.delete_pvc_ids {
        if let Err(e) = delete_pvcs_of(ctx, &pvcs, id, &uid).await {
            out.scale_error.get_or_insert(e);
        }
    }

    let results: Vec<Result<(), Error>> = stream::iter(plan.update.clone())
        .map(|u| {
            let pods = &pods;
            let key = &key;
            let ns = ns.as_str();
            async move {
                let written = match &u.action {
                    UpdateAction::InPlace(spec) => {
                        let mut labels = BTreeMap::new();
                        let hash = revision::short_hash(&u.revision).to_string();
                        labels.insert(
                            CONTROLLER_REVISION_HASH.to_string(),
                            if factory.short_hash {
                                hash.clone()
                            } else {
                                u.revision.clone()
                            },
                        );
                        labels.insert(POD_TEMPLATE_HASH.to_string(), hash);
                        write::begin_in_place(ctx, pods, ns, &u.name, spec, &labels, now)
                            .await?
                            .updated
                    }
                    UpdateAction::PrepareUpdate { readd_hook } => {
                        let hook = cs
                            .spec
                            .lifecycle
                            .as_ref()
                            .and_then(|l| l.in_place_update.as_ref());
                        write::prepare_update(ctx, pods, ns, &u.name, hook, *readd_hook, now)
                            .await?
                    }
                    UpdateAction::Recreate => {
                        mutate_pod(ctx, pods, ns, &u.name, false, |p| {
                            let labels = p.metadata.labels.get_or_insert_with(Default::default);
                            if labels.contains_key(SPECIFIED_DELETE_LABEL) {
                                return false;
                            }
                            labels.insert(SPECIFIED_DELETE_LABEL.into(), "true".into());
                            true
                        })
                        .await?
                    }
                    UpdateAction::Refuse(msg) => {
                        return Err(Error::Refused {
                            message: msg.clone(),
                        })
                    }
                };
                if let Some(p) = written {
                    ctx.expectations.expect_update(
                        key,
                        &u.name,
                        p.metadata.resource_version.as_deref(),
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(write::CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error.get_or_insert(e);
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn create_pods(
    ctx: &Arc<Context>,
    factory: &PodFactory<'_>,
    pods: &Api<Pod>,
    pvcs: &Api<PersistentVolumeClaim>,
    creates: &[PodCreate],
    taken_ids: &std::collections::BTreeSet<String>,
    key: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut taken = taken_ids.clone();
    let mut planned: Vec<(String, String)> = Vec::new();
    for c in creates {
        let id = match &c.instance_id {
            Some(id) => id.clone(),
            None => loop {
                let id = random_id();
                if !taken.contains(&id) {
                    break id;
                }
            },
        };
        taken.insert(id.clone());
        planned.push((c.revision.clone(), id));
    }
    let mut batch = 1usize;
    let mut rest = planned.as_slice();
    while !rest.is_empty() {
        let n = batch.min(rest.len());
        let (now_batch, later) = rest.split_at(n);
        rest = later;
        batch *= 2;
        let results: Vec<Result<(), Error>> = stream::iter(now_batch.to_vec())
            .map(|(rev, id)| async move {
                let (rev, id) = (&rev, &id);
                let Some(pod) = factory.pod(rev, id, now) else {
                    return Err(Error::MissingRevision {
                        revision: rev.clone(),
                    });
                };
                write::create_pod_with_claims(ctx, pods, pvcs, key, factory.pvcs(id), &pod).await
            })
            .buffer_unordered(write::CONCURRENCY)
            .collect()
            .await;
        if let Some(e) = results.into_iter().find_map(Result::err) {
            return Err(e);
        }
    }
    Ok(())
}

async fn delete_pod(
    ctx: &Context,
    pods: &Api<Pod>,
    pvcs: &Api<PersistentVolumeClaim>,
    name: &str,
    key: &str,
    owner_uid: &str,
) -> Result<(), Error> {
    let ns = key.split('/').next().unwrap_or_default();
    let id = ctx
        .pods
        .state()
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(name) && p.namespace().as_deref() == Some(ns))
        .and_then(|p| super::plan::instance_id(p.metadata.labels.as_ref()).map(str::to_string));
    write::delete_pod(ctx, pods, key, name).await?;
    if let Some(id) = id {
        delete_pvcs_of(ctx, pvcs, &id, owner_uid).await?;
    }
    Ok(())
}

async fn delete_pvcs_of(
    ctx: &Context,
    pvcs: &Api<PersistentVolumeClaim>,
    id: &str,
    owner_uid: &str,
) -> Result<(), Error> {
    let names: Vec<String> = ctx
        .pvcs
        .state()
        .iter()
        .filter(|p| super::owned_by(p.metadata.owner_references.as_deref(), owner_uid))
        .filter(|p| super::plan::instance_id(p.metadata.labels.as_ref()) == Some(id))
        .map(|p| p.name_any())
        .collect();
    for name in names {
        write::delete_claim(ctx, pvcs, &name).await?;
    }
    Ok(())
}
