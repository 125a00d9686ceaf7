//! Placement of a UnitedDeployment: replicas per subset with OpenKruise's division rules
//! (specific and elastic allocators), then per member cluster within each subset.
//!
//! A subset's clusters are its explicit `clusters`, or the ManagedClusters its `clusterSelector`
//! matches that are Ready — plus matching clusters that already host the subset, so a cluster that
//! turns NotReady keeps its share (moving it is the adaptive failover's decision, not placement's).
//! A subset spanning several clusters is split evenly in cluster-name order, the remainder going to
//! the first clusters, or with `clusterSplit: Capacity` in proportion to each cluster's reported
//! allocatable pods (cpu when pods is not reported), largest remainders first.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::v1alpha1::uniteddeployment::{Subset, UnitedDeploymentSpec};

/// Why replicas could not be divided; no subset is rescaled then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// A replicas value is neither an int nor `N%` with N in 0..=100.
    #[error("subset {subset}: {field} {value:?} is not an integer or a percentage 0%..100%")]
    BadValue {
        subset: String,
        field: &'static str,
        value: String,
    },
    /// The specified replicas exceed spec.replicas.
    #[error("specified subset replicas ({specified}) exceed spec.replicas ({total})")]
    TooMany { specified: i32, total: i32 },
    /// Every subset is specified but the sum is below spec.replicas.
    #[error("every subset sets replicas but they sum to {specified}, not spec.replicas ({total})")]
    TooFew { specified: i32, total: i32 },
    /// minReplicas is above maxReplicas.
    #[error("subset {subset}: minReplicas {min} is above maxReplicas {max}")]
    MinAboveMax { subset: String, min: i32, max: i32 },
    /// No subsets.
    #[error("topology.subsets is empty")]
    NoSubsets,
}

/// What placement needs to know about a ManagedCluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterInfo {
    /// ManagedCluster name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Whether its `Ready` condition is True.
    pub ready: bool,
    /// Allocatable capacity it reports (pods, else millicores), for `clusterSplit: Capacity`.
    pub capacity: Option<i64>,
}

/// Replicas of one subset and their split over clusters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubsetPlacement {
    /// Subset name.
    pub name: String,
    /// Replicas allocated to the subset.
    pub replicas: i32,
    /// `(cluster, replicas)` in cluster-name order; empty when the subset has no cluster.
    pub clusters: Vec<(String, i32)>,
}

/// Parses an int-or-percent relative to `total`, percentages rounded half up.
pub fn scaled_value(
    value: &IntOrString,
    total: i32,
    subset: &str,
    field: &'static str,
) -> Result<i32, PlacementError> {
    let bad = || PlacementError::BadValue {
        subset: subset.to_string(),
        field,
        value: match value {
            IntOrString::Int(i) => i.to_string(),
            IntOrString::String(s) => s.clone(),
        },
    };
    match value {
        IntOrString::Int(i) if *i >= 0 => Ok(*i),
        IntOrString::Int(_) => Err(bad()),
        IntOrString::String(s) => {
            let Some(p) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return s.parse::<i32>().ok().filter(|i| *i >= 0).ok_or_else(bad);
            };
            if !(0..=100).contains(&p) {
                return Err(bad());
            }
            // floor(R * p / 100 + 0.5)
            Ok(((i64::from(total) * p * 2 + 100) / 200) as i32)
        }
    }
}

/// Whether any subset uses minReplicas or maxReplicas (the elastic allocator).
pub fn is_elastic(subsets: &[Subset]) -> bool {
    subsets
        .iter()
        .any(|s| s.min_replicas.is_some() || s.max_replicas.is_some())
}

