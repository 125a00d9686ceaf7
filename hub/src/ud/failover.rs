//! Adaptive failover: replicas of a placement unit (one subset in one cluster) that cannot run —
//! the cluster is NotReady, or the subset is marked unschedulable — move to healthy units, and
//! move back when the unit recovers.
//!
//! The move is make-before-break: targets are scaled up at once, but no unit is scaled below
//! what it runs today until every healthy unit reports its target replicas ready. Replicas that
//! fit nowhere stay where they are, so nothing is deleted when there is no target.

use std::collections::BTreeMap;

/// One subset in one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    /// Subset name.
    pub subset: String,
    /// Cluster name.
    pub cluster: String,
    /// Replicas placement gives the unit when everything is healthy.
    pub base: i32,
    /// Replicas in the unit's Work today (0 without a Work).
    pub current: i32,
    /// Ready pods in the latest report on the unit's current spec (0 while it is stale).
    pub ready: i32,
    /// Ready pods in the latest report, current or not: what an unschedulable unit is pinned to.
    pub running: i32,
    /// Whether the cluster is Ready.
    pub cluster_ready: bool,
    /// Whether the subset is marked unschedulable.
    pub unschedulable: bool,
}

impl Unit {
    fn failed(&self) -> bool {
        !self.cluster_ready || self.unschedulable
    }

    /// What the unit keeps while failed: nothing in a lost cluster, its ready pods when its
    /// subset cannot schedule more.
    fn pinned(&self) -> i32 {
        if !self.cluster_ready {
            0
        } else {
            self.running.clamp(0, self.base.max(0))
        }
    }
}

/// The failover decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Replicas to write per unit (same order as the input).
    pub replicas: Vec<i32>,
    /// Replicas per unit once every move has completed.
    pub targets: Vec<i32>,
    /// Replicas moved away from failed units.
    pub moved: i32,
    /// Replicas of failed units that fit nowhere and stay.
    pub stranded: i32,
    /// A unit waits for its replacement before it shrinks.
    pub waiting: bool,
}

fn spread(amount: i32, receivers: &[usize], targets: &mut [i32]) {
    if receivers.is_empty() || amount <= 0 {
        return;
    }
    let k = receivers.len() as i32;
    let (avg, rem) = (amount / k, amount % k);
    for (i, idx) in receivers.iter().enumerate() {
        targets[*idx] += avg + i32::from((i as i32) < rem);
    }
}

