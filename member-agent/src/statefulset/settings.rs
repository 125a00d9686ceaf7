//! The numbers an Advanced StatefulSet spec resolves to (spec section 3.2), and the ordinals it
//! keeps: `replicas` ordinals from `ordinals.start`, skipping `reserveOrdinals`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::common::{Lifecycle, UpdatePriorityStrategy};
use kruise_api::apps::v1beta1::statefulset::{
    StatefulSet, IN_PLACE_IF_POSSIBLE, IN_PLACE_ONLY, ON_DELETE, PARALLEL,
};
use kruise_api::intstr;

/// How a pod moves to a new revision (`rollingUpdate.podUpdatePolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PodUpdatePolicy {
    /// Delete and create again.
    #[default]
    ReCreate,
    /// In place when only images/metadata changed, else recreate.
    InPlaceIfPossible,
    /// Only in place.
    InPlaceOnly,
}

/// `volumeClaimUpdateStrategy.type` that resizes claims with their pod's update.
pub const ON_POD_ROLLING_UPDATE: &str = "OnPodRollingUpdate";

/// A claim's (or claim template's) `spec.resources.requests.storage`.
pub fn claim_request(claim: &PersistentVolumeClaim) -> Option<String> {
    claim
        .spec
        .as_ref()?
        .resources
        .as_ref()?
        .requests
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// Bytes of a storage quantity (`10Gi`, `500M`, `1e3` is not accepted); `None` when malformed.
pub fn storage_bytes(q: &str) -> Option<i64> {
    crate::hublink::status::parse_quantity(q, 1.0)
}

/// `Retain` or `Delete` in `persistentVolumeClaimRetentionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Retention {
    /// Keep the claims.
    #[default]
    Retain,
    /// Delete the claims.
    Delete,
}

impl Retention {
    fn parse(v: Option<&str>) -> Self {
        match v {
            Some("Delete") => Retention::Delete,
            _ => Retention::Retain,
        }
    }
}

/// An Advanced StatefulSet spec with every optional and IntOrString resolved.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    /// Set name (pod names are `<name>-<ordinal>`).
    pub name: String,
    /// Desired replicas.
    pub replicas: i32,
    /// First ordinal (`ordinals.start`, with gate `StatefulSetStartOrdinal`).
    pub start: i32,
    /// Reserved ordinals.
    pub reserved: BTreeSet<i32>,
    /// `podManagementPolicy: Parallel`.
    pub parallel: bool,
    /// `updateStrategy.type: OnDelete`.
    pub on_delete: bool,
    /// Pod update policy.
    pub pod_update_policy: PodUpdatePolicy,
    /// Number of pods kept on the current revision (1.8+ semantics).
    pub partition: i32,
    /// Unavailable pods allowed during an update (at least 1).
    pub max_unavailable: i32,
    /// Unavailable pods allowed while creating (`i32::MAX` = unlimited).
    pub scale_max_unavailable: i32,
    /// Updates paused.
    pub paused: bool,
    /// Priority order of updates (`unorderedUpdate.priorityStrategy`).
    pub priority: Option<UpdatePriorityStrategy>,
    /// In-place grace period in seconds.
    pub grace_seconds: i32,
    /// `rollingUpdate.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// Lifecycle hooks.
    pub lifecycle: Option<Lifecycle>,
    /// Claims on scale-down.
    pub when_scaled: Retention,
    /// Claims on deletion of the set.
    pub when_deleted: Retention,
    /// Names of the volumeClaimTemplates.
    pub claim_templates: Vec<String>,
    /// Storage requested by each volumeClaimTemplate (`spec.resources.requests.storage`), by
    /// template name; templates without a request are absent.
    pub claim_storage: BTreeMap<String, String>,
    /// Claims follow storage increases of their template when their pod is updated
    /// (`volumeClaimUpdateStrategy.type: OnPodRollingUpdate` with gate
    /// `StatefulSetAutoResizePVCGate`).
    pub resize_claims: bool,
}

