//! What one Advanced StatefulSet reconcile should do, as data (spec section 3.4, upstream's
//! `updateStatefulSet`). Pure: time, the resolved settings and the observed pods come in; a
//! [`Plan`] comes out.
//!
//! Order of work, as upstream: per-pod housekeeping, then scaling (missing ordinals are created in
//! ascending order, condemned pods deleted in descending order; `OrderedReady` does one at a time
//! and waits for Running+Ready), then the rolling update (highest ordinal first, or by priority;
//! `partition` pods stay on the current revision; at most `maxUnavailable` pods unavailable).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::settings::{storage_bytes, PodUpdatePolicy, Retention, Settings};
use crate::inplace::{self, UpdateSpec};
use crate::lifecycle::{self, LifecycleState};
use crate::pods::{self, IN_PLACE_UPDATE_READY};
use crate::{ordering, revision};

/// Everything the plan looks at.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Resolved spec.
    pub settings: &'a Settings,
    /// Pods owned by the set, terminating ones included.
    pub pods: Vec<&'a Pod>,
    /// Names of the claims of this set that exist.
    pub claims: BTreeSet<String>,
    /// Storage requested by each existing claim of this set (claims without one are absent).
    pub claim_storage: BTreeMap<String, String>,
    /// Revision pods were on before the current update.
    pub current_revision: &'a str,
    /// Revision pods are updated to.
    pub update_revision: &'a str,
    /// Pod template of each known revision, by revision name.
    pub templates: &'a BTreeMap<String, PodTemplateSpec>,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCreate {
    /// Ordinal of the pod.
    pub ordinal: i32,
    /// Revision of the new pod.
    pub revision: String,
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Its ordinal is no longer kept (scale-down or reserved).
    Condemned,
    /// It failed or succeeded; it is created again.
    Terminal,
    /// Recreate-update to the update revision.
    Update,
    /// It carries `apps.kruise.io/specified-delete`.
    Specified,
}

/// A pod to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDelete {
    /// Pod name.
    pub name: String,
    /// Move it to PreparingDelete (hooked by preDelete) instead of deleting it.
    pub pre_delete: bool,
    /// Why.
    pub reason: DeleteReason,
}

pub use crate::workload::apply::Refresh;

/// A claim whose storage request is raised to its template's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimResize {
    /// Claim name.
    pub claim: String,
    /// New `spec.resources.requests.storage`.
    pub storage: String,
}

/// How one pod is moved to the update revision without deleting it.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateAction {
    /// In place with this spec.
    InPlace(UpdateSpec),
    /// Hooked by inPlaceUpdate: move to PreparingUpdate (re-adding the hook when `readd_hook`).
    PrepareUpdate {
        /// Re-add the hook's labels/finalizers (the pod was in `Updated`).
        readd_hook: bool,
    },
    /// The update cannot be carried out (InPlaceOnly with a change that needs a recreate).
    Refuse(String),
}

/// An in-place update of one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUpdate {
    /// Pod name.
    pub name: String,
    /// Target revision.
    pub revision: String,
    /// How.
    pub action: UpdateAction,
}

/// The result of planning one reconcile.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Housekeeping per pod name.
    pub refresh: Vec<(String, Refresh)>,
    /// Pods to create, ascending ordinal.
    pub create: Vec<PodCreate>,
    /// Pods to delete, in order.
    pub delete: Vec<PodDelete>,
    /// Pods updated in place.
    pub update: Vec<PodUpdate>,
    /// Claims deleted because their ordinal was scaled away (`whenScaled: Delete`).
    pub delete_claims: Vec<String>,
    /// Claims of updated pods expanded to their template's storage (`OnPodRollingUpdate`).
    pub resize_claims: Vec<ClaimResize>,
    /// Reconcile again after this long, even without events.
    pub requeue: Option<Duration>,
    /// Waiting on a pod before going on (OrderedReady), for logs and tests.
    pub waiting_on: Option<String>,
}

impl Plan {
    fn requeue_after(&mut self, d: Duration) {
        let d = d.max(Duration::from_millis(100));
        self.requeue = Some(self.requeue.map_or(d, |r| r.min(d)));
    }

    /// Whether the plan changes anything.
    pub fn is_noop(&self) -> bool {
        self.refresh.is_empty()
            && self.create.is_empty()
            && self.delete.is_empty()
            && self.update.is_empty()
            && self.delete_claims.is_empty()
            && self.resize_claims.is_empty()
    }
}

fn is_terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn is_terminal(p: &Pod) -> bool {
    matches!(pods::phase(p), "Failed" | "Succeeded")
}

/// Running, ready for `minReadySeconds`, not terminating, and in lifecycle Normal (or none).
pub fn is_healthy(s: &Settings, p: &Pod, now: Timestamp) -> bool {
    !is_terminating(p) && pods::is_available_normal(p, s.min_ready_seconds, now)
}

