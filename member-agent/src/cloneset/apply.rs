//! Executes a CloneSet [`Plan`] against the API server: creates, updates and deletes, nothing else.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};
use futures::FutureExt;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::cloneset::CloneSet;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use rand::Rng;

use super::plan::{Plan, PodCreate, PodUpdate, Refresh, UpdateAction, INSTANCE_ID_LABEL};
use super::{Context, Error};
use crate::events::{NORMAL, WARNING};
use crate::inplace::{self, REASON_START};
use crate::lifecycle::{self, LifecycleState};
use crate::metrics::WriteKind;
use crate::podreadiness::{self, LIFECYCLE_USER_AGENT, PRE_DELETE_KEY, PRE_UPDATE_KEY};
use crate::pods::{IN_PLACE_UPDATE_READY, SPECIFIED_DELETE_LABEL};
use crate::revision::{self, CONTROLLER_REVISION_HASH, POD_TEMPLATE_HASH};
use crate::workload::apply::{mutate_pod, timed};

const CONCURRENCY: usize = 32;
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
        // What the pod webhook adds for apps.kruise.io owners, so it holds without the webhook.
        podreadiness::inject_gate(&mut spec);
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
    let mut by_pod: BTreeMap<&str, Vec<&Refresh>> = BTreeMap::new();
    for (name, r) in &plan.refresh {
        by_pod.entry(name).or_default().push(r);
    }
    let owned_steps: Vec<(String, Vec<Refresh>)> = by_pod
        .into_iter()
        .map(|(n, steps)| (n.to_string(), steps.into_iter().cloned().collect()))
        .collect();
    let results: Vec<Result<(), Error>> = stream::iter(owned_steps)
        .map(|(name, steps)| {
            let pods = &pods;
            let key = &key;
            let ns = ns.as_str();
            async move {
                let name = name.as_str();
                let cond = steps.iter().find_map(|r| match r {
                    Refresh::SetInPlaceReady(v) => Some(*v),
                    _ => None,
                });
                let ready_keys = steps.iter().find_map(|r| match r {
                    Refresh::PodReadyKeys(k) => Some(k.clone()),
                    _ => None,
                });
                if cond.is_some() || ready_keys.is_some() {
                    if let Some(p) = mutate_pod(ctx, pods, ns, name, true, |p| {
                        let mut changed = false;
                        if let Some(keys) = &ready_keys {
                            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                            changed |= podreadiness::set_keys(p, LIFECYCLE_USER_AGENT, &keys, now);
                        }
                        if let Some(v) = cond {
                            changed |=
                                inplace::set_condition(p, IN_PLACE_UPDATE_READY, v, None, now);
                        }
                        changed
                    })
                    .await?
                    {
                        ctx.expectations.expect_update(
                            key,
                            name,
                            p.metadata.resource_version.as_deref(),
                        );
                    }
                }
                let meta: Vec<Refresh> = steps
                    .into_iter()
                    .filter(|r| {
                        !matches!(r, Refresh::SetInPlaceReady(_) | Refresh::PodReadyKeys(_))
                    })
                    .collect();
                if !meta.is_empty() {
                    let written = mutate_pod(ctx, pods, ns, name, false, |p| {
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
                                Refresh::SetInPlaceReady(_) | Refresh::PodReadyKeys(_) => {}
                            }
                        }
                        changed
                    })
                    .await?;
                    if let Some(p) = written {
                        ctx.expectations.expect_update(
                            key,
                            name,
                            p.metadata.resource_version.as_deref(),
                        );
                    }
                }
                Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error = Some(e);
    }

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

    if plan.diffs.scale_up_num > plan.diffs.scale_up_limit {
        let limit = plan.diffs.scale_up_limit;
        let msg =
            format!("scaleUp is limited because of scaleStrategy.maxUnavailable, limit: {limit}");
        record(ctx, cs, WARNING, "ScaleUpLimited", msg);
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
            let hook = cs
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.pre_delete.as_ref());
            if let Err(e) =
                mark_not_ready(ctx, &pods, &ns, &d.name, hook, PRE_DELETE_KEY, now).await
            {
                out.scale_error.get_or_insert(e);
                continue;
            }
            mutate_pod(ctx, &pods, &ns, &d.name, false, |p| {
                if lifecycle::state(p) == LifecycleState::PreparingDelete {
                    return false;
                }
                lifecycle::set_state(p, LifecycleState::PreparingDelete, now);
                true
            })
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
            let res = delete_pod(ctx, &pods, &pvcs, &d.name, &key, &uid).await;
            record_delete(ctx, cs, &d.name, &res);
            res
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
            let recorded = u.clone();
            let pods = &pods;
            let key = &key;
            let ns = ns.as_str();
            async move {
                let written = match &u.action {
                    UpdateAction::InPlace(spec) => {
                        let gated = mutate_pod(ctx, pods, ns, &u.name, true, |p| {
                            inplace::has_readiness_gate(p)
                                && (inplace::set_condition(
                                    p,
                                    IN_PLACE_UPDATE_READY,
                                    false,
                                    Some(REASON_START),
                                    now,
                                ) | inplace::set_condition(
                                    p,
                                    "Ready",
                                    false,
                                    Some(REASON_START),
                                    now,
                                ))
                        })
                        .await?;
                        let _ = gated;
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
                        mutate_pod(ctx, pods, ns, &u.name, false, |p| {
                            inplace::begin_update(p, spec, &labels, now);
                            lifecycle::set_state(p, LifecycleState::Updating, now);
                            true
                        })
                        .await?
                    }
                    UpdateAction::PrepareUpdate { readd_hook } => {
                        let hook = cs
                            .spec
                            .lifecycle
                            .as_ref()
                            .and_then(|l| l.in_place_update.clone());
                        mark_not_ready(ctx, pods, ns, &u.name, hook.as_ref(), PRE_UPDATE_KEY, now)
                            .await?;
                        mutate_pod(ctx, pods, ns, &u.name, false, |p| {
                            if *readd_hook {
                                lifecycle::add_hook(p, hook.as_ref());
                            }
                            lifecycle::set_state(p, LifecycleState::PreparingUpdate, now);
                            true
                        })
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
            .map(move |res| {
                record_update(ctx, cs, &recorded, &res);
                res
            })
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    if let Some(e) = results.into_iter().find_map(Result::err) {
        out.update_error.get_or_insert(e);
    }
    out
}

/// Initialises the readiness-gate conditions of a pod just created (the API server drops the
/// status a pod is created with), in one status patch right after the create, so the pod can turn
/// Ready without waiting for the next reconcile: `InPlaceUpdateReady` and `KruisePodReady` True.
async fn init_gates(
    ctx: &Context,
    pods: &Api<Pod>,
    created: &Pod,
    key: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let mut conditions = Vec::new();
    if inplace::has_readiness_gate(created) {
        conditions.push(IN_PLACE_UPDATE_READY);
    }
    if podreadiness::needs_init(created) {
        conditions.push(podreadiness::KRUISE_POD_READY);
    }
    if conditions.is_empty() {
        return Ok(());
    }
    let patch = podreadiness::conditions_true_patch(&conditions, now);
    let name = created.name_any();
    let res = timed(
        ctx,
        WriteKind::UpdatePodStatus,
        &name,
        pods.patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch)),
    )
    .await;
    match res {
        Ok(p) => {
            ctx.expectations
                .expect_update(key, &name, p.metadata.resource_version.as_deref());
            Ok(())
        }
        // Gone already, or refused: the next reconcile's housekeeping sets the conditions.
        Err(e) if e.is_status(404) || e.is_status(422) => Ok(()),
        Err(e) => Err(e),
    }
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
                for pvc in factory.pvcs(id) {
                    let name = pvc.name_any();
                    match timed(
                        ctx,
                        WriteKind::Pvc,
                        &name,
                        pvcs.create(&PostParams::default(), &pvc),
                    )
                    .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_status(409) => {}
                        Err(e) => {
                            let dump = serde_json::to_string(&pvc).unwrap_or_default();
                            let msg = format!("failed to create pvc: {e}, pvc: {dump}");
                            record(ctx, factory.cs, WARNING, "FailedCreate", msg);
                            return Err(e);
                        }
                    }
                }
                let Some(pod) = factory.pod(rev, id, now) else {
                    return Err(Error::MissingRevision {
                        revision: rev.clone(),
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
                    Ok(created) => {
                        let msg = format!("succeed to create pod {name}");
                        record(ctx, factory.cs, NORMAL, "SuccessfulCreate", msg);
                        init_gates(ctx, pods, &created, key, now).await
                    }
                    Err(e) => {
                        ctx.expectations.forget_create(key, &name);
                        let dump = serde_json::to_string(&pod).unwrap_or_default();
                        let msg = format!("failed to create pod: {e}, pod: {dump}");
                        record(ctx, factory.cs, WARNING, "FailedCreate", msg);
                        Err(e)
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
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
    ctx.expectations.expect_delete(key, name);
    match timed(
        ctx,
        WriteKind::DeletePod,
        name,
        pods.delete(name, &DeleteParams::default()),
    )
    .await
    {
        Ok(_) => {}
        Err(e) if e.is_status(404) => {}
        Err(e) => return Err(e),
    }
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
        match timed(
            ctx,
            WriteKind::Pvc,
            &name,
            pvcs.delete(&name, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => {}
            Err(e) if e.is_status(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Records an Event about the CloneSet.
fn record(ctx: &Context, cs: &CloneSet, type_: &str, reason: &str, message: String) {
    ctx.recorder.publish(cs, type_, reason, message);
}

/// Upstream's events for a pod deletion.
fn record_delete(ctx: &Context, cs: &CloneSet, name: &str, res: &Result<(), Error>) {
    match res {
        Ok(()) => record(
            ctx,
            cs,
            NORMAL,
            "SuccessfulDelete",
            format!("succeed to delete pod {name}"),
        ),
        Err(e) => record(
            ctx,
            cs,
            WARNING,
            "FailedDelete",
            format!("failed to delete pod {name}: {e}"),
        ),
    }
}

/// Upstream's events for an in-place or recreate update of one pod.
fn record_update(ctx: &Context, cs: &CloneSet, u: &PodUpdate, res: &Result<(), Error>) {
    let (name, rev) = (&u.name, &u.revision);
    let (type_, reason, message) = match (&u.action, res) {
        (UpdateAction::InPlace(_), Ok(())) => (
            NORMAL,
            "SuccessfulUpdatePodInPlace",
            format!("successfully update pod {name} in-place(revision {rev})"),
        ),
        (UpdateAction::InPlace(_), Err(e)) => (
            WARNING,
            "FailedUpdatePodInPlace",
            format!("failed to update pod {name} in-place(revision {rev}): {e}"),
        ),
        (UpdateAction::Recreate, Ok(())) => (
            NORMAL,
            "SuccessfulUpdatePodReCreate",
            format!("successfully patch pod {name} specified-delete for update(revision {rev})"),
        ),
        (UpdateAction::Recreate, Err(e)) => (
            WARNING,
            "FailedUpdatePodReCreate",
            format!("failed to patch pod specified-delete {name} for update(revision {rev}): {e}"),
        ),
        (UpdateAction::PrepareUpdate { .. } | UpdateAction::Refuse(_), _) => return,
    };
    record(ctx, cs, type_, reason, message);
}

/// With the hook's `markPodNotReady`, makes the lifecycle's `KruisePodReady` holder `key` before
/// the pod enters the hooked state (spec 1.2); a no-op for pods without the gate.
async fn mark_not_ready(
    ctx: &Context,
    pods: &Api<Pod>,
    ns: &str,
    name: &str,
    hook: Option<&kruise_api::apps::common::LifecycleHook>,
    key: &str,
    now: Timestamp,
) -> Result<(), Error> {
    if hook.and_then(|h| h.mark_pod_not_ready) != Some(true) {
        return Ok(());
    }
    let written = mutate_pod(ctx, pods, ns, name, true, |p| {
        podreadiness::set_keys(p, LIFECYCLE_USER_AGENT, &[key], now)
    })
    .await?;
    if let Some(p) = written {
        let cs_key = format!("{ns}/{}", owner_name(&p).unwrap_or_default());
        ctx.expectations
            .expect_update(&cs_key, name, p.metadata.resource_version.as_deref());
    }
    Ok(())
}

fn owner_name(pod: &Pod) -> Option<String> {
    crate::controllerref::controller_of(&pod.metadata).map(|r| r.name.clone())
}
