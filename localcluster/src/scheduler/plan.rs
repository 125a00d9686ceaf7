//! The scheduler's pure core: which nodes fit a pod (filters with kube-scheduler's failure
//! reasons) and which fitting node is best (scores). No I/O.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration,
};

use crate::quantity;

/// Resources a pod asks for or a node offers: millicores, bytes, pod slots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
    pub pods: i64,
}

impl std::ops::AddAssign for Resources {
    fn add_assign(&mut self, o: Resources) {
        self.cpu_millis += o.cpu_millis;
        self.memory_bytes += o.memory_bytes;
        self.pods += o.pods;
    }
}

/// What the scheduler knows about a node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    /// Sum of the requests of pods bound to the node and not terminated.
    pub requested: Resources,
}

impl NodeInfo {
    /// Builds the view of a Node object; a NotReady node carries the `not-ready` taint as the
    /// node lifecycle controller would add it.
    pub fn from_node(node: &Node) -> NodeInfo {
        let spec = node.spec.clone().unwrap_or_default();
        let status = node.status.clone().unwrap_or_default();
        let alloc = status.allocatable.clone().unwrap_or_default();
        let get = |k: &str, f: fn(&str) -> Result<i64, String>| {
            alloc.get(k).and_then(|q| f(&q.0).ok()).unwrap_or(0)
        };
        let mut taints = spec.taints.clone().unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if !ready
            && !taints
                .iter()
                .any(|t| t.key == "node.kubernetes.io/not-ready")
        {
            taints.push(Taint {
                key: "node.kubernetes.io/not-ready".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            });
        }
        NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            taints,
            unschedulable: spec.unschedulable.unwrap_or(false),
            allocatable: Resources {
                cpu_millis: get("cpu", quantity::cpu_millis),
                memory_bytes: get("memory", quantity::memory_bytes),
                pods: get("pods", quantity::count),
            },
            requested: Resources::default(),
        }
    }
}

/// The resources `pod` requests: the sum over containers, at least the largest init container.
pub fn pod_requests(pod: &Pod) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources {
            pods: 1,
            ..Default::default()
        };
    };
    let of = |c: &k8s_openapi::api::core::v1::Container| {
        let req = c
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone().or_else(|| r.limits.clone()))
            .unwrap_or_default();
        Resources {
            cpu_millis: req
                .get("cpu")
                .and_then(|q| quantity::cpu_millis(&q.0).ok())
                .unwrap_or(0),
            memory_bytes: req
                .get("memory")
                .and_then(|q| quantity::memory_bytes(&q.0).ok())
                .unwrap_or(0),
            pods: 0,
        }
    };
    let mut total = Resources {
        pods: 1,
        ..Default::default()
    };
    for c in &spec.containers {
        total += of(c);
    }
    for c in spec.init_containers.iter().flatten() {
        let r = of(c);
        total.cpu_millis = total.cpu_millis.max(r.cpu_millis);
        total.memory_bytes = total.memory_bytes.max(r.memory_bytes);
    }
    total
}

fn requirement_matches(req: &NodeSelectorRequirement, value: Option<&String>) -> bool {
    let values = req.values.clone().unwrap_or_default();
    match req.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => value.is_none_or(|v| !values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let (Some(v), Some(bound)) = (
                value.and_then(|v| v.parse::<i64>().ok()),
                values.first().and_then(|b| b.parse::<i64>().ok()),
            ) else {
                return false;
            };
            if req.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs
        .iter()
        .all(|r| requirement_matches(r, node.labels.get(&r.key)))
        && fields
            .iter()
            .all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&node.name)))
}

fn selector_matches(pod: &Pod, node: &NodeInfo) -> bool {
    let spec = pod.spec.as_ref();
    let selector_ok = spec
        .and_then(|s| s.node_selector.as_ref())
        .is_none_or(|sel| sel.iter().all(|(k, v)| node.labels.get(k) == Some(v)));
    let required = spec
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    selector_ok
        && required.is_none_or(|r| r.node_selector_terms.iter().any(|t| term_matches(t, node)))
}

fn tolerates(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| {
        let effect_ok = t
            .effect
            .as_deref()
            .is_none_or(|e| e.is_empty() || e == taint.effect);
        let key_ok = match t.key.as_deref() {
            None | Some("") => t.operator.as_deref() == Some("Exists"),
            Some(k) => k == taint.key,
        };
        let value_ok = match t.operator.as_deref() {
            Some("Exists") => true,
            _ => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        };
        effect_ok && key_ok && value_ok
    })
}

