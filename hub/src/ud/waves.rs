//! Update waves: a new revision reaches one unit (a subset, or a member cluster) at a time.
//!
//! The state lives in `status.waveStatus` of the UnitedDeployment (revision, running unit, when
//! it started, completed units, deadline flag), and the controller persists a wave's start before
//! it writes the new template into that unit's Works. A hub replica that restarts mid-rollout
//! therefore resumes the running wave: it never skips one nor starts one twice.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kruise_api::apps::v1alpha1::uniteddeployment::{UpdateWaves, WaveStatus, WAVE_UNIT_CLUSTER};

/// Default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i32 = 600;
/// Condition type reporting wave progress.
pub const CONDITION_WAVE_PROGRESSING: &str = "WaveProgressing";
/// Reason of the condition when a wave missed its deadline.
pub const REASON_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";

/// Whether waves are counted per member cluster (else per subset).
pub fn per_cluster(waves: &UpdateWaves) -> bool {
    waves.unit.as_deref() == Some(WAVE_UNIT_CLUSTER)
}

/// The order of units: the names in `order` that exist, then the remaining `default_order`.
pub fn unit_order(order: Option<&[String]>, default_order: &[String]) -> Vec<String> {
    let known: BTreeSet<&String> = default_order.iter().collect();
    let mut out: Vec<String> = Vec::new();
    for name in order.unwrap_or_default() {
        if known.contains(name) && !out.contains(name) {
            out.push(name.clone());
        }
    }
    for name in default_order {
        if !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

/// Progress of one unit towards the update revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitProgress {
    /// Subset or cluster name.
    pub name: String,
    /// Every Work of the unit carries the update revision, reports on it, and its pods are
    /// updated and ready (a unit without Works is trivially rolled).
    pub rolled: bool,
}

/// The outcome of one wave step.
#[derive(Debug, Clone, PartialEq)]
pub struct WaveDecision {
    /// The wave status to store.
    pub status: WaveStatus,
    /// Units whose Works carry the update revision's template.
    pub updated_units: BTreeSet<String>,
    /// Every unit is rolled.
    pub complete: bool,
    /// `(status, reason, message)` of the `WaveProgressing` condition.
    pub condition: (&'static str, &'static str, String),
}

fn time(t: DateTime<Utc>) -> Time {
    super::to_time(t)
}

/// One step of the wave state machine. `units` are in wave order.
pub fn step(
    waves: &UpdateWaves,
    update_revision: &str,
    prior: Option<&WaveStatus>,
    units: &[UnitProgress],
    now: DateTime<Utc>,
) -> WaveDecision {
    let mut status = match prior {
        Some(p) if p.revision.as_deref() == Some(update_revision) => p.clone(),
        _ => WaveStatus {
            revision: Some(update_revision.to_string()),
            ..Default::default()
        },
    };
    let names: BTreeSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
    let mut completed: Vec<String> = status
        .completed
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| names.contains(c.as_str()))
        .collect();
    let rolled = |name: &str| units.iter().any(|u| u.name == name && u.rolled);
    let deadline = i64::from(
        waves
            .progress_deadline_seconds
            .unwrap_or(DEFAULT_PROGRESS_DEADLINE_SECONDS)
            .max(0),
    );
    let mut halted = status.deadline_exceeded == Some(true);
    if let Some(current) = status.current.clone() {
        if !names.contains(current.as_str()) {
            status.current = None;
            status.started_at = None;
        } else if rolled(&current) {
            if !completed.contains(&current) {
                completed.push(current);
            }
            status.current = None;
            status.started_at = None;
        } else if !halted {
            let started = status
                .started_at
                .as_ref()
                .map(super::from_time)
                .unwrap_or(now);
            if now.signed_duration_since(started).num_seconds() > deadline {
                halted = true;
                status.deadline_exceeded = Some(true);
            }
        }
    }
    if status.current.is_none() && !halted {
        for unit in units {
            if completed.contains(&unit.name) {
                continue;
            }
            if unit.rolled {
                completed.push(unit.name.clone());
                continue;
            }
            if waves.paused == Some(true) {
                break;
            }
            status.current = Some(unit.name.clone());
            status.started_at = Some(time(now));
            break;
        }
    }
    let complete = units.iter().all(|u| completed.contains(&u.name));
    let mut updated_units: BTreeSet<String> = completed.iter().cloned().collect();
    if let Some(c) = &status.current {
        updated_units.insert(c.clone());
    }
    let condition = if halted {
        (
            "False",
            REASON_DEADLINE_EXCEEDED,
            format!(
                "wave {} did not become updated and ready within {deadline}s; the rollout is halted until the template changes",
                status.current.as_deref().unwrap_or("?")
            ),
        )
    } else if complete {
        (
            "True",
            "WavesComplete",
            format!("revision {update_revision} reached every unit"),
        )
    } else if let Some(c) = &status.current {
        ("True", "WaveRunning", format!("updating {c}"))
    } else {
        ("True", "WavesPaused", "waves are paused".to_string())
    };
    status.completed = Some(completed);
    if !halted {
        status.deadline_exceeded = None;
    }
    WaveDecision {
        status,
        updated_units,
        complete,
        condition,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(rolled: &[(&str, bool)]) -> Vec<UnitProgress> {
        rolled
            .iter()
            .map(|(n, r)| UnitProgress {
                name: n.to_string(),
                rolled: *r,
            })
            .collect()
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap_or_default()
    }

    fn waves(deadline: i32) -> UpdateWaves {
        UpdateWaves {
            progress_deadline_seconds: Some(deadline),
            ..Default::default()
        }
    }

    #[test]
    fn order_puts_listed_units_first() {
        let default = ["a".to_string(), "b".to_string(), "c".to_string()];
        let order = ["c".to_string(), "x".to_string(), "a".to_string()];
        assert_eq!(unit_order(Some(&order), &default), ["c", "a", "b"]);
        assert_eq!(unit_order(None, &default), ["a", "b", "c"]);
    }

    #[test]
    fn one_unit_at_a_time_in_order() {
        let w = waves(600);
        let d = step(
            &w,
            "rev2",
            None,
            &units(&[("r3", false), ("r2", false)]),
            at(0),
        );
        assert_eq!(d.status.current.as_deref(), Some("r3"));
        assert_eq!(d.updated_units, BTreeSet::from(["r3".to_string()]));
        assert!(!d.complete);
        // Not ready yet: stays on r3.
        let d2 = step(
            &w,
            "rev2",
            Some(&d.status),
            &units(&[("r3", false), ("r2", false)]),
            at(30),
        );
        assert_eq!(d2.status, d.status);
        // r3 rolled: r2 starts, r3 stays updated.
        let d3 = step(
            &w,
            "rev2",
            Some(&d2.status),
            &units(&[("r3", true), ("r2", false)]),
            at(40),
        );
        assert_eq!(d3.status.current.as_deref(), Some("r2"));
        assert_eq!(d3.status.completed, Some(vec!["r3".to_string()]));
        assert_eq!(d3.updated_units.len(), 2);
        let d4 = step(
            &w,
            "rev2",
            Some(&d3.status),
            &units(&[("r3", true), ("r2", true)]),
            at(50),
        );
        assert!(d4.complete);
        assert_eq!(d4.status.current, None);
        assert_eq!(d4.condition.1, "WavesComplete");
    }

    #[test]
    fn deadline_halts_and_a_new_revision_restarts() {
        let w = waves(60);
        let d = step(
            &w,
            "rev2",
            None,
            &units(&[("a", false), ("b", false)]),
            at(0),
        );
        let late = step(
            &w,
            "rev2",
            Some(&d.status),
            &units(&[("a", false), ("b", false)]),
            at(61),
        );
        assert_eq!(late.status.deadline_exceeded, Some(true));
        assert_eq!(late.condition.0, "False");
        assert_eq!(late.condition.1, REASON_DEADLINE_EXCEEDED);
        // Even once a is rolled, b does not start while halted.
        let after = step(
            &w,
            "rev2",
            Some(&late.status),
            &units(&[("a", true), ("b", false)]),
            at(90),
        );
        assert_eq!(after.status.current, None);
        assert!(!after.updated_units.contains("b"));
        assert_eq!(after.condition.0, "False");
        // A new revision starts over from the first unit.
        let next = step(
            &w,
            "rev3",
            Some(&after.status),
            &units(&[("a", false), ("b", false)]),
            at(100),
        );
        assert_eq!(next.status.current.as_deref(), Some("a"));
        assert_eq!(next.status.deadline_exceeded, None);
    }

    #[test]
    fn already_rolled_units_are_skipped_and_paused_starts_nothing() {
        let mut w = waves(600);
        let d = step(&w, "rev1", None, &units(&[("a", true), ("b", true)]), at(0));
        assert!(d.complete);
        assert_eq!(d.status.current, None);
        w.paused = Some(true);
        let p = step(
            &w,
            "rev2",
            None,
            &units(&[("a", false), ("b", false)]),
            at(0),
        );
        assert_eq!(p.status.current, None);
        assert!(p.updated_units.is_empty());
        assert_eq!(p.condition.1, "WavesPaused");
    }

    #[test]
    fn restart_resumes_the_stored_wave() {
        let w = waves(600);
        let stored = WaveStatus {
            revision: Some("rev2".into()),
            current: Some("b".into()),
            started_at: Some(super::super::to_time(at(0))),
            completed: Some(vec!["a".into()]),
            deadline_exceeded: None,
        };
        let d = step(
            &w,
            "rev2",
            Some(&stored),
            &units(&[("a", true), ("b", false), ("c", false)]),
            at(10),
        );
        assert_eq!(d.status, stored);
        assert_eq!(
            d.updated_units,
            BTreeSet::from(["a".to_string(), "b".to_string()])
        );
    }
}
