//! Executes an Advanced StatefulSet [`Plan`] against the API server: creates, updates and deletes,
//! nothing else.

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1beta1::StatefulSet;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Resource, ResourceExt};

use super::plan::{Plan, Refresh, UpdateAction};
use super::settings::{Retention, Settings};
use super::{Context, Error};
use crate::inplace::{self, REASON_START};
use crate::lifecycle::{self, LifecycleState};
use crate::metrics::{ControllerName, WriteKind};
use crate::pods::IN_PLACE_UPDATE_READY;
use crate::revision::CONTROLLER_REVISION_HASH;

/// Pod label with the pod's own name.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Pod label with the pod's ordinal (gate `PodIndexLabel`).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

const CONCURRENCY: usize = 32;

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

async fn timed<T>(
    ctx: &Context,
    kind: WriteKind,
    obj: &str,
    fut: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, Error> {
    let res = match tokio::time::timeout(ctx.write_timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Write {
            kind,
            obj: obj.to_string(),
            source,
        }),
        Err(_) => Err(Error::Timeout {
            kind,
            obj: obj.to_string(),
        }),
    };
    ctx.metrics
        .observe_write(ControllerName::StatefulSet, kind, res.is_ok());
    res
}

fn is_status(e: &Error, code: u16) -> bool {
    matches!(e, Error::Write { source: kube::Error::Api(s), .. } if s.code == code)
}