/// Replicas per subset (spec order) by the specific allocator (section 8.5.1): specified subsets
/// get their value; the rest is spread over unspecified subsets, extra replicas going to those
/// with more `current` replicas (ties: larger name).
pub fn specific_allocation(
    subsets: &[Subset],
    total: i32,
    current: &BTreeMap<String, i32>,
) -> Result<Vec<(String, i32)>, PlacementError> {
    let mut specified: BTreeMap<&str, i32> = BTreeMap::new();
    for s in subsets {
        if let Some(v) = &s.replicas {
            specified.insert(&s.name, scaled_value(v, total, &s.name, "replicas")?);
        }
    }
    let sum: i32 = specified.values().sum();
    if sum > total {
        return Err(PlacementError::TooMany {
            specified: sum,
            total,
        });
    }
    let unspecified: Vec<&Subset> = subsets
        .iter()
        .filter(|s| !specified.contains_key(s.name.as_str()))
        .collect();
    if unspecified.is_empty() && sum < total {
        return Err(PlacementError::TooFew {
            specified: sum,
            total,
        });
    }
    let mut result: BTreeMap<&str, i32> = specified;
    if !unspecified.is_empty() {
        let rest = total - sum;
        let k = unspecified.len() as i32;
        let (avg, rem) = (rest / k, rest % k);
        let mut sorted = unspecified;
        sorted.sort_by(|a, b| {
            let ca = current.get(&a.name).copied().unwrap_or(0);
            let cb = current.get(&b.name).copied().unwrap_or(0);
            ca.cmp(&cb).then_with(|| a.name.cmp(&b.name))
        });
        for (i, s) in sorted.iter().rev().enumerate() {
            let extra = i32::from((i as i32) < rem);
            result.insert(&s.name, avg + extra);
        }
    }
    Ok(subsets
        .iter()
        .map(|s| {
            (
                s.name.clone(),
                result.get(s.name.as_str()).copied().unwrap_or(0),
            )
        })
        .collect())
}

/// `(min, max)` of a subset relative to `total`; max defaults to unlimited.
pub fn min_max(subset: &Subset, total: i32) -> Result<(i32, i32), PlacementError> {
    let min = match &subset.min_replicas {
        Some(v) => scaled_value(v, total, &subset.name, "minReplicas")?,
        None => 0,
    };
    let max = match &subset.max_replicas {
        Some(v) => scaled_value(v, total, &subset.name, "maxReplicas")?,
        None => i32::MAX,
    };
    if min > max {
        return Err(PlacementError::MinAboveMax {
            subset: subset.name.clone(),
            min,
            max,
        });
    }
    Ok((min, max))
}

/// The two passes of the elastic allocator (section 8.5.2) over `(name, min, max)` in spec order.
pub fn elastic_passes(bounds: &[(String, i32, i32)], total: i32) -> Vec<(String, i32)> {
    let mut remaining = total.max(0);
    let mut out: Vec<(String, i32)> = Vec::with_capacity(bounds.len());
    for (name, min, _) in bounds {
        let n = (*min).min(remaining);
        remaining -= n;
        out.push((name.clone(), n));
    }
    for ((_, min, max), (_, n)) in bounds.iter().zip(out.iter_mut()) {
        let top = (max - min).min(remaining).max(0);
        remaining -= top;
        *n += top;
    }
    out
}

