//! Pod and claim writes shared by the workload controllers. Pod changes go out as minimal
//! strategic-merge patches computed against the cached pod ([`crate::podpatch`]): a status write
//! carries only the conditions that changed, so fields another writer (the kubelet) owns are never
//! written back from a stale view. Only a change a patch cannot express falls back to a fresh
//! read-modify-write with conflict retries.

use std::collections::BTreeMap;
use std::future::Future;

use futures::stream::{self, StreamExt};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::common::LifecycleHook;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::{Context, Error};
use crate::inplace::{self, UpdateSpec, REASON_START};
use crate::lifecycle::{self, LifecycleState};
use crate::metrics::WriteKind;
use crate::podpatch;
use crate::pods::IN_PLACE_UPDATE_READY;

/// Writes of one kind running at once.
pub const CONCURRENCY: usize = 32;

/// A per-pod housekeeping step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Set the `InPlaceUpdateReady` condition.
    SetInPlaceReady(bool),
    /// Patch the images held back by a grace period that has ended.
    FinishGrace,
    /// Move to a lifecycle state.
    Lifecycle(LifecycleState),
}

/// Runs `fut` with the context's write timeout and records the outcome in the metrics.
pub async fn timed<T>(
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
    ctx.observe_write(kind, res.is_ok());
    res
}

/// Applies `f` to a pod and writes what it changed (`status`: the status subresource).
///
/// Fast path: one strategic-merge patch computed against the cached pod. When the change cannot
/// be expressed as such a patch (or the server rejects it), the pod is read fresh, `f` applied
/// again and the whole object written back, retrying conflicts. Returns the written pod, or
/// `None` when nothing changed or the pod is gone.
pub async fn mutate_pod(
    ctx: &Context,
    api: &Api<Pod>,
    ns: &str,
    name: &str,
    status: bool,
    f: impl Fn(&mut Pod) -> bool,
) -> Result<Option<Pod>, Error> {
    let kind = if status {
        WriteKind::UpdatePodStatus
    } else {
        WriteKind::UpdatePod
    };
    if let Some(cached) = ctx.pods.get(&ObjectRef::new(name).within(ns)) {
        let mut new = (*cached).clone();
        if !f(&mut new) {
            return Ok(None);
        }
        let patch = if status {
            podpatch::status_patch(&cached, &new)
        } else {
            podpatch::spec_patch(&cached, &new)
        };
        if let Some(patch) = patch {
            let pp = PatchParams::default();
            let p = Patch::Strategic(patch);
            let res = if status {
                timed(ctx, kind, name, api.patch_status(name, &pp, &p)).await
            } else {
                timed(ctx, kind, name, api.patch(name, &pp, &p)).await
            };
            match res {
                Ok(p) => return Ok(Some(p)),
                Err(e) if e.is_status(404) => return Ok(None),
                Err(e) if e.is_status(415) || e.is_status(422) || e.is_status(400) => {}
                Err(e) => return Err(e),
            }
        }
    }
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
            Err(e) if e.is_status(409) && attempt < 4 => continue,
            Err(e) if e.is_status(404) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Records a pod write in the expectations of `key`, so the next reconcile waits for the cache.
pub fn expect_written(ctx: &Context, key: &str, name: &str, written: Option<&Pod>) {
    if let Some(p) = written {
        ctx.expectations
            .expect_update(key, name, p.metadata.resource_version.as_deref());
    }
}

/// Carries out the housekeeping of one pod: the condition (status) first, then the metadata
/// and spec steps in one write.
async fn refresh_pod(
    ctx: &Context,
    pods: &Api<Pod>,
    ns: &str,
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
        let written = mutate_pod(ctx, pods, ns, name, true, |p| {
            inplace::set_condition(p, IN_PLACE_UPDATE_READY, v, None, now)
        })
        .await?;
        expect_written(ctx, key, name, written.as_ref());
    }
    let meta: Vec<&Refresh> = steps
        .iter()
        .filter(|r| !matches!(r, Refresh::SetInPlaceReady(_)))
        .collect();
    if meta.is_empty() {
        return Ok(());
    }
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
                Refresh::SetInPlaceReady(_) => {}
            }
        }
        changed
    })
    .await?;
    expect_written(ctx, key, name, written.as_ref());
    Ok(())
}