/// Plans one reconcile.
pub fn plan(obs: &Observed<'_>, now: Timestamp) -> Plan {
    let s = obs.settings;
    let mut out = Plan::default();
    for p in obs.pods.iter().filter(|p| !is_terminating(p)) {
        for r in refresh(s, p, now, &mut out) {
            out.refresh.push((pods::name(p).to_string(), r));
        }
    }

    let valid = s.valid_ordinals();
    let kept: BTreeSet<i32> = valid.iter().copied().collect();
    let mut replicas: BTreeMap<i32, &Pod> = BTreeMap::new();
    let mut condemned: Vec<(i32, &Pod)> = Vec::new();
    for p in &obs.pods {
        match s.ordinal_of(pods::name(p)) {
            Some(o) if kept.contains(&o) => {
                replicas.insert(o, p);
            }
            Some(o) => condemned.push((o, p)),
            None => condemned.push((i32::MAX, p)),
        }
    }
    condemned.sort_by_key(|c| std::cmp::Reverse(c.0));

    if s.when_scaled == Retention::Delete {
        let live: BTreeSet<i32> = obs
            .pods
            .iter()
            .filter_map(|p| s.ordinal_of(pods::name(p)))
            .collect();
        for c in &obs.claims {
            if let Some(o) = s.claim_ordinal(c) {
                if !kept.contains(&o) && !live.contains(&o) {
                    out.delete_claims.push(c.clone());
                }
            }
        }
    }

    if s.resize_claims {
        out.resize_claims = claim_resizes(obs, &replicas);
    }

    if scale(obs, &valid, &replicas, &condemned, now, &mut out) {
        return out;
    }
    if out
        .refresh
        .iter()
        .any(|(_, r)| matches!(r, Refresh::Lifecycle(_)))
    {
        // Lifecycle states change this round; update decisions wait for them.
        return out;
    }
    update(obs, &valid, &replicas, now, &mut out);
    out
}

/// With `OnPodRollingUpdate`: the claims of pods already on the update revision whose storage
/// request is below their template's. Storage is only ever raised: a template asking for less
/// is accepted but not applied, and a request that does not parse is left alone.
fn claim_resizes(obs: &Observed<'_>, replicas: &BTreeMap<i32, &Pod>) -> Vec<ClaimResize> {
    let s = obs.settings;
    let mut out = Vec::new();
    for (ordinal, p) in replicas {
        if is_terminating(p) || !revision::pod_on_revision(p, obs.update_revision) {
            continue;
        }
        for (template, want) in &s.claim_storage {
            let claim = s.claim_name(template, *ordinal);
            let Some(have) = obs.claim_storage.get(&claim) else {
                continue;
            };
            let (Some(want_b), Some(have_b)) = (storage_bytes(want), storage_bytes(have)) else {
                continue;
            };
            if want_b > have_b {
                out.push(ClaimResize {
                    claim,
                    storage: want.clone(),
                });
            }
        }
    }
    out
}

/// Per-pod housekeeping: the in-place condition, grace periods and lifecycle transitions.
fn refresh(s: &Settings, pod: &Pod, now: Timestamp, out: &mut Plan) -> Vec<Refresh> {
    let mut steps = Vec::new();
    let hooks = s.lifecycle.as_ref();
    if let Some(left) = inplace::grace_remaining(pod, now) {
        if left.is_zero() {
            steps.push(Refresh::FinishGrace);
        } else {
            out.requeue_after(left);
        }
        return steps;
    }
    let cond = pods::condition(pod, IN_PLACE_UPDATE_READY).map(|c| c.status == "True");
    let in_update = inplace::state(pod).is_some();
    let completed = inplace::is_completed(pod);
    if inplace::has_readiness_gate(pod)
        && ((in_update && completed && cond != Some(true)) || (!in_update && cond.is_none()))
    {
        steps.push(Refresh::SetInPlaceReady(true));
    }
    match lifecycle::state(pod) {
        LifecycleState::PreparingNormal => {
            let pre_normal = hooks.and_then(|l| l.pre_normal.as_ref());
            let ready = match pre_normal {
                Some(_) => lifecycle::is_all_hooked(pre_normal, pod),
                None => pods::is_assigned(pod),
            };
            if ready {
                steps.push(Refresh::Lifecycle(LifecycleState::Normal));
            }
        }
        LifecycleState::Updating if completed => {
            let hook = hooks.and_then(|l| l.in_place_update.as_ref());
            let next = if hook.is_some() && !lifecycle::is_hooked(hook, pod) {
                LifecycleState::Updated
            } else {
                LifecycleState::Normal
            };
            steps.push(Refresh::Lifecycle(next));
        }
        LifecycleState::Updated => {
            let hook = hooks.and_then(|l| l.in_place_update.as_ref());
            if hook.is_none() || lifecycle::is_all_hooked(hook, pod) {
                steps.push(Refresh::Lifecycle(LifecycleState::Normal));
            }
        }
        _ => {}
    }
    if let Some(left) = pods::time_to_available(pod, s.min_ready_seconds, now) {
        if !left.is_zero() {
            out.requeue_after(left);
        }
    }
    steps
}