/// Replicas per subset by the elastic allocator.
pub fn elastic_allocation(
    subsets: &[Subset],
    total: i32,
) -> Result<Vec<(String, i32)>, PlacementError> {
    let bounds = subsets
        .iter()
        .map(|s| min_max(s, total).map(|(min, max)| (s.name.clone(), min, max)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(elastic_passes(&bounds, total))
}

/// Replicas per subset (spec order): elastic when any subset sets min/max, specific otherwise.
/// `current` holds each subset's replicas today (used by the specific allocator's tie-breaking).
pub fn subset_allocation(
    spec: &UnitedDeploymentSpec,
    current: &BTreeMap<String, i32>,
) -> Result<Vec<(String, i32)>, PlacementError> {
    let subsets = spec.topology.subsets.as_deref().unwrap_or_default();
    if subsets.is_empty() {
        return Err(PlacementError::NoSubsets);
    }
    let total = spec.replicas.unwrap_or(1).max(0);
    if is_elastic(subsets) {
        elastic_allocation(subsets, total)
    } else {
        specific_allocation(subsets, total, current)
    }
}

/// Whether `labels` match `selector` (matchLabels and matchExpressions; an empty selector
/// matches everything).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// The clusters of `subset`, sorted by name: explicit `clusters` as given, or the clusters the
/// selector matches that are Ready or already in `hosting` (clusters that run the subset today).
pub fn subset_clusters(
    subset: &Subset,
    clusters: &[ClusterInfo],
    hosting: &BTreeSet<String>,
) -> Vec<String> {
    let mut names: Vec<String> = match (&subset.clusters, &subset.cluster_selector) {
        (Some(explicit), _) => explicit.clone(),
        (None, Some(selector)) => clusters
            .iter()
            .filter(|c| selector_matches(selector, &c.labels))
            .filter(|c| c.ready || hosting.contains(&c.name))
            .map(|c| c.name.clone())
            .collect(),
        (None, None) => Vec::new(),
    };
    names.sort();
    names.dedup();
    names
}

/// Splits `total` evenly over `clusters` (in the given order), the remainder to the first ones.
pub fn split_even(total: i32, clusters: &[String]) -> Vec<(String, i32)> {
    if clusters.is_empty() {
        return Vec::new();
    }
    let k = clusters.len() as i32;
    let (avg, rem) = (total / k, total % k);
    clusters
        .iter()
        .enumerate()
        .map(|(i, c)| (c.clone(), avg + i32::from((i as i32) < rem)))
        .collect()
}

/// Splits `total` over `weights` proportionally (largest remainder, ties to the earlier entry),
/// never giving an entry more than its weight when `total` does not exceed the weights' sum.
pub fn split_proportional(total: i32, weights: &[(String, i32)]) -> Vec<(String, i32)> {
    let sum: i64 = weights.iter().map(|(_, w)| i64::from((*w).max(0))).sum();
    if sum == 0 {
        let names: Vec<String> = weights.iter().map(|(n, _)| n.clone()).collect();
        return split_even(total, &names);
    }
    let total = i64::from(total.max(0));
    let mut parts: Vec<(usize, i64, i64)> = weights
        .iter()
        .enumerate()
        .map(|(i, (_, w))| {
            let exact = total * i64::from((*w).max(0));
            (i, exact / sum, exact % sum)
        })
        .collect();
    let mut left = total - parts.iter().map(|p| p.1).sum::<i64>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|a, b| parts[*b].2.cmp(&parts[*a].2).then(a.cmp(b)));
    for i in order {
        if left == 0 {
            break;
        }
        parts[i].1 += 1;
        left -= 1;
    }
    parts.sort_by_key(|p| p.0);
    weights
        .iter()
        .zip(parts)
        .map(|((n, _), (_, v, _))| (n.clone(), v as i32))
        .collect()
}

/// Weights for a capacity split: each target's reported capacity; a target without one (or not
/// known) weighs as the smallest reported, or 1 when none reports.
fn capacity_weights(targets: &[String], clusters: &[ClusterInfo]) -> Vec<(String, i32)> {
    let of = |name: &str| {
        clusters
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.capacity)
            .filter(|c| *c > 0)
    };
    let smallest = targets.iter().filter_map(|t| of(t)).min().unwrap_or(1);
    targets
        .iter()
        .map(|t| {
            let w = of(t).unwrap_or(smallest).min(i64::from(i32::MAX));
            (t.clone(), w as i32)
        })
        .collect()
}

