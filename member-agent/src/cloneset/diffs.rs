//! The scale and update numbers of a CloneSet (upstream's `calculateDiffsWithExpectation`,
//! spec section 2.5). Pure.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::settings::Settings;
use crate::lifecycle::{self, LifecycleState};
use crate::{pods, revision};

/// How many pods to create, delete and update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Diffs {
    /// Pods to create.
    pub scale_up_num: i32,
    /// Of those, how many should be on the current (old) revision.
    pub scale_up_num_old_revision: i32,
    /// Pods to delete beyond those already specified for deletion.
    pub scale_down_num: i32,
    /// Of those, how many should come from the old revision.
    pub scale_down_num_old_revision: i32,
    /// Creations allowed by `scaleStrategy.maxUnavailable`.
    pub scale_up_limit: i32,
    /// Ready pods that may be deleted.
    pub delete_ready_limit: i32,
    /// Pods temporarily above replicas.
    pub use_surge: i32,
    /// Of those, on the old revision.
    pub use_surge_old_revision: i32,
    /// Pods to move to the update revision (negative: back to the current revision).
    pub update_num: i32,
    /// Pods that may be unavailable while updating.
    pub update_max_unavailable: i32,
}

/// Whether a pod is marked for deletion by label or by `podsToDelete`.
pub fn is_specified_delete(settings: &Settings, pod: &Pod) -> bool {
    pods::is_specified_delete(pod) || settings.pods_to_delete.contains(pods::name(pod))
}

/// Computes the diffs for `pods` (the active pods the CloneSet owns).
pub fn calculate(
    s: &Settings,
    all: &[&Pod],
    current_revision: &str,
    update_revision: &str,
    now: Timestamp,
    allow_rollback: bool,
) -> Diffs {
    let mut res = Diffs::default();
    let replicas = s.replicas;
    let partition = s.partition;
    let (mut new_count, mut new_active, mut old_count, mut old_active) = (0, 0, 0, 0);
    let (mut unavail_new, mut unavail_old) = (0, 0);
    let (mut to_delete_new, mut to_delete_old, mut pre_del_new, mut pre_del_old) = (0, 0, 0, 0);
    for p in all {
        let is_new = revision::pod_on_revision(p, update_revision);
        let pre_deleting = lifecycle::state(p) == LifecycleState::PreparingDelete;
        let specified = is_specified_delete(s, p);
        let unavailable = !pods::is_available_normal(p, s.min_ready_seconds, now);
        let (count, active, pre_del, to_del, unavail) = if is_new {
            (
                &mut new_count,
                &mut new_active,
                &mut pre_del_new,
                &mut to_delete_new,
                &mut unavail_new,
            )
        } else {
            (
                &mut old_count,
                &mut old_active,
                &mut pre_del_old,
                &mut to_delete_old,
                &mut unavail_old,
            )
        };
        *count += 1;
        if pre_deleting {
            *pre_del += 1;
        } else {
            *active += 1;
            if specified {
                *to_del += 1;
            } else if unavailable {
                *unavail += 1;
            }
        }
    }
    let _ = new_count;

    let mut update_old_diff = old_active - partition;
    let mut update_new_diff = new_active - (replicas - partition);
    let total_unavailable = pre_del_new + pre_del_old + unavail_new + unavail_old;
    if update_revision == current_revision || !allow_rollback {
        update_old_diff = update_old_diff.max(0);
        update_new_diff = update_new_diff.min(0);
    }

    if s.max_surge > 0 {
        let to_delete = to_delete_new + to_delete_old;
        let (mut scale_surge, mut scale_old_surge) = (0, 0);
        if to_delete > 0 {
            scale_surge = ((total_unavailable + to_delete) - s.max_unavailable)
                .max(0)
                .min(to_delete);
            if scale_surge > to_delete_new {
                scale_old_surge = scale_surge - to_delete_new;
            }
        }
        let (mut update_surge, mut update_old_surge) = (0, 0);
        if (update_old_diff > 0 && update_new_diff < 0)
            || (update_old_diff < 0 && update_new_diff > 0)
        {
            if update_old_diff.abs() <= update_new_diff.abs() {
                update_surge = update_old_diff.abs();
                if update_old_diff < 0 {
                    update_old_surge = update_surge;
                }
            } else {
                update_surge = update_new_diff.abs();
                if update_new_diff > 0 {
                    update_old_surge = update_surge;
                }
            }
        }
        if scale_surge >= update_surge {
            res.use_surge = s.max_surge.min(scale_surge);
            res.use_surge_old_revision = res.use_surge.min(scale_old_surge);
        } else {
            res.use_surge = s.max_surge.min(update_surge);
            res.use_surge_old_revision = res.use_surge.min(update_old_surge);
        }
    }

    let total = all.len() as i32;
    let (mut current_total, mut current_old) = (total, old_count);
    if s.exclude_preparing_delete {
        current_total -= pre_del_old + pre_del_new;
        current_old -= pre_del_old;
    }
    let expected_total = replicas + res.use_surge;
    let expected_old = partition + res.use_surge_old_revision;

    let up = expected_total - current_total;
    if up > 0 {
        res.scale_up_num = up;
        res.scale_up_num_old_revision = (expected_old - current_old).max(0);
        res.scale_up_limit = up.min(
            s.scale_max_unavailable
                .saturating_sub(total_unavailable)
                .max(0),
        );
    }
    let down = current_total - to_delete_old - to_delete_new - expected_total;
    if down > 0 {
        res.scale_down_num = down;
        res.scale_down_num_old_revision = (current_old - to_delete_old - expected_old).max(0);
    }
    if to_delete_new > 0 || to_delete_old > 0 || res.scale_down_num > 0 {
        res.delete_ready_limit =
            (s.max_unavailable + (total - replicas) - total_unavailable).max(0);
    }
    res.update_num = if update_old_diff.abs() <= update_new_diff.abs() {
        update_old_diff
    } else {
        -update_new_diff
    };
    if res.update_num != 0 {
        res.update_max_unavailable = s.max_unavailable + total - replicas;
    }
    res
}