fn delete_step(s: &Settings, p: &Pod, reason: DeleteReason) -> Option<PodDelete> {
    let hook = s.lifecycle.as_ref().and_then(|l| l.pre_delete.as_ref());
    let name = pods::name(p).to_string();
    if lifecycle::state(p) == LifecycleState::PreparingDelete {
        // Already marked: delete once the hook is gone.
        return (!lifecycle::is_hooked(hook, p)).then_some(PodDelete {
            name,
            pre_delete: false,
            reason,
        });
    }
    Some(PodDelete {
        name,
        pre_delete: lifecycle::is_hooked(hook, p),
        reason,
    })
}

/// The revision a created pod gets: the lowest `partition` kept ordinals stay on the current
/// revision during a rolling update (they are the last in the default update order).
fn create_revision<'a>(obs: &Observed<'a>, position: usize) -> &'a str {
    let s = obs.settings;
    let keep_old = !s.on_delete
        && s.priority.is_none()
        && obs.current_revision != obs.update_revision
        && obs.templates.contains_key(obs.current_revision)
        && position < usize::try_from(s.partition).unwrap_or(0);
    if keep_old {
        obs.current_revision
    } else {
        obs.update_revision
    }
}

/// Scaling. Returns true when it acted or must wait, so updates do not run this round.
fn scale(
    obs: &Observed<'_>,
    valid: &[i32],
    replicas: &BTreeMap<i32, &Pod>,
    condemned: &[(i32, &Pod)],
    now: Timestamp,
    out: &mut Plan,
) -> bool {
    let s = obs.settings;
    let monotonic = !s.parallel;
    let mut acted = false;

    // Pods that ended are deleted so that the ordinal is created again.
    for p in replicas.values() {
        if is_terminal(p) && !is_terminating(p) {
            out.delete.push(PodDelete {
                name: pods::name(p).to_string(),
                pre_delete: false,
                reason: DeleteReason::Terminal,
            });
            acted = true;
        }
    }
    if acted {
        return true;
    }

    let mut unavailable = replicas.values().filter(|p| !is_healthy(s, p, now)).count() as i32;
    for (position, o) in valid.iter().enumerate() {
        match replicas.get(o) {
            None => {
                if !monotonic && unavailable >= s.scale_max_unavailable {
                    out.waiting_on = Some(s.pod_name(*o));
                    return true;
                }
                out.create.push(PodCreate {
                    ordinal: *o,
                    revision: create_revision(obs, position).to_string(),
                });
                unavailable += 1;
                acted = true;
                if monotonic {
                    return true;
                }
            }
            Some(p) if monotonic && is_terminating(p) => {
                out.waiting_on = Some(pods::name(p).to_string());
                return true;
            }
            Some(p) if monotonic && !is_healthy(s, p, now) => {
                // Not Running+Ready yet, or ready for less than minReadySeconds.
                out.waiting_on = Some(pods::name(p).to_string());
                return true;
            }
            Some(_) => {}
        }
    }
    if acted {
        return true;
    }

    // Condemned pods go highest ordinal first; OrderedReady removes one at a time, and only
    // while every other pod is healthy.
    for (_, p) in condemned {
        if is_terminating(p) {
            if monotonic {
                out.waiting_on = Some(pods::name(p).to_string());
                return true;
            }
            continue;
        }
        if monotonic {
            let others_unhealthy = replicas.values().any(|q| !is_healthy(s, q, now));
            if others_unhealthy {
                out.waiting_on = Some(pods::name(p).to_string());
                return true;
            }
        }
        if let Some(d) = delete_step(s, p, DeleteReason::Condemned) {
            out.delete.push(d);
        } else {
            out.waiting_on = Some(pods::name(p).to_string());
        }
        acted = true;
        if monotonic {
            return true;
        }
    }
    if acted {
        return true;
    }

    // Specified deletion respects maxUnavailable and the preDelete hook.
    let mut specified: Vec<&Pod> = replicas
        .values()
        .copied()
        .filter(|p| pods::is_specified_delete(p) && !is_terminating(p))
        .collect();
    specified.sort_by(|a, b| {
        s.ordinal_of(pods::name(b))
            .cmp(&s.ordinal_of(pods::name(a)))
    });
    for p in specified {
        let healthy = is_healthy(s, p, now);
        if healthy && unavailable >= s.max_unavailable {
            break;
        }
        if let Some(d) = delete_step(s, p, DeleteReason::Specified) {
            out.delete.push(d);
            if healthy {
                unavailable += 1;
            }
            acted = true;
        }
    }
    acted
}

