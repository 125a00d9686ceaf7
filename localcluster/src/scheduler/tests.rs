//! Table tests of the scheduler's filters, scores and messages.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::plan::{pod_requests, NodeInfo, Resources, Spread};

fn schedule(pod: &Pod, nodes: &[NodeInfo]) -> Result<String, String> {
    super::plan::schedule(pod, nodes, &Spread::default())
}

fn node(name: &str, zone: &str) -> NodeInfo {
    NodeInfo {
        name: name.into(),
        labels: BTreeMap::from([
            ("kubernetes.io/hostname".to_string(), name.to_string()),
            ("topology.kubernetes.io/zone".to_string(), zone.to_string()),
        ]),
        taints: vec![],
        unschedulable: false,
        allocatable: Resources {
            cpu_millis: 8000,
            memory_bytes: 32 << 30,
            pods: 110,
        },
        requested: Resources::default(),
    }
}

fn pod(spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"}, "spec": spec}))
        .expect("valid pod")
}

#[test]
fn requests_sum_containers_and_respect_init_containers() {
    let p = pod(json!({
        "initContainers": [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "3"}}}],
        "containers": [
            {"name": "a", "image": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"name": "b", "image": "b", "resources": {"requests": {"cpu": "1"}}}
        ]
    }));
    assert_eq!(
        pod_requests(&p),
        Resources {
            cpu_millis: 3000,
            memory_bytes: 1 << 30,
            pods: 1
        }
    );
}

#[test]
fn node_selector_picks_the_named_node() {
    let nodes = vec![node("n1", "a"), node("n2", "b"), node("n3", "c")];
    let p = pod(
        json!({"nodeSelector": {"kubernetes.io/hostname": "n2"}, "containers": [{"name": "a", "image": "a"}]}),
    );
    assert_eq!(schedule(&p, &nodes), Ok("n2".to_string()));
}

#[test]
fn oversized_pod_reports_insufficient_cpu_on_every_node() {
    let nodes = vec![node("n1", "a"), node("n2", "b"), node("n3", "c")];
    let p = pod(
        json!({"containers": [{"name": "a", "image": "a", "resources": {"requests": {"cpu": "5000"}}}]}),
    );
    assert_eq!(
        schedule(&p, &nodes),
        Err("0/3 nodes are available: 3 Insufficient cpu.".to_string())
    );
}

#[test]
fn reasons_are_counted_and_sorted_like_kube_scheduler() {
    let mut nodes = vec![node("n1", "a"), node("n2", "b"), node("n3", "c")];
    nodes[0].unschedulable = true;
    nodes[1].taints.push(k8s_openapi::api::core::v1::Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: "NoSchedule".into(),
        ..Default::default()
    });
    let p = pod(
        json!({"containers": [{"name": "a", "image": "a", "resources": {"requests": {"memory": "64Gi"}}}]}),
    );
    assert_eq!(
        schedule(&p, &nodes),
        Err("0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable.".to_string())
    );
}

#[test]
fn tolerations_admit_tainted_nodes() {
    let mut nodes = vec![node("n1", "a")];
    nodes[0].taints.push(k8s_openapi::api::core::v1::Taint {
        key: "dedicated".into(),
        value: Some("gpu".into()),
        effect: "NoSchedule".into(),
        ..Default::default()
    });
    let equal = pod(
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}], "containers": [{"name": "a", "image": "a"}]}),
    );
    let exists = pod(
        json!({"tolerations": [{"operator": "Exists"}], "containers": [{"name": "a", "image": "a"}]}),
    );
    let wrong = pod(
        json!({"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "cpu"}], "containers": [{"name": "a", "image": "a"}]}),
    );
    assert_eq!(schedule(&equal, &nodes), Ok("n1".into()));
    assert_eq!(schedule(&exists, &nodes), Ok("n1".into()));
    assert!(schedule(&wrong, &nodes).is_err());
}

#[test]
fn required_node_affinity_terms_are_ored_and_expressions_anded() {
    let nodes = vec![node("n1", "a"), node("n2", "b"), node("n3", "c")];
    let p = pod(json!({
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["c"]}]},
            {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]},
                                  {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n2"]}]}
        ]}}},
        "containers": [{"name": "a", "image": "a"}]
    }));
    assert_eq!(schedule(&p, &nodes), Ok("n3".into()));
}

#[test]
fn preferred_affinity_outweighs_free_capacity() {
    let mut nodes = vec![node("n1", "a"), node("n2", "b")];
    nodes[1].requested = Resources {
        cpu_millis: 6000,
        memory_bytes: 20 << 30,
        pods: 50,
    };
    let p = pod(json!({
        "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 50, "preference": {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["b"]}]}}
        ]}},
        "containers": [{"name": "a", "image": "a"}]
    }));
    assert_eq!(schedule(&p, &nodes), Ok("n2".into()));
}

#[test]
fn least_requested_node_wins_without_preferences() {
    let mut nodes = vec![node("n1", "a"), node("n2", "b")];
    nodes[0].requested = Resources {
        cpu_millis: 4000,
        memory_bytes: 8 << 30,
        pods: 10,
    };
    let p = pod(
        json!({"containers": [{"name": "a", "image": "a", "resources": {"requests": {"cpu": "100m"}}}]}),
    );
    assert_eq!(schedule(&p, &nodes), Ok("n2".into()));
}

#[test]
fn pod_count_limits_placement() {
    let mut nodes = vec![node("n1", "a")];
    nodes[0].requested.pods = 110;
    let p = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
    assert_eq!(
        schedule(&p, &nodes),
        Err("0/1 nodes are available: 1 Too many pods.".into())
    );
}

#[test]
fn not_ready_nodes_carry_the_not_ready_taint() {
    let n: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "metadata": {"name": "n1"},
        "status": {"allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"}, "conditions": [{"type": "Ready", "status": "False"}]}
    }))
    .expect("valid node");
    let info = NodeInfo::from_node(&n);
    assert_eq!(
        info.allocatable,
        Resources {
            cpu_millis: 8000,
            memory_bytes: 32 << 30,
            pods: 110
        }
    );
    let p = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
    assert_eq!(schedule(&p, &[info]), Err("0/1 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }.".into()));
}

#[test]
fn a_controllers_pods_spread_over_zones_and_nodes() {
    // step by step, as the scheduler places five replicas of one CloneSet on three zones
    let nodes = vec![node("n1", "a"), node("n2", "b"), node("n3", "c")];
    let p = serde_json::from_value::<Pod>(json!({
        "metadata": {"name": "web-x", "namespace": "default", "ownerReferences": [
            {"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "name": "web", "uid": "cs-1", "controller": true}
        ]},
        "spec": {"containers": [{"name": "a", "image": "a"}]}
    }))
    .expect("pod");
    let mut spread = Spread::default();
    let mut infos = nodes.clone();
    let mut placed = Vec::new();
    for _ in 0..5 {
        let n = super::plan::schedule(&p, &infos, &spread).expect("fits");
        let i = infos.iter().position(|x| x.name == n).expect("node");
        infos[i].requested += pod_requests(&p);
        spread.add("cs-1", &infos[i]);
        placed.push(n);
    }
    assert_eq!(placed, ["n1", "n2", "n3", "n1", "n2"]);
}

#[test]
fn least_requested_breaks_ties_by_pod_count() {
    let mut nodes = vec![node("n1", "a"), node("n2", "a"), node("n3", "a")];
    nodes[0].requested.pods = 1;
    let p = pod(json!({"containers": [{"name": "a", "image": "a"}]}));
    assert_eq!(schedule(&p, &nodes), Ok("n2".into()));
}