/// The ordinals named by `reserveOrdinals` (ints and `"a-b"` ranges; malformed entries skipped).
pub fn reserved_ordinals(entries: &[IntOrString]) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for e in entries {
        match e {
            IntOrString::Int(i) if *i >= 0 => {
                out.insert(*i);
            }
            IntOrString::Int(_) => {}
            IntOrString::String(s) => {
                let range = s.split_once('-').and_then(|(a, b)| {
                    Some((a.trim().parse::<i32>().ok()?, b.trim().parse().ok()?))
                });
                match range {
                    // A range wider than this would not fit any realistic set; cap the work.
                    Some((a, b)) if a >= 0 && a <= b && b - a <= 100_000 => out.extend(a..=b),
                    Some(_) => {}
                    None => {
                        if let Ok(i) = s.trim().parse::<i32>() {
                            if i >= 0 {
                                out.insert(i);
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

impl Settings {
    /// Resolves a defaulted set. `start_ordinal` is gate `StatefulSetStartOrdinal`,
    /// `auto_resize_pvc` gate `StatefulSetAutoResizePVCGate` (without it
    /// `volumeClaimUpdateStrategy` is ignored).
    pub fn from_statefulset(set: &StatefulSet, start_ordinal: bool, auto_resize_pvc: bool) -> Self {
        let spec = &set.spec;
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let us = spec.update_strategy.clone().unwrap_or_default();
        let ru = us.rolling_update.clone().unwrap_or_default();
        let max_unavailable = ru
            .max_unavailable
            .as_ref()
            .and_then(|v| intstr::scaled_value(v, replicas, false).ok())
            .unwrap_or(1)
            .max(1);
        let scale_max_unavailable = spec
            .scale_strategy
            .as_ref()
            .and_then(|s| s.max_unavailable.as_ref())
            .and_then(|v| intstr::scaled_value(v, replicas, false).ok())
            .map_or(i32::MAX, |v| v.max(1));
        let pod_update_policy = match ru.pod_update_policy.as_deref() {
            Some(IN_PLACE_IF_POSSIBLE) => PodUpdatePolicy::InPlaceIfPossible,
            Some(IN_PLACE_ONLY) => PodUpdatePolicy::InPlaceOnly,
            _ => PodUpdatePolicy::ReCreate,
        };
        let retention = spec
            .persistent_volume_claim_retention_policy
            .clone()
            .unwrap_or_default();
        Settings {
            name: set.metadata.name.clone().unwrap_or_default(),
            replicas,
            start: if start_ordinal {
                spec.ordinals
                    .as_ref()
                    .and_then(|o| o.start)
                    .unwrap_or(0)
                    .max(0)
            } else {
                0
            },
            reserved: reserved_ordinals(spec.reserve_ordinals.as_deref().unwrap_or(&[])),
            parallel: spec.pod_management_policy.as_deref() == Some(PARALLEL),
            on_delete: us.type_.as_deref() == Some(ON_DELETE),
            pod_update_policy,
            partition: ru.partition.unwrap_or(0).clamp(0, replicas),
            max_unavailable,
            scale_max_unavailable,
            paused: ru.paused.unwrap_or(false),
            priority: ru.unordered_update.and_then(|u| u.priority_strategy),
            grace_seconds: ru
                .in_place_update_strategy
                .as_ref()
                .and_then(|s| s.grace_period_seconds)
                .unwrap_or(0),
            min_ready_seconds: ru.min_ready_seconds.unwrap_or(0).max(0),
            lifecycle: spec.lifecycle.clone(),
            when_scaled: Retention::parse(retention.when_scaled.as_deref()),
            when_deleted: Retention::parse(retention.when_deleted.as_deref()),
            claim_templates: spec
                .volume_claim_templates
                .iter()
                .flatten()
                .filter_map(|t| t.metadata.name.clone())
                .collect(),
            claim_storage: spec
                .volume_claim_templates
                .iter()
                .flatten()
                .filter_map(|t| Some((t.metadata.name.clone()?, claim_request(t)?)))
                .collect(),
            resize_claims: auto_resize_pvc
                && spec
                    .volume_claim_update_strategy
                    .as_ref()
                    .and_then(|v| v.type_.as_deref())
                    == Some(ON_POD_ROLLING_UPDATE),
        }
    }

    /// The ordinals the set keeps, ascending: the first `replicas` unreserved ordinals from
    /// `start`.
    pub fn valid_ordinals(&self) -> Vec<i32> {
        let want = usize::try_from(self.replicas).unwrap_or(0);
        let mut out = Vec::with_capacity(want);
        let mut o = self.start;
        while out.len() < want && o < i32::MAX {
            if !self.reserved.contains(&o) {
                out.push(o);
            }
            o += 1;
        }
        out
    }

    /// Pod name of an ordinal.
    pub fn pod_name(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    /// The ordinal of a pod of this set, from its name.
    pub fn ordinal_of(&self, pod_name: &str) -> Option<i32> {
        let rest = pod_name.strip_prefix(&self.name)?.strip_prefix('-')?;
        if rest.is_empty() || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if rest.len() > 1 && rest.starts_with('0') {
            return None;
        }
        rest.parse().ok()
    }

    /// Claim name of a template for an ordinal: `<template>-<set>-<ordinal>`.
    pub fn claim_name(&self, template: &str, ordinal: i32) -> String {
        format!("{template}-{}-{ordinal}", self.name)
    }

    /// The ordinal of a claim of this set, from its name.
    pub fn claim_ordinal(&self, claim: &str) -> Option<i32> {
        self.claim_templates.iter().find_map(|t| {
            let rest = claim.strip_prefix(t.as_str())?.strip_prefix('-')?;
            self.ordinal_of(rest)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(spec: serde_json::Value) -> StatefulSet {
        let mut v = json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {}}
        });
        for (k, val) in spec.as_object().unwrap() {
            v["spec"][k] = val.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn reserved_ordinals_accept_ints_and_ranges() {
        let r = reserved_ordinals(&[
            IntOrString::Int(1),
            IntOrString::String("4-6".into()),
            IntOrString::String("9".into()),
            IntOrString::String("7-2".into()),
            IntOrString::String("x-y".into()),
            IntOrString::Int(-3),
        ]);
        assert_eq!(r.into_iter().collect::<Vec<_>>(), vec![1, 4, 5, 6, 9]);
    }

    #[test]
    fn valid_ordinals_skip_reserved_and_start_at_start() {
        let s = Settings::from_statefulset(
            &set(json!({"replicas": 4, "reserveOrdinals": [1, "3-4"], "ordinals": {"start": 0}})),
            true,
            false,
        );
        assert_eq!(s.valid_ordinals(), vec![0, 2, 5, 6]);
        let s = Settings::from_statefulset(
            &set(json!({"replicas": 3, "ordinals": {"start": 5}, "reserveOrdinals": [6]})),
            true,
            false,
        );
        assert_eq!(s.valid_ordinals(), vec![5, 7, 8]);
        let gate_off = Settings::from_statefulset(
            &set(json!({"replicas": 2, "ordinals": {"start": 5}})),
            false,
            false,
        );
        assert_eq!(gate_off.valid_ordinals(), vec![0, 1]);
    }

    #[test]
    fn names_and_ordinals_round_trip() {
        let s = Settings::from_statefulset(
            &set(json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}}]})),
            false,
            false,
        );
        assert_eq!(s.pod_name(3), "web-3");
        assert_eq!(s.ordinal_of("web-3"), Some(3));
        assert_eq!(s.ordinal_of("web-03"), None);
        assert_eq!(s.ordinal_of("web-x"), None);
        assert_eq!(s.ordinal_of("webby-1"), None);
        assert_eq!(s.claim_name("data", 2), "data-web-2");
        assert_eq!(s.claim_ordinal("data-web-2"), Some(2));
        assert_eq!(s.claim_ordinal("logs-web-2"), None);
    }

    #[test]
    fn max_unavailable_rounds_down_to_at_least_one() {
        let s = Settings::from_statefulset(
            &set(json!({"replicas": 3, "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "RollingUpdate",
                  "rollingUpdate": {"maxUnavailable": "20%", "partition": 9,
                                    "podUpdatePolicy": "InPlaceIfPossible"}}})),
            false,
            false,
        );
        assert_eq!(s.max_unavailable, 1);
        assert_eq!(s.partition, 3);
        assert!(s.parallel);
        assert_eq!(s.pod_update_policy, PodUpdatePolicy::InPlaceIfPossible);
        let s = Settings::from_statefulset(
            &set(
                json!({"replicas": 10, "scaleStrategy": {"maxUnavailable": "50%"},
                "updateStrategy": {"rollingUpdate": {"maxUnavailable": "20%"}},
                "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete"}}),
            ),
            false,
            false,
        );
        assert_eq!((s.max_unavailable, s.scale_max_unavailable), (2, 5));
        assert_eq!(
            (s.when_scaled, s.when_deleted),
            (Retention::Delete, Retention::Retain)
        );
    }

    #[test]
    fn claim_resizing_needs_the_strategy_and_the_gate() {
        let spec = json!({"volumeClaimTemplates": [
                {"metadata": {"name": "data"},
                 "spec": {"resources": {"requests": {"storage": "2Gi"}}}},
                {"metadata": {"name": "logs"}}],
            "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}});
        let on = Settings::from_statefulset(&set(spec.clone()), false, true);
        assert!(on.resize_claims);
        assert_eq!(
            on.claim_storage,
            BTreeMap::from([("data".to_string(), "2Gi".to_string())])
        );
        assert!(!Settings::from_statefulset(&set(spec), false, false).resize_claims);
        let on_delete = json!({"volumeClaimUpdateStrategy": {"type": "OnDelete"}});
        assert!(!Settings::from_statefulset(&set(on_delete), false, true).resize_claims);
        assert_eq!(storage_bytes("2Gi"), Some(2 << 30));
        assert_eq!(storage_bytes("500M"), Some(500_000_000));
        assert_eq!(storage_bytes("2Qi"), None);
    }
}
