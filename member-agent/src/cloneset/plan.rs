//! What one CloneSet reconcile should do, as data (spec sections 2.5-2.8). Pure: time, the
//! resolved settings and the observed pods come in; a [`Plan`] comes out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::diffs::{self, Diffs};
use super::settings::{Settings, UpdateType};
use crate::inplace::{self, UpdateSpec};
use crate::lifecycle::{self, LifecycleState};
use crate::podreadiness::{self, LIFECYCLE_USER_AGENT, PRE_DELETE_KEY, PRE_UPDATE_KEY};
use crate::pods::{self, IN_PLACE_UPDATE_READY};
use crate::{ordering, revision};

/// Label with the instance id on CloneSet pods and PVCs.
pub const INSTANCE_ID_LABEL: &str = "apps.kruise.io/cloneset-instance-id";

/// Everything the plan looks at.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Resolved spec.
    pub settings: &'a Settings,
    /// Active pods owned by the CloneSet.
    pub pods: Vec<&'a Pod>,
    /// Instance ids of the PVCs the CloneSet owns.
    pub pvc_instance_ids: BTreeSet<String>,
    /// Revision most pods were on before the current update.
    pub current_revision: &'a str,
    /// Revision pods are updated to.
    pub update_revision: &'a str,
    /// Pod template of each known revision, by revision name.
    pub templates: &'a BTreeMap<String, PodTemplateSpec>,
    /// Gate `CloneSetPartitionRollback`.
    pub allow_rollback: bool,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCreate {
    /// Revision of the new pod.
    pub revision: String,
    /// Instance id to reuse (orphaned PVCs), or `None` for a fresh random one.
    pub instance_id: Option<String>,
}

/// A pod to remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDelete {
    /// Pod name.
    pub name: String,
    /// Move it to PreparingDelete (hooked by preDelete) instead of deleting it.
    pub pre_delete: bool,
}

/// A per-pod housekeeping step that does not depend on scaling or updating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// Set the `InPlaceUpdateReady` condition.
    SetInPlaceReady(bool),
    /// Patch the images held back by a grace period that has ended.
    FinishGrace,
    /// Move to a lifecycle state.
    Lifecycle(LifecycleState),
    /// Make the `KruisePodReady` holders of the lifecycle hooks exactly these keys (creating the
    /// condition, True when empty, if the pod has the gate but not the condition).
    PodReadyKeys(Vec<String>),
}

/// How one pod is moved to the target revision.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateAction {
    /// In place with this spec.
    InPlace(UpdateSpec),
    /// Hooked by inPlaceUpdate: move to PreparingUpdate (re-adding the hook when `readd_hook`).
    PrepareUpdate {
        /// Re-add the hook's labels/finalizers (the pod was in `Updated`).
        readd_hook: bool,
    },
    /// Mark `apps.kruise.io/specified-delete: "true"` so scaling replaces it.
    Recreate,
    /// The update cannot be carried out (InPlaceOnly with a change that needs a recreate).
    Refuse(String),
}

/// An update of one pod.
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
    /// Pods to create (in slow-start batches).
    pub create: Vec<PodCreate>,
    /// PreparingDelete pods that go back to PreparingNormal because replicas rose again (never
    /// with preDelete's markPodNotReady).
    pub regret: Vec<String>,
    /// Pods to delete, in deletion order.
    pub delete: Vec<PodDelete>,
    /// Pods to update.
    pub update: Vec<PodUpdate>,
    /// Instance ids whose PVCs are deleted (reuse disabled, no active pod).
    pub delete_pvc_ids: Vec<String>,
    /// Reconcile again after this long, even without events.
    pub requeue: Option<Duration>,
    /// The numbers the plan was made from.
    pub diffs: Diffs,
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
            && self.regret.is_empty()
            && self.delete.is_empty()
            && self.update.is_empty()
            && self.delete_pvc_ids.is_empty()
    }
}

/// Instance id of a pod or PVC.
pub fn instance_id(labels: Option<&BTreeMap<String, String>>) -> Option<&str> {
    labels?.get(INSTANCE_ID_LABEL).map(String::as_str)
}

