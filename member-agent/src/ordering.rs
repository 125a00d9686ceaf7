//! Pod orderings: the default update order, the deletion ranking, and the priority and scatter
//! strategies (spec sections 1.4 and 2.5).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};

use crate::pods;

fn phase_rank(pod: &Pod) -> u8 {
    match pods::phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 3,
    }
}

fn created(pod: &Pod) -> Option<Timestamp> {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Upstream's active-pods order: the pods that should be touched first come first.
/// Unassigned < assigned, Pending < Unknown < Running, not-ready < ready, ready more recently
/// first, more restarts first, newer first.
pub fn active_first(a: &Pod, b: &Pod) -> Ordering {
    pods::is_assigned(a)
        .cmp(&pods::is_assigned(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        .then_with(|| {
            // Both ready: the one ready for a shorter time (later transition) goes first.
            match (pods::ready_since(a), pods::ready_since(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            }
        })
        .then_with(|| pods::restart_count(b).cmp(&pods::restart_count(a)))
        .then_with(|| created(b).cmp(&created(a)))
}

fn deletion_cost(pod: &Pod) -> i64 {
    pods::annotation(pod, pods::POD_DELETION_COST)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Sorts pods into deletion order (first deleted first): the active-pods order with
/// `pod-deletion-cost` (lower first) and same-node spread (pods on crowded nodes first) inserted
/// after readiness.
pub fn sort_for_deletion(pods_in: &mut [&Pod]) {
    let mut per_node: BTreeMap<String, usize> = BTreeMap::new();
    for p in pods_in.iter() {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.clone()) {
            *per_node.entry(n).or_default() += 1;
        }
    }
    let spread = |p: &Pod| -> usize {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .and_then(|n| per_node.get(n).copied())
            .unwrap_or(0)
    };
    pods_in.sort_by(|a, b| {
        pods::is_assigned(a)
            .cmp(&pods::is_assigned(b))
            .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
            .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
            .then_with(|| deletion_cost(a).cmp(&deletion_cost(b)))
            .then_with(|| spread(b).cmp(&spread(a)))
            .then_with(|| match (pods::ready_since(a), pods::ready_since(b)) {
                (Some(x), Some(y)) => y.cmp(&x),
                _ => Ordering::Equal,
            })
            .then_with(|| pods::restart_count(b).cmp(&pods::restart_count(a)))
            .then_with(|| created(b).cmp(&created(a)))
    });
}

/// The last integer in a label value (`"sts-10"` → 10).
fn last_int(value: &str) -> Option<i64> {
    let end = value.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = value[..end]
        .rfind(|c: char| !c.is_ascii_digit())
        .map_or(0, |i| i + 1);
    value[start..end].parse().ok()
}

fn priority_key(strategy: &UpdatePriorityStrategy, pod: &Pod) -> (i64, i64) {
    let labels = pod.metadata.labels.as_ref();
    if let Some(terms) = strategy.weight_priority.as_ref().filter(|t| !t.is_empty()) {
        let w: i64 = terms
            .iter()
            .filter(|t| crate::selector::matches(&t.match_selector, labels))
            .map(|t| i64::from(t.weight))
            .sum();
        return (w, 0);
    }
    if let Some(terms) = strategy.order_priority.as_ref() {
        let n = terms.len() as i64;
        for (i, t) in terms.iter().enumerate() {
            if let Some(v) = labels.and_then(|l| l.get(&t.ordered_key)) {
                return (n - i as i64, last_int(v).unwrap_or(0));
            }
        }
    }
    (0, 0)
}

/// Stable-sorts pods by priority: higher summed weight first, or, for ordered keys, pods with
/// an earlier key first and a larger number in its value first.
pub fn sort_by_priority(pods_in: &mut [&Pod], strategy: &UpdatePriorityStrategy) {
    pods_in.sort_by(|a, b| priority_key(strategy, b).cmp(&priority_key(strategy, a)));
}

/// Spreads the pods carrying each `key: value` evenly over the sequence (3 of 10 go 1st, 6th,
/// 10th), keeping the relative order of everything else.
pub fn scatter<'a>(pods_in: Vec<&'a Pod>, terms: &[UpdateScatterTerm]) -> Vec<&'a Pod> {
    let mut current = pods_in;
    for term in terms {
        let (hit, rest): (Vec<&Pod>, Vec<&Pod>) = current
            .iter()
            .partition(|p| pods::label(p, &term.key) == Some(term.value.as_str()));
        let n = current.len();
        let m = hit.len();
        if m == 0 || m == n {
            continue;
        }
        let slots: Vec<usize> = (0..m)
            .map(|i| {
                if m == 1 {
                    0
                } else {
                    ((i * (n - 1)) as f64 / (m - 1) as f64).round() as usize
                }
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        let (mut h, mut r) = (hit.into_iter(), rest.into_iter());
        for pos in 0..n {
            let next = if slots.contains(&pos) {
                h.next()
            } else {
                r.next()
            };
            if let Some(p) = next.or_else(|| h.next()).or_else(|| r.next()) {
                out.push(p);
            }
        }
        current = out;
    }
    current
}

#[cfg(test)]
mod tests;