/// Why `node` cannot run `pod`, in kube-scheduler's words; empty when it fits.
pub fn filter(pod: &Pod, requests: Resources, node: &NodeInfo) -> Vec<String> {
    if node.unschedulable {
        let tolerated = pod
            .spec
            .as_ref()
            .and_then(|s| s.tolerations.as_deref())
            .is_some_and(|t| {
                tolerates(
                    t,
                    &Taint {
                        key: "node.kubernetes.io/unschedulable".into(),
                        effect: "NoSchedule".into(),
                        ..Default::default()
                    },
                )
            });
        if !tolerated {
            return vec!["node(s) were unschedulable".into()];
        }
    }
    if !selector_matches(pod, node) {
        return vec!["node(s) didn't match Pod's node affinity/selector".into()];
    }
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    if let Some(t) = node.taints.iter().find(|t| {
        (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerates(&tolerations, t)
    }) {
        return vec![format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key,
            t.value.as_deref().unwrap_or("")
        )];
    }
    let mut reasons = Vec::new();
    let free = |alloc: i64, used: i64| alloc - used;
    if requests.pods > free(node.allocatable.pods, node.requested.pods) {
        reasons.push("Too many pods".into());
    }
    if requests.cpu_millis > 0
        && requests.cpu_millis > free(node.allocatable.cpu_millis, node.requested.cpu_millis)
    {
        reasons.push("Insufficient cpu".into());
    }
    if requests.memory_bytes > 0
        && requests.memory_bytes > free(node.allocatable.memory_bytes, node.requested.memory_bytes)
    {
        reasons.push("Insufficient memory".into());
    }
    reasons
}

/// The controller (owner uid) whose pods a pod is spread with, as the default topology spread
/// constraints of kube-scheduler group them.
pub fn owner_of(pod: &Pod) -> Option<String> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.clone())
}

const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// How many pods of each controller run per node and per zone.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    by_node: HashMap<(String, String), i64>,
    by_zone: HashMap<(String, String), i64>,
}

impl Spread {
    /// Counts a pod of `owner` on `node`.
    pub fn add(&mut self, owner: &str, node: &NodeInfo) {
        *self
            .by_node
            .entry((owner.to_string(), node.name.clone()))
            .or_default() += 1;
        if let Some(zone) = node.labels.get(ZONE_LABEL) {
            *self
                .by_zone
                .entry((owner.to_string(), zone.clone()))
                .or_default() += 1;
        }
    }

    fn penalty(&self, owner: &str, node: &NodeInfo) -> f64 {
        let on_node = self
            .by_node
            .get(&(owner.to_string(), node.name.clone()))
            .copied()
            .unwrap_or(0);
        let in_zone = node
            .labels
            .get(ZONE_LABEL)
            .and_then(|z| self.by_zone.get(&(owner.to_string(), z.clone())))
            .copied()
            .unwrap_or(0);
        (on_node * 20 + in_zone * 10) as f64
    }
}

/// Higher is better: preferred node affinity weights, then spreading a controller's pods over
/// nodes and zones (kube-scheduler's default topology spread), then least requested resources.
pub fn score(pod: &Pod, requests: Resources, node: &NodeInfo, spread: &Spread) -> f64 {
    let preferred: i64 = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|terms| {
            terms
                .iter()
                .filter(|t| term_matches(&t.preference, node))
                .map(|t| i64::from(t.weight))
                .sum()
        })
        .unwrap_or(0);
    let frac = |alloc: i64, used: i64| {
        if alloc <= 0 {
            0.0
        } else {
            (alloc - used).max(0) as f64 * 100.0 / alloc as f64
        }
    };
    let least = (frac(
        node.allocatable.cpu_millis,
        node.requested.cpu_millis + requests.cpu_millis,
    ) + frac(
        node.allocatable.memory_bytes,
        node.requested.memory_bytes + requests.memory_bytes,
    ) + frac(node.allocatable.pods, node.requested.pods + requests.pods))
        / 3.0;
    let spread_penalty = owner_of(pod).map_or(0.0, |o| spread.penalty(&o, node));
    preferred as f64 * 1000.0 - spread_penalty + least
}

/// Picks the node for `pod`, or explains why none fits: `0/3 nodes are available: 3 Insufficient cpu.`
pub fn schedule(pod: &Pod, nodes: &[NodeInfo], spread: &Spread) -> Result<String, String> {
    let requests = pod_requests(pod);
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut best: Option<(f64, &NodeInfo)> = None;
    for node in nodes {
        let failed = filter(pod, requests, node);
        if failed.is_empty() {
            let s = score(pod, requests, node, spread);
            // Ties go to the first node in name order, so placement is reproducible.
            if best.is_none_or(|(b, n)| s > b || (s == b && node.name < n.name)) {
                best = Some((s, node));
            }
        } else {
            for r in failed {
                *reasons.entry(r).or_default() += 1;
            }
        }
    }
    match best {
        Some((_, node)) => Ok(node.name.clone()),
        None if nodes.is_empty() => {
            Err("0/0 nodes are available: no nodes available to schedule pods.".into())
        }
        None => {
            let parts: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
            Err(format!(
                "0/{} nodes are available: {}.",
                nodes.len(),
                parts.join(", ")
            ))
        }
    }
}
