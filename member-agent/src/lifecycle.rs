//! Pod lifecycle states and hooks (`lifecycle.apps.kruise.io/state`, spec section 1.2).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::common::LifecycleHook;

/// Label holding the lifecycle state.
pub const STATE_LABEL: &str = "lifecycle.apps.kruise.io/state";
/// Annotation holding the RFC3339 time of the last state change.
pub const TIMESTAMP_ANNOTATION: &str = "lifecycle.apps.kruise.io/timestamp";

/// The lifecycle state of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    /// No state label.
    None,
    /// Created, waiting for the preNormal hook or scheduling.
    PreparingNormal,
    /// Serving.
    Normal,
    /// Held by the inPlaceUpdate hook before an in-place update.
    PreparingUpdate,
    /// In-place update in progress.
    Updating,
    /// In-place update done, waiting for the hook to be re-added.
    Updated,
    /// Held by the preDelete hook before deletion.
    PreparingDelete,
    /// A value this code does not know; treated as not Normal.
    Other,
}

impl LifecycleState {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LifecycleState::None | LifecycleState::Other => "",
            LifecycleState::PreparingNormal => "PreparingNormal",
            LifecycleState::Normal => "Normal",
            LifecycleState::PreparingUpdate => "PreparingUpdate",
            LifecycleState::Updating => "Updating",
            LifecycleState::Updated => "Updated",
            LifecycleState::PreparingDelete => "PreparingDelete",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "" => LifecycleState::None,
            "PreparingNormal" => LifecycleState::PreparingNormal,
            "Normal" => LifecycleState::Normal,
            "PreparingUpdate" => LifecycleState::PreparingUpdate,
            "Updating" => LifecycleState::Updating,
            "Updated" => LifecycleState::Updated,
            "PreparingDelete" => LifecycleState::PreparingDelete,
            _ => LifecycleState::Other,
        }
    }
}

/// The pod's lifecycle state.
pub fn state(pod: &Pod) -> LifecycleState {
    LifecycleState::parse(crate::pods::label(pod, STATE_LABEL).unwrap_or(""))
}

fn hook_items(hook: &LifecycleHook, pod: &Pod) -> (usize, usize) {
    let labels = pod.metadata.labels.as_ref();
    let finalizers = pod.metadata.finalizers.as_deref().unwrap_or(&[]);
    let mut total = 0;
    let mut present = 0;
    for (k, v) in hook.labels_handler.iter().flatten() {
        total += 1;
        if labels.and_then(|l| l.get(k)) == Some(v) {
            present += 1;
        }
    }
    for f in hook.finalizers_handler.iter().flatten() {
        total += 1;
        if finalizers.contains(f) {
            present += 1;
        }
    }
    (present, total)
}

/// The pod carries any of the hook's labels or finalizers.
pub fn is_hooked(hook: Option<&LifecycleHook>, pod: &Pod) -> bool {
    hook.is_some_and(|h| hook_items(h, pod).0 > 0)
}

/// The pod carries all of the hook's labels and finalizers (and the hook has some).
pub fn is_all_hooked(hook: Option<&LifecycleHook>, pod: &Pod) -> bool {
    hook.is_some_and(|h| {
        let (present, total) = hook_items(h, pod);
        total > 0 && present == total
    })
}

/// Sets the state label and timestamp annotation on a pod object (in memory).
pub fn set_state(pod: &mut Pod, state: LifecycleState, now: Timestamp) {
    pod.metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(STATE_LABEL.to_string(), state.as_str().to_string());
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(TIMESTAMP_ANNOTATION.to_string(), now.to_string());
}

/// Re-adds the hook's labels and finalizers to a pod object (in memory).
pub fn add_hook(pod: &mut Pod, hook: Option<&LifecycleHook>) {
    let Some(hook) = hook else { return };
    for (k, v) in hook.labels_handler.iter().flatten() {
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(k.clone(), v.clone());
    }
    for f in hook.finalizers_handler.iter().flatten() {
        let fins = pod.metadata.finalizers.get_or_insert_with(Vec::new);
        if !fins.contains(f) {
            fins.push(f.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::{pod, with_label};
    use std::collections::BTreeMap;

    fn hook() -> LifecycleHook {
        LifecycleHook {
            labels_handler: Some(BTreeMap::from([("hold".to_string(), "true".to_string())])),
            finalizers_handler: Some(vec!["example.com/wait".into()]),
            mark_pod_not_ready: None,
        }
    }

    #[test]
    fn hooked_means_any_all_hooked_means_every() {
        let h = hook();
        let p = pod("a", "r", true);
        assert!(!is_hooked(Some(&h), &p));
        let p = with_label(p, "hold", "true");
        assert!(is_hooked(Some(&h), &p));
        assert!(!is_all_hooked(Some(&h), &p));
        let mut q = p.clone();
        add_hook(&mut q, Some(&h));
        assert!(is_all_hooked(Some(&h), &q));
        assert!(!is_hooked(None, &q));
        assert!(!is_hooked(
            Some(&h),
            &with_label(pod("b", "r", true), "hold", "no")
        ));
    }

    #[test]
    fn state_round_trips_through_the_label() {
        let mut p = pod("a", "r", true);
        assert_eq!(state(&p), LifecycleState::None);
        set_state(
            &mut p,
            LifecycleState::PreparingDelete,
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(state(&p), LifecycleState::PreparingDelete);
        assert_eq!(
            state(&with_label(p, STATE_LABEL, "Weird")),
            LifecycleState::Other
        );
    }
}