/// Full placement: replicas per subset, then per cluster. `current` holds each subset's replicas
/// today; `hosting` the clusters each subset runs in today.
pub fn place(
    spec: &UnitedDeploymentSpec,
    clusters: &[ClusterInfo],
    current: &BTreeMap<String, i32>,
    hosting: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Vec<SubsetPlacement>, PlacementError> {
    let allocation = subset_allocation(spec, current)?;
    let subsets = spec.topology.subsets.as_deref().unwrap_or_default();
    let empty = BTreeSet::new();
    Ok(subsets
        .iter()
        .zip(allocation)
        .map(|(subset, (name, replicas))| {
            let targets = subset_clusters(subset, clusters, hosting.get(&name).unwrap_or(&empty));
            let split = if subset.cluster_split.as_deref() == Some("Capacity") {
                split_proportional(replicas, &capacity_weights(&targets, clusters))
            } else {
                split_even(replicas, &targets)
            };
            SubsetPlacement {
                clusters: split,
                name,
                replicas,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn int(i: i32) -> Option<IntOrString> {
        Some(IntOrString::Int(i))
    }

    fn pct(s: &str) -> Option<IntOrString> {
        Some(IntOrString::String(s.into()))
    }

    fn subset(name: &str, replicas: Option<IntOrString>, clusters: &[&str]) -> Subset {
        Subset {
            name: name.into(),
            replicas,
            clusters: (!clusters.is_empty())
                .then(|| clusters.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        }
    }

    fn spec(replicas: i32, subsets: Vec<Subset>) -> UnitedDeploymentSpec {
        let mut spec = UnitedDeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        };
        spec.topology.subsets = Some(subsets);
        spec
    }

    fn names(v: &[(String, i32)]) -> Vec<i32> {
        v.iter().map(|(_, n)| *n).collect()
    }

    #[test]
    fn specific_allocator_worked_examples() {
        let none = BTreeMap::new();
        // 50% / 30% / rest of 10.
        let s = vec![
            subset("r1", pct("50%"), &[]),
            subset("r2", pct("30%"), &[]),
            subset("r3", None, &[]),
        ];
        assert_eq!(
            names(&specific_allocation(&s, 10, &none).expect("ok")),
            [5, 3, 2]
        );
        // All unspecified and new: the extra replica goes to the lexicographically last.
        let s = vec![
            subset("a", None, &[]),
            subset("b", None, &[]),
            subset("c", None, &[]),
        ];
        assert_eq!(
            names(&specific_allocation(&s, 10, &none).expect("ok")),
            [3, 3, 4]
        );
        // a=2, b=50%, c rest.
        let s = vec![
            subset("a", int(2), &[]),
            subset("b", pct("50%"), &[]),
            subset("c", None, &[]),
        ];
        assert_eq!(
            names(&specific_allocation(&s, 10, &none).expect("ok")),
            [2, 5, 3]
        );
    }

    #[test]
    fn specific_allocator_prefers_subsets_with_more_pods() {
        let s = vec![
            subset("a", None, &[]),
            subset("b", None, &[]),
            subset("c", None, &[]),
        ];
        let current = BTreeMap::from([("a".to_string(), 5)]);
        assert_eq!(
            names(&specific_allocation(&s, 10, &current).expect("ok")),
            [4, 3, 3]
        );
    }

    #[test]
    fn percentages_round_half_up() {
        let v = |s: &str, r| scaled_value(&IntOrString::String(s.into()), r, "a", "replicas");
        assert_eq!(v("50%", 5), Ok(3));
        assert_eq!(v("33%", 10), Ok(3));
        assert_eq!(v("35%", 10), Ok(4));
        assert_eq!(v("0%", 10), Ok(0));
        assert!(v("101%", 10).is_err());
        assert!(v("x%", 10).is_err());
        assert_eq!(v("7", 10), Ok(7));
    }

    #[test]
    fn specific_allocator_rejects_bad_sums() {
        let none = BTreeMap::new();
        let s = vec![subset("a", int(8), &[]), subset("b", int(5), &[])];
        assert_eq!(
            specific_allocation(&s, 10, &none),
            Err(PlacementError::TooMany {
                specified: 13,
                total: 10
            })
        );
        let s = vec![subset("a", int(3), &[]), subset("b", int(5), &[])];
        assert_eq!(
            specific_allocation(&s, 10, &none),
            Err(PlacementError::TooFew {
                specified: 8,
                total: 10
            })
        );
    }

    #[test]
    fn elastic_allocator_godoc_example_and_scale_down_order() {
        let mut a = subset("a", None, &[]);
        a.min_replicas = int(2);
        a.max_replicas = int(4);
        let mut b = subset("b", None, &[]);
        b.min_replicas = int(2);
        let s = vec![a, b];
        assert_eq!(names(&elastic_allocation(&s, 5).expect("ok")), [3, 2]);
        assert_eq!(names(&elastic_allocation(&s, 9).expect("ok")), [4, 5]);
        // Scaling down removes from later subsets first.
        assert_eq!(names(&elastic_allocation(&s, 3).expect("ok")), [2, 1]);
        let mut bad = subset("x", None, &[]);
        bad.min_replicas = int(5);
        bad.max_replicas = int(2);
        assert!(matches!(
            elastic_allocation(&[bad], 5),
            Err(PlacementError::MinAboveMax { .. })
        ));
    }

    #[test]
    fn capacity_split_follows_allocatable_pods() {
        let spec: UnitedDeploymentSpec = serde_json::from_value(serde_json::json!({
            "replicas": 10,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {},
            "topology": {"subsets": [
                {"name": "wide", "clusters": ["big", "small", "unknown"], "clusterSplit": "Capacity"},
            ]}
        }))
        .expect("spec");
        let info = |name: &str, capacity| ClusterInfo {
            name: name.into(),
            labels: BTreeMap::new(),
            ready: true,
            capacity,
        };
        let clusters = [
            info("big", Some(300)),
            info("small", Some(100)),
            info("unknown", None),
        ];
        let placed = place(&spec, &clusters, &BTreeMap::new(), &BTreeMap::new()).expect("placed");
        // Weights 300 / 100 / 100 (no report weighs as the smallest): 6 / 2 / 2.
        assert_eq!(
            placed[0].clusters,
            vec![
                ("big".to_string(), 6),
                ("small".to_string(), 2),
                ("unknown".to_string(), 2)
            ]
        );
        let even: UnitedDeploymentSpec = {
            let mut e = spec.clone();
            e.topology.subsets.as_mut().expect("subsets")[0].cluster_split = None;
            e
        };
        let placed = place(&even, &clusters, &BTreeMap::new(), &BTreeMap::new()).expect("placed");
        assert_eq!(
            placed[0]
                .clusters
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>(),
            [4, 3, 3]
        );
    }

    #[test]
    fn place_splits_subsets_over_clusters() {
        let spec = spec(
            10,
            vec![
                subset("r1", pct("50%"), &["m-b", "m-a"]),
                subset("r2", pct("30%"), &["m-c"]),
                subset("r3", None, &["m-d"]),
            ],
        );
        let placed = place(&spec, &[], &BTreeMap::new(), &BTreeMap::new()).expect("ok");
        assert_eq!(
            placed[0].clusters,
            [("m-a".to_string(), 3), ("m-b".to_string(), 2)]
        );
        assert_eq!(placed[1].clusters, [("m-c".to_string(), 3)]);
        assert_eq!(placed[2].clusters, [("m-d".to_string(), 2)]);
    }

    #[test]
    fn selector_picks_ready_clusters_and_keeps_hosting_ones() {
        let cluster = |name: &str, region: &str, ready| ClusterInfo {
            capacity: None,
            name: name.into(),
            labels: BTreeMap::from([("region".to_string(), region.to_string())]),
            ready,
        };
        let clusters = [
            cluster("c1", "eu", true),
            cluster("c2", "eu", false),
            cluster("c3", "us", true),
            cluster("c4", "eu", true),
        ];
        let mut s = subset("eu", None, &[]);
        s.cluster_selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "region".into(),
                operator: "In".into(),
                values: Some(vec!["eu".into()]),
            }]),
            ..Default::default()
        });
        assert_eq!(
            subset_clusters(&s, &clusters, &BTreeSet::new()),
            ["c1", "c4"]
        );
        let hosting = BTreeSet::from(["c2".to_string()]);
        assert_eq!(subset_clusters(&s, &clusters, &hosting), ["c1", "c2", "c4"]);
        assert_eq!(
            split_even(7, &["c1".into(), "c2".into(), "c4".into()])
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>(),
            [3, 2, 2]
        );
    }

    #[test]
    fn proportional_split_follows_weights() {
        let w = vec![
            ("a".to_string(), 5),
            ("b".to_string(), 3),
            ("c".to_string(), 2),
        ];
        assert_eq!(names(&split_proportional(4, &w)), [2, 1, 1]);
        assert_eq!(names(&split_proportional(10, &w)), [5, 3, 2]);
        assert_eq!(names(&split_proportional(0, &w)), [0, 0, 0]);
    }
}