/// Upstream's `sortPodsToUpdate` with the 1.8 partition: pods already updated (or terminating)
/// first, then the rest by priority or highest ordinal; only the first `replicas - partition`.
fn update_order<'a>(
    s: &Settings,
    replicas: &BTreeMap<i32, &'a Pod>,
    update_revision: &str,
) -> Vec<&'a Pod> {
    let max_update = usize::try_from(s.replicas - s.partition).unwrap_or(0);
    if max_update == 0 {
        return vec![];
    }
    let mut done = Vec::new();
    let mut waiting = Vec::new();
    for p in replicas.values().rev() {
        if is_terminating(p) || revision::pod_on_revision(p, update_revision) {
            done.push(*p);
        } else {
            waiting.push(*p);
        }
    }
    if let Some(priority) = &s.priority {
        ordering::sort_by_priority(&mut waiting, priority);
    }
    done.extend(waiting);
    done.truncate(max_update);
    done
}

/// The rolling update.
fn update(
    obs: &Observed<'_>,
    valid: &[i32],
    replicas: &BTreeMap<i32, &Pod>,
    now: Timestamp,
    out: &mut Plan,
) {
    let s = obs.settings;
    if s.on_delete || s.paused || valid.len() != replicas.len() {
        return;
    }
    let target = obs.update_revision;
    let mut unavailable: BTreeSet<String> = replicas
        .values()
        .filter(|p| !is_healthy(s, p, now))
        .map(|p| pods::name(p).to_string())
        .collect();
    let hook = s
        .lifecycle
        .as_ref()
        .and_then(|l| l.in_place_update.as_ref());
    for p in update_order(s, replicas, target) {
        let name = pods::name(p).to_string();
        if unavailable.len() as i32 >= s.max_unavailable && !unavailable.contains(&name) {
            out.waiting_on = Some(name);
            break;
        }
        if revision::pod_on_revision(p, target)
            || is_terminating(p)
            || inplace::grace_spec(p).is_some()
            || lifecycle::state(p) == LifecycleState::PreparingDelete
        {
            continue;
        }
        match update_action(s, p, target, obs.templates, hook) {
            Some(Ok(action)) => out.update.push(PodUpdate {
                name: name.clone(),
                revision: target.to_string(),
                action,
            }),
            Some(Err(())) => {
                if let Some(d) = delete_step(s, p, DeleteReason::Update) {
                    out.delete.push(d);
                }
            }
            None => {}
        }
        unavailable.insert(name);
    }
}

/// In place (`Ok`), recreate (`Err`), or nothing yet (`None`, waiting for a hook).
fn update_action(
    s: &Settings,
    pod: &Pod,
    target: &str,
    templates: &BTreeMap<String, PodTemplateSpec>,
    hook: Option<&kruise_api::apps::common::LifecycleHook>,
) -> Option<Result<UpdateAction, ()>> {
    if s.pod_update_policy == PodUpdatePolicy::ReCreate {
        return Some(Err(()));
    }
    let old = templates
        .iter()
        .find(|(name, _)| revision::pod_on_revision(pod, name))
        .map(|(_, t)| t);
    let spec = match (old, templates.get(target)) {
        (Some(o), Some(n)) => inplace::calculate_spec(o, n, target, s.grace_seconds),
        _ => None,
    };
    let Some(spec) = spec else {
        if s.pod_update_policy == PodUpdatePolicy::InPlaceOnly {
            return Some(Ok(UpdateAction::Refuse(format!(
                "find Pod {} update strategy is InPlaceOnly but can not update in-place",
                pods::name(pod)
            ))));
        }
        return Some(Err(()));
    };
    let hooked = lifecycle::is_hooked(hook, pod);
    match lifecycle::state(pod) {
        LifecycleState::None | LifecycleState::Normal if hooked => {
            Some(Ok(UpdateAction::PrepareUpdate { readd_hook: false }))
        }
        LifecycleState::Updated if hook.is_some() => {
            Some(Ok(UpdateAction::PrepareUpdate { readd_hook: true }))
        }
        LifecycleState::PreparingUpdate if hooked => None,
        LifecycleState::None
        | LifecycleState::Normal
        | LifecycleState::PreparingUpdate
        | LifecycleState::Updating
        | LifecycleState::Updated => Some(Ok(UpdateAction::InPlace(spec))),
        LifecycleState::PreparingNormal
        | LifecycleState::PreparingDelete
        | LifecycleState::Other => None,
    }
}

#[cfg(test)]
mod tests;