/// Decides the replicas of each unit. `subset_order` is the spec order of subsets and
/// `subset_max` their maxReplicas (`None` = unlimited); units are expected in subset order, then
/// cluster name.
pub fn decide(
    units: &[Unit],
    subset_order: &[String],
    subset_max: &BTreeMap<String, Option<i32>>,
) -> Decision {
    let mut targets: Vec<i32> = units
        .iter()
        .map(|u| if u.failed() { u.pinned() } else { u.base })
        .collect();
    let healthy_of = |subset: &str| -> Vec<usize> {
        units
            .iter()
            .enumerate()
            .filter(|(_, u)| u.subset == subset && !u.failed())
            .map(|(i, _)| i)
            .collect()
    };
    let mut subset_total: BTreeMap<String, i32> = BTreeMap::new();
    for u in units {
        *subset_total.entry(u.subset.clone()).or_default() += u.base;
    }
    let (mut moved, mut stranded) = (0, 0);
    for (i, unit) in units.iter().enumerate() {
        if !unit.failed() {
            continue;
        }
        let mut amount = unit.base - unit.pinned();
        if amount <= 0 {
            continue;
        }
        // Other clusters of the same subset first (the subset's total is unchanged).
        let same = healthy_of(&unit.subset);
        if !unit.unschedulable && !same.is_empty() {
            spread(amount, &same, &mut targets);
            moved += amount;
            continue;
        }
        // Then other subsets in spec order, within their maxReplicas.
        for subset in subset_order.iter().filter(|s| **s != unit.subset) {
            let receivers = healthy_of(subset);
            if receivers.is_empty() {
                continue;
            }
            let total = subset_total.get(subset).copied().unwrap_or(0);
            let room = match subset_max.get(subset).copied().flatten() {
                Some(max) => (max - total).max(0),
                None => i32::MAX,
            };
            let take = amount.min(room);
            if take <= 0 {
                continue;
            }
            spread(take, &receivers, &mut targets);
            *subset_total.entry(subset.clone()).or_default() += take;
            amount -= take;
            moved += take;
            if amount == 0 {
                break;
            }
        }
        targets[i] += amount;
        stranded += amount;
    }
    // Make before break: shrink only once every healthy unit has its target ready.
    let waiting = units
        .iter()
        .zip(&targets)
        .any(|(u, t)| !u.failed() && *t > 0 && u.ready < *t);
    let replicas = units
        .iter()
        .zip(&targets)
        .map(|(u, t)| {
            if *t >= u.current || !waiting {
                *t
            } else {
                u.current
            }
        })
        .collect();
    Decision {
        replicas,
        targets,
        moved,
        stranded,
        waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(subset: &str, cluster: &str, base: i32, current: i32, ready: i32) -> Unit {
        Unit {
            subset: subset.into(),
            cluster: cluster.into(),
            base,
            current,
            ready,
            running: ready,
            cluster_ready: true,
            unschedulable: false,
        }
    }

    fn order() -> Vec<String> {
        vec!["r1".into(), "r2".into(), "r3".into()]
    }

    fn unlimited() -> BTreeMap<String, Option<i32>> {
        order().into_iter().map(|s| (s, None)).collect()
    }

    #[test]
    fn healthy_units_keep_their_base() {
        let units = [
            unit("r1", "c1", 5, 5, 5),
            unit("r2", "c2", 3, 3, 3),
            unit("r3", "c3", 2, 2, 2),
        ];
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.replicas, [5, 3, 2]);
        assert_eq!(d.moved, 0);
    }

    #[test]
    fn lost_cluster_moves_after_replacements_are_ready_and_back() {
        let mut units = [
            unit("r1", "c1", 5, 5, 5),
            unit("r2", "c2", 3, 3, 3),
            unit("r3", "c3", 2, 2, 2),
        ];
        units[0].cluster_ready = false;
        // Step 1: the target scales up, the lost cluster keeps its replicas.
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.targets, [0, 8, 2]);
        assert_eq!(d.replicas, [5, 8, 2]);
        assert!(d.waiting);
        assert_eq!(d.moved, 5);
        // Step 2: replacements ready: the lost cluster's Work goes to 0.
        units[1].current = 8;
        units[1].ready = 8;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.replicas, [0, 8, 2]);
        assert!(!d.waiting);
        // Recovery: c1 scales back up first; r2 shrinks once c1's pods are ready.
        units[0].cluster_ready = true;
        units[0].current = 0;
        units[0].ready = 0;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.replicas, [5, 8, 2]);
        units[0].current = 5;
        units[0].ready = 5;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.replicas, [5, 3, 2]);
    }

    #[test]
    fn same_subset_clusters_take_over_first() {
        let mut units = [
            unit("r1", "c1", 3, 3, 3),
            unit("r1", "c2", 2, 2, 2),
            unit("r2", "c3", 5, 5, 5),
        ];
        units[0].cluster_ready = false;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.targets, [0, 5, 5]);
    }

    #[test]
    fn nothing_is_removed_when_no_target_fits() {
        let mut units = [unit("r1", "c1", 5, 5, 5), unit("r2", "c2", 3, 3, 3)];
        units[0].cluster_ready = false;
        let max = BTreeMap::from([("r1".to_string(), None), ("r2".to_string(), Some(4))]);
        let d = decide(&units, &order(), &max);
        // r2 has room for one more; four replicas fit nowhere and stay in c1.
        assert_eq!(d.targets, [4, 4]);
        assert_eq!(d.stranded, 4);
        units[1].cluster_ready = false;
        let d = decide(&units, &order(), &max);
        assert_eq!(d.replicas, [5, 3], "no healthy target: nothing moves");
        assert_eq!(d.moved, 0);
    }

    #[test]
    fn unschedulable_subset_is_pinned_to_its_ready_pods() {
        let mut units = [unit("r1", "c1", 5, 5, 2), unit("r2", "c2", 5, 5, 5)];
        units[0].unschedulable = true;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.targets, [2, 8]);
        assert_eq!(d.replicas, [5, 8]);
        // Once r1 is scaled to its two running pods its report is stale for a while; the pin
        // holds on to what runs instead of dropping to zero.
        units[0].current = 2;
        units[0].ready = 0;
        units[1].current = 8;
        units[1].ready = 8;
        let d = decide(&units, &order(), &unlimited());
        assert_eq!(d.targets, [2, 8]);
        assert_eq!(d.replicas, [2, 8]);
    }
}