/// Carries out per-pod housekeeping, grouped per pod and run [`CONCURRENCY`] pods at a time.
/// Returns the first error.
pub async fn refresh_pods(
    ctx: &Context,
    pods: &Api<Pod>,
    key: &str,
    steps: impl IntoIterator<Item = (String, Refresh)>,
    now: Timestamp,
) -> Option<Error> {
    let ns = key.split('/').next().unwrap_or_default();
    let mut by_pod: BTreeMap<String, Vec<Refresh>> = BTreeMap::new();
    for (name, r) in steps {
        by_pod.entry(name).or_default().push(r);
    }
    let results: Vec<Result<(), Error>> =
        stream::iter(by_pod)
            .map(|(name, steps)| async move {
                refresh_pod(ctx, pods, ns, key, &name, &steps, now).await
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    results.into_iter().find_map(Result::err)
}

/// What starting an in-place update wrote.
#[derive(Debug, Default)]
pub struct InPlaceWrites {
    /// The status write turning `InPlaceUpdateReady` and `Ready` false (pods with the gate).
    pub gated: Option<Pod>,
    /// The metadata/spec write carrying the new images and revision labels.
    pub updated: Option<Pod>,
}

/// Starts an in-place update: with the `InPlaceUpdateReady` readiness gate, the pod is first
/// marked not ready; then the new images, `labels` (the revision) and lifecycle `Updating` go
/// out in one write.
pub async fn begin_in_place(
    ctx: &Context,
    pods: &Api<Pod>,
    ns: &str,
    name: &str,
    spec: &UpdateSpec,
    labels: &BTreeMap<String, String>,
    now: Timestamp,
) -> Result<InPlaceWrites, Error> {
    let gated = mutate_pod(ctx, pods, ns, name, true, |p| {
        inplace::has_readiness_gate(p)
            && (inplace::set_condition(p, IN_PLACE_UPDATE_READY, false, Some(REASON_START), now)
                | inplace::set_condition(p, "Ready", false, Some(REASON_START), now))
    })
    .await?;
    let updated = mutate_pod(ctx, pods, ns, name, false, |p| {
        inplace::begin_update(p, spec, labels, now);
        lifecycle::set_state(p, LifecycleState::Updating, now);
        true
    })
    .await?;
    Ok(InPlaceWrites { gated, updated })
}

/// Moves a pod hooked by `inPlaceUpdate` to PreparingUpdate, re-adding the hook's labels and
/// finalizers when `readd_hook` (the pod was in Updated).
pub async fn prepare_update(
    ctx: &Context,
    pods: &Api<Pod>,
    ns: &str,
    name: &str,
    hook: Option<&LifecycleHook>,
    readd_hook: bool,
    now: Timestamp,
) -> Result<Option<Pod>, Error> {
    mutate_pod(ctx, pods, ns, name, false, |p| {
        if readd_hook {
            lifecycle::add_hook(p, hook);
        }
        lifecycle::set_state(p, LifecycleState::PreparingUpdate, now);
        true
    })
    .await
}

/// Moves a pod hooked by `preDelete` to PreparingDelete (once).
pub async fn mark_pre_delete(
    ctx: &Context,
    pods: &Api<Pod>,
    ns: &str,
    name: &str,
    now: Timestamp,
) -> Result<Option<Pod>, Error> {
    mutate_pod(ctx, pods, ns, name, false, |p| {
        if lifecycle::state(p) == LifecycleState::PreparingDelete {
            return false;
        }
        lifecycle::set_state(p, LifecycleState::PreparingDelete, now);
        true
    })
    .await
}

/// Creates the claims of a pod (existing ones are kept) and then the pod, expecting its create.
pub async fn create_pod_with_claims(
    ctx: &Context,
    pods: &Api<Pod>,
    pvcs: &Api<PersistentVolumeClaim>,
    key: &str,
    claims: Vec<PersistentVolumeClaim>,
    pod: &Pod,
) -> Result<(), Error> {
    for claim in claims {
        let name = claim.name_any();
        match timed(
            ctx,
            WriteKind::Pvc,
            &name,
            pvcs.create(&PostParams::default(), &claim),
        )
        .await
        {
            Ok(_) => {}
            Err(e) if e.is_status(409) => {}
            Err(e) => return Err(e),
        }
    }
    let name = pod.name_any();
    ctx.expectations.expect_create(key, &name);
    match timed(
        ctx,
        WriteKind::CreatePod,
        &name,
        pods.create(&PostParams::default(), pod),
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

/// Deletes a pod, expecting its removal; a pod already gone is no error.
pub async fn delete_pod(
    ctx: &Context,
    pods: &Api<Pod>,
    key: &str,
    name: &str,
) -> Result<(), Error> {
    ctx.expectations.expect_delete(key, name);
    match timed(
        ctx,
        WriteKind::DeletePod,
        name,
        pods.delete(name, &DeleteParams::default()),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_status(404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes a claim; a claim already gone is no error.
pub async fn delete_claim(
    ctx: &Context,
    pvcs: &Api<PersistentVolumeClaim>,
    name: &str,
) -> Result<(), Error> {
    match timed(
        ctx,
        WriteKind::Pvc,
        name,
        pvcs.delete(name, &DeleteParams::default()),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_status(404) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Raises a claim's `spec.resources.requests.storage` to `storage` with one merge patch.
pub async fn resize_claim(
    ctx: &Context,
    pvcs: &Api<PersistentVolumeClaim>,
    name: &str,
    storage: &str,
) -> Result<(), Error> {
    let patch = json!({"spec": {"resources": {"requests": {"storage": storage}}}});
    match timed(
        ctx,
        WriteKind::Pvc,
        name,
        pvcs.patch(name, &PatchParams::default(), &Patch::Merge(&patch)),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_status(404) => Ok(()),
        Err(e) => Err(e),
    }
}