/// Reads a pod fresh, applies `f`, and writes it back if `f` changed it; retries conflicts.
/// Returns the written pod, or `None` when nothing changed or the pod is gone.
async fn mutate_pod(
    ctx: &Context,
    api: &Api<Pod>,
    name: &str,
    status: bool,
    f: impl Fn(&mut Pod) -> bool,
) -> Result<Option<Pod>, Error> {
    let kind = if status {
        WriteKind::UpdatePodStatus
    } else {
        WriteKind::UpdatePod
    };
    for attempt in 0..5 {
        let Some(mut pod) = timed(ctx, kind, name, api.get_opt(name)).await? else {
            return Ok(None);
        };
        if !f(&mut pod) {
            return Ok(None);
        }
        let pp = PostParams::default();
        let res = if status {
            timed(ctx, kind, name, api.replace_status(name, &pp, &pod)).await
        } else {
            timed(ctx, kind, name, api.replace(name, &pp, &pod)).await
        };
        match res {
            Ok(p) => return Ok(Some(p)),
            Err(e) if is_status(&e, 409) && attempt < 4 => continue,
            Err(e) if is_status(&e, 404) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn expect_written(ctx: &Context, key: &str, name: &str, written: Option<Pod>) {
    if let Some(p) = written {
        ctx.expectations
            .expect_update(key, name, p.metadata.resource_version.as_deref());
    }
}

async fn refresh_pod(
    ctx: &Context,
    pods: &Api<Pod>,
    key: &str,
    name: &str,
    steps: &[Refresh],
    now: Timestamp,
) -> Result<(), Error> {
    let cond = steps.iter().find_map(|r| match r {
        Refresh::SetInPlaceReady(v) => Some(*v),
        _ => None,
    });
    if let Some(v) = cond {
        let written = mutate_pod(ctx, pods, name, true, |p| {
            inplace::set_condition(p, IN_PLACE_UPDATE_READY, v, None, now)
        })
        .await?;
        expect_written(ctx, key, name, written);
    }
    let meta: Vec<&Refresh> = steps
        .iter()
        .filter(|r| !matches!(r, Refresh::SetInPlaceReady(_)))
        .collect();
    if meta.is_empty() {
        return Ok(());
    }
    let written = mutate_pod(ctx, pods, name, false, |p| {
        let mut changed = false;
        for r in &meta {
            match r {
                Refresh::FinishGrace => changed |= inplace::finish_grace(p, now),
                Refresh::Lifecycle(s) => {
                    if lifecycle::state(p) != *s {
                        lifecycle::set_state(p, *s, now);
                        changed = true;
                    }
                }
                Refresh::SetInPlaceReady(_) => {}
            }
        }
        changed
    })
    .await?;
    expect_written(ctx, key, name, written);
    Ok(())
}

async fn update_pod(
    ctx: &Context,
    set: &StatefulSet,
    pods: &Api<Pod>,
    key: &str,
    u: &super::plan::PodUpdate,
    now: Timestamp,
) -> Result<(), Error> {
    let written = match &u.action {
        UpdateAction::InPlace(spec) => {
            let gated = mutate_pod(ctx, pods, &u.name, true, |p| {
                inplace::has_readiness_gate(p)
                    && (inplace::set_condition(
                        p,
                        IN_PLACE_UPDATE_READY,
                        false,
                        Some(REASON_START),
                        now,
                    ) | inplace::set_condition(p, "Ready", false, Some(REASON_START), now))
            })
            .await?;
            expect_written(ctx, key, &u.name, gated);
            let labels =
                BTreeMap::from([(CONTROLLER_REVISION_HASH.to_string(), u.revision.clone())]);
            mutate_pod(ctx, pods, &u.name, false, |p| {
                inplace::begin_update(p, spec, &labels, now);
                lifecycle::set_state(p, LifecycleState::Updating, now);
                true
            })
            .await?
        }
        UpdateAction::PrepareUpdate { readd_hook } => {
            let hook = set
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.in_place_update.clone());
            mutate_pod(ctx, pods, &u.name, false, |p| {
                if *readd_hook {
                    lifecycle::add_hook(p, hook.as_ref());
                }
                lifecycle::set_state(p, LifecycleState::PreparingUpdate, now);
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
    expect_written(ctx, key, &u.name, written);
    Ok(())
}

/// Executes a plan.
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

    let mut by_pod: BTreeMap<String, Vec<Refresh>> = BTreeMap::new();
    for (name, r) in &plan.refresh {
        by_pod.entry(name.clone()).or_default().push(r.clone());
    }
    let results: Vec<Result<(), Error>> = stream::iter(by_pod)
        .map(|(name, steps)| {
            let (pods, key) = (&pods, &key);
            async move { refresh_pod(ctx, pods, key, &name, &steps, now).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error = Some(e);
    }

    let results: Vec<Result<(), Error>> = stream::iter(plan.create.clone())
        .map(|c| {
            let (pods, claims, key) = (&pods, &claims, &key);
            async move {
                for claim in factory.claims(c.ordinal) {
                    let name = claim.name_any();
                    match timed(
                        ctx,
                        WriteKind::Pvc,
                        &name,
                        claims.create(&PostParams::default(), &claim),
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(e) if is_status(&e, 409) => {}
                        Err(e) => return Err(e),
                    }
                }
                let Some(pod) = factory.pod(&c.revision, c.ordinal, now) else {
                    return Err(Error::MissingRevision {
                        revision: c.revision.clone(),
                    });
                };
                let name = pod.name_any();
                ctx.expectations.expect_create(key, &name);
                match timed(
                    ctx,
                    WriteKind::CreatePod,
                    &name,
                    pods.create(&PostParams::default(), &pod),
                )
                .await
                {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        ctx.expectations.forget_create(key, &name);
                        Err(e)
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.scale_error.get_or_insert(e);
    }

    for d in &plan.delete {
        let res = if d.pre_delete {
            mutate_pod(ctx, &pods, &d.name, false, |p| {
                if lifecycle::state(p) == LifecycleState::PreparingDelete {
                    return false;
                }
                lifecycle::set_state(p, LifecycleState::PreparingDelete, now);
                true
            })
            .await
            .map(|w| expect_written(ctx, &key, &d.name, w))
        } else {
            ctx.expectations.expect_delete(&key, &d.name);
            match timed(
                ctx,
                WriteKind::DeletePod,
                &d.name,
                pods.delete(&d.name, &DeleteParams::default()),
            )
            .await
            {
                Ok(_) => Ok(()),
                Err(e) if is_status(&e, 404) => Ok(()),
                Err(e) => Err(e),
            }
        };
        if let Err(e) = res {
            out.scale_error.get_or_insert(e);
        }
    }

    for name in &plan.delete_claims {
        match timed(
            ctx,
            WriteKind::Pvc,
            name,
            claims.delete(name, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => {}
            Err(e) => {
                out.scale_error.get_or_insert(e);
            }
        }
    }

    let results: Vec<Result<(), Error>> = stream::iter(plan.update.clone())
        .map(|u| {
            let (pods, key) = (&pods, &key);
            async move { update_pod(ctx, set, pods, key, &u, now).await }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error.get_or_insert(e);
    }
    out
}