/// Plans one reconcile.
pub fn plan(obs: &Observed<'_>, now: Timestamp) -> Plan {
    let s = obs.settings;
    let mut out = Plan::default();
    for p in &obs.pods {
        for r in refresh(s, p, now, &mut out) {
            out.refresh.push((pods::name(p).to_string(), r));
        }
    }
    let d = diffs::calculate(
        s,
        &obs.pods,
        obs.current_revision,
        obs.update_revision,
        now,
        obs.allow_rollback,
    );
    out.diffs = d;

    let active_ids: BTreeSet<&str> = obs
        .pods
        .iter()
        .filter_map(|p| instance_id(p.metadata.labels.as_ref()))
        .collect();
    let orphan_ids: Vec<String> = obs
        .pvc_instance_ids
        .iter()
        .filter(|id| !active_ids.contains(id.as_str()))
        .cloned()
        .collect();
    if s.disable_pvc_reuse {
        out.delete_pvc_ids = orphan_ids.clone();
    }

    if scale(obs, &d, &orphan_ids, &mut out) {
        return out;
    }
    update(obs, &d, now, &mut out);
    out
}

/// Per-pod housekeeping: the in-place condition, grace periods and lifecycle transitions.
fn refresh(s: &Settings, pod: &Pod, now: Timestamp, out: &mut Plan) -> Vec<Refresh> {
    let mut steps = Vec::new();
    let hooks = s.lifecycle.as_ref();
    let cond = pods::condition(pod, IN_PLACE_UPDATE_READY).map(|c| c.status == "True");
    if let Some(left) = inplace::grace_remaining(pod, now) {
        if left.is_zero() {
            steps.push(Refresh::FinishGrace);
        } else {
            out.requeue_after(left);
        }
        return steps;
    }
    let in_update = inplace::state(pod).is_some();
    let completed = inplace::is_completed(pod);
    if inplace::has_readiness_gate(pod) {
        let finished = in_update && completed && cond != Some(true);
        let missing = !in_update && cond.is_none();
        if finished || missing {
            steps.push(Refresh::SetInPlaceReady(true));
        }
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
    if podreadiness::has_gate(pod) {
        let next = steps
            .iter()
            .find_map(|r| match r {
                Refresh::Lifecycle(next) => Some(*next),
                _ => None,
            })
            .unwrap_or_else(|| lifecycle::state(pod));
        let have = podreadiness::keys_of(pod, LIFECYCLE_USER_AGENT);
        let want = not_ready_keys(s, next, &have);
        if podreadiness::needs_init(pod) || want != have {
            steps.insert(0, Refresh::PodReadyKeys(want));
        }
    }
    if let Some(left) = pods::time_to_available(pod, s.min_ready_seconds, now) {
        if !left.is_zero() {
            out.requeue_after(left);
        }
    }
    steps
}

/// The `KruisePodReady` keys lifecycle hooks hold on a pod in `state` (spec 1.2, markPodNotReady):
/// preDelete's while PreparingDelete, inPlaceUpdate's from PreparingUpdate until the update is
/// done (`Updating` keeps a key already held), none otherwise, so no pod stays held by accident.
pub fn not_ready_keys(s: &Settings, state: LifecycleState, held: &[String]) -> Vec<String> {
    let marks = |hook: Option<&kruise_api::apps::common::LifecycleHook>| {
        hook.and_then(|h| h.mark_pod_not_ready) == Some(true)
    };
    let hooks = s.lifecycle.as_ref();
    let key = match state {
        LifecycleState::PreparingDelete if marks(hooks.and_then(|l| l.pre_delete.as_ref())) => {
            Some(PRE_DELETE_KEY)
        }
        LifecycleState::PreparingUpdate
            if marks(hooks.and_then(|l| l.in_place_update.as_ref())) =>
        {
            Some(PRE_UPDATE_KEY)
        }
        LifecycleState::Updating if held.iter().any(|k| k == PRE_UPDATE_KEY) => {
            Some(PRE_UPDATE_KEY)
        }
        _ => None,
    };
    key.map(|k| vec![k.to_string()]).unwrap_or_default()
}

/// Scaling (spec 2.5 step order). Returns true when it acted, so updates wait.
fn scale(obs: &Observed<'_>, d: &Diffs, orphan_ids: &[String], out: &mut Plan) -> bool {
    let s = obs.settings;
    let pre_delete_hook = s.lifecycle.as_ref().and_then(|l| l.pre_delete.as_ref());
    let in_pre_delete: Vec<&Pod> = obs
        .pods
        .iter()
        .copied()
        .filter(|p| lifecycle::state(p) == LifecycleState::PreparingDelete)
        .collect();
    let specified: Vec<&Pod> = obs
        .pods
        .iter()
        .copied()
        .filter(|p| {
            lifecycle::state(p) != LifecycleState::PreparingDelete
                && diffs::is_specified_delete(s, p)
        })
        .collect();

    // Replicas raised while pods wait in PreparingDelete: take non-specified ones back (upstream
    // `managePreparingDelete`), never with markPodNotReady, and act on nothing else this round.
    let mark_not_ready = pre_delete_hook.and_then(|h| h.mark_pod_not_ready) == Some(true);
    if !mark_not_ready {
        let planned = in_pre_delete
            .iter()
            .chain(specified.iter())
            .map(|p| pods::name(p))
            .collect::<BTreeSet<&str>>()
            .len() as i32;
        let mut room = s.replicas - obs.pods.len() as i32 + planned;
        for p in in_pre_delete
            .iter()
            .filter(|p| !diffs::is_specified_delete(s, p))
        {
            if room <= 0 {
                break;
            }
            out.regret.push(pods::name(p).to_string());
            room -= 1;
        }
        if !out.regret.is_empty() {
            return true;
        }
    }

    if d.scale_up_num > 0 {
        let want = d.scale_up_num.min(d.scale_up_limit).max(0) as usize;
        let mut old = if obs.current_revision != obs.update_revision {
            d.scale_up_num_old_revision.max(0) as usize
        } else {
            0
        };
        let mut ids = orphan_ids.iter();
        for _ in 0..want {
            let revision = if old > 0 {
                old -= 1;
                obs.current_revision
            } else {
                obs.update_revision
            };
            out.create.push(PodCreate {
                revision: revision.to_string(),
                instance_id: if s.disable_pvc_reuse {
                    None
                } else {
                    ids.next().cloned()
                },
            });
        }
        return want > 0;
    }

    let mut acted = false;
    for p in &in_pre_delete {
        if !lifecycle::is_hooked(pre_delete_hook, p) {
            out.delete.push(PodDelete {
                name: pods::name(p).to_string(),
                pre_delete: false,
            });
            acted = true;
        }
    }
    if acted {
        return true;
    }

    let mut ready_budget = d.delete_ready_limit;
    let push_delete = |out: &mut Plan, p: &Pod, budget: &mut i32| -> bool {
        if pods::is_ready(p) {
            if *budget <= 0 {
                return false;
            }
            *budget -= 1;
        }
        out.delete.push(PodDelete {
            name: pods::name(p).to_string(),
            pre_delete: lifecycle::is_hooked(pre_delete_hook, p),
        });
        true
    };
    if !specified.is_empty() {
        let mut sorted = specified.clone();
        ordering::sort_for_deletion(&mut sorted);
        for p in sorted {
            push_delete(out, p, &mut ready_budget);
        }
        return !out.delete.is_empty() || !specified.is_empty();
    }

    if d.scale_down_num > 0 {
        if !in_pre_delete.is_empty() {
            return true;
        }
        let (mut old, mut new): (Vec<&Pod>, Vec<&Pod>) = obs
            .pods
            .iter()
            .copied()
            .partition(|p| !revision::pod_on_revision(p, obs.update_revision));
        ordering::sort_for_deletion(&mut old);
        ordering::sort_for_deletion(&mut new);
        let old_take = (d.scale_down_num_old_revision.min(d.scale_down_num)).max(0) as usize;
        let mut chosen: Vec<&Pod> = old.iter().copied().take(old_take).collect();
        let mut rest: Vec<&Pod> = old
            .iter()
            .copied()
            .skip(old_take)
            .chain(new.iter().copied())
            .collect();
        ordering::sort_for_deletion(&mut rest);
        let n = d.scale_down_num.max(0) as usize;
        chosen.extend(rest.into_iter().take(n.saturating_sub(chosen.len())));
        ordering::sort_for_deletion(&mut chosen);
        for p in chosen {
            push_delete(out, p, &mut ready_budget);
        }
        return true;
    }
    false
}

/// Updating (spec 2.6 steps 2-8).
fn update(obs: &Observed<'_>, d: &Diffs, now: Timestamp, out: &mut Plan) {
    let s = obs.settings;
    if s.paused || d.update_num == 0 {
        return;
    }
    let target = if d.update_num < 0 {
        obs.current_revision
    } else {
        obs.update_revision
    };
    let hook = s
        .lifecycle
        .as_ref()
        .and_then(|l| l.in_place_update.as_ref());
    // Pods whose state changes this round are left alone and count as unavailable until the
    // change has been observed, so the budget holds while refreshes and updates overlap.
    let refreshing: BTreeSet<&str> = out.refresh.iter().map(|(n, _)| n.as_str()).collect();
    let available = |p: &Pod| {
        !refreshing.contains(pods::name(p))
            && pods::is_available_normal(p, s.min_ready_seconds, now)
    };
    let mut candidates: Vec<&Pod> = obs
        .pods
        .iter()
        .copied()
        .filter(|p| {
            !refreshing.contains(pods::name(p))
                && !revision::pod_on_revision(p, target)
                && lifecycle::state(p) != LifecycleState::PreparingDelete
                && inplace::grace_spec(p).is_none()
                && !diffs::is_specified_delete(s, p)
        })
        .collect();
    candidates.sort_by(|a, b| ordering::active_first(a, b));
    if let Some(priority) = &s.priority {
        ordering::sort_by_priority(&mut candidates, priority);
    }
    if !s.scatter.is_empty() {
        candidates = ordering::scatter(candidates, &s.scatter);
    }
    candidates.sort_by_key(|p| lifecycle::state(p) != LifecycleState::PreparingUpdate);
    candidates.truncate(d.update_num.unsigned_abs() as usize);

    // Pods not available count against the budget; updating an available pod consumes one.
    let mut not_ready = obs.pods.iter().filter(|p| !available(p)).count() as i32;
    let mut chosen = Vec::new();
    for p in candidates {
        if available(p) {
            if not_ready >= d.update_max_unavailable {
                break;
            }
            not_ready += 1;
        }
        chosen.push(p);
    }

    let target_template = obs.templates.get(target);
    for p in chosen {
        if let Some(action) = update_action(s, p, target, target_template, obs.templates, hook) {
            out.update.push(PodUpdate {
                name: pods::name(p).to_string(),
                revision: target.to_string(),
                action,
            });
        }
    }
}

fn update_action(
    s: &Settings,
    pod: &Pod,
    target: &str,
    target_template: Option<&PodTemplateSpec>,
    templates: &BTreeMap<String, PodTemplateSpec>,
    hook: Option<&kruise_api::apps::common::LifecycleHook>,
) -> Option<UpdateAction> {
    if s.update_type != UpdateType::ReCreate {
        let old = templates
            .iter()
            .find(|(name, _)| revision::pod_on_revision(pod, name))
            .map(|(_, t)| t);
        let spec = match (old, target_template) {
            (Some(o), Some(n)) => inplace::calculate_spec(o, n, target, s.grace_seconds),
            _ => None,
        };
        if let Some(spec) = spec {
            let hooked = lifecycle::is_hooked(hook, pod);
            return match lifecycle::state(pod) {
                LifecycleState::None | LifecycleState::Normal if hooked => {
                    Some(UpdateAction::PrepareUpdate { readd_hook: false })
                }
                LifecycleState::Updated if hook.is_some() => {
                    Some(UpdateAction::PrepareUpdate { readd_hook: true })
                }
                LifecycleState::PreparingUpdate if hooked => None,
                LifecycleState::None
                | LifecycleState::Normal
                | LifecycleState::PreparingUpdate
                | LifecycleState::Updating => Some(UpdateAction::InPlace(spec)),
                LifecycleState::PreparingNormal
                | LifecycleState::Updated
                | LifecycleState::PreparingDelete
                | LifecycleState::Other => None,
            };
        }
        if s.update_type == UpdateType::InPlaceOnly {
            return Some(UpdateAction::Refuse(format!(
                "find Pod {} update strategy is InPlaceOnly but can not update in-place",
                pods::name(pod)
            )));
        }
    }
    Some(UpdateAction::Recreate)
}

#[cfg(test)]
mod tests;
