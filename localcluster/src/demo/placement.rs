//! The placement table: where the pods of a UnitedDeployment's subsets run, by cluster, region,
//! zone and subset, computed from each member cluster's pods and the labels of their nodes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::progress::pod_ready;

/// Label upstream UnitedDeployment puts on a subset's workload and pods.
pub const SUBSET_LABEL: &str = "apps.kruise.io/subset-name";
const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// The node label naming its zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Shown for pods that have no node yet.
const UNSCHEDULED: &str = "-";

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub cluster: String,
    pub region: String,
    pub zone: String,
    pub subset: String,
    pub pods: usize,
    pub ready: usize,
}

fn node_label(nodes: &[Node], node: &str, label: &str) -> Option<String> {
    nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(node))?
        .metadata
        .labels
        .as_ref()?
        .get(label)
        .cloned()
}

/// Rows for one cluster from its subset pods (terminating pods left out) and its nodes,
/// sorted by region, zone and subset.
pub fn rows(cluster: &str, pods: &[Pod], nodes: &[Node]) -> Vec<Row> {
    let mut groups: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let subset = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SUBSET_LABEL))
            .cloned()
            .unwrap_or_else(|| UNSCHEDULED.into());
        let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
        let (region, zone) = match node {
            Some(node) => (
                node_label(nodes, node, REGION_LABEL).unwrap_or_else(|| UNSCHEDULED.into()),
                node_label(nodes, node, ZONE_LABEL).unwrap_or_else(|| UNSCHEDULED.into()),
            ),
            None => (UNSCHEDULED.into(), UNSCHEDULED.into()),
        };
        let entry = groups.entry((region, zone, subset)).or_default();
        entry.0 += 1;
        entry.1 += usize::from(pod_ready(pod));
    }
    groups
        .into_iter()
        .map(|((region, zone, subset), (pods, ready))| Row {
            cluster: cluster.to_string(),
            region,
            zone,
            subset,
            pods,
            ready,
        })
        .collect()
}

/// The table with aligned columns and a total line.
pub fn render(rows: &[Row]) -> String {
    let header = ["CLUSTER", "REGION", "ZONE", "SUBSET", "PODS", "READY"];
    let (pods, ready) = rows
        .iter()
        .fold((0, 0), |(p, r), row| (p + row.pods, r + row.ready));
    let mut lines: Vec<[String; 6]> = vec![header.map(String::from)];
    lines.extend(rows.iter().map(|r| {
        [
            r.cluster.clone(),
            r.region.clone(),
            r.zone.clone(),
            r.subset.clone(),
            r.pods.to_string(),
            r.ready.to_string(),
        ]
    }));
    lines.push([
        "TOTAL".into(),
        String::new(),
        String::new(),
        String::new(),
        pods.to_string(),
        ready.to_string(),
    ]);
    let mut widths = [0usize; 6];
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for line in &lines {
        let mut text = String::new();
        for (i, (cell, w)) in line.iter().zip(widths).enumerate() {
            let sep = if i + 1 == line.len() { "" } else { "  " };
            let _ = write!(text, "{cell:<w$}{sep}");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    fn node(name: &str, zone: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": {
            REGION_LABEL: "r1", ZONE_LABEL: zone}}}))
        .expect("node")
    }

    fn pod(name: &str, subset: &str, node: Option<&str>, ready: bool) -> Pod {
        let status = if ready { "True" } else { "False" };
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {SUBSET_LABEL: subset}},
            "spec": {"nodeName": node, "containers": []},
            "status": {"conditions": [{"type": "Ready", "status": status}]}}))
        .expect("pod")
    }

    #[test]
    fn groups_pods_by_zone_and_subset() {
        let nodes = [node("n0", "r1-a"), node("n1", "r1-b")];
        let mut terminating = pod("p5", "subset-r1", Some("n0"), true);
        terminating.metadata.deletion_timestamp =
            Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        let pods = [
            pod("p1", "subset-r1", Some("n0"), true),
            pod("p2", "subset-r1", Some("n0"), false),
            pod("p3", "subset-r1", Some("n1"), true),
            pod("p4", "subset-r1", None, false),
            terminating,
        ];
        let rows = rows("member-r1", &pods, &nodes);
        let summary: Vec<(&str, &str, usize, usize)> = rows
            .iter()
            .map(|r| (r.region.as_str(), r.zone.as_str(), r.pods, r.ready))
            .collect();
        assert_eq!(
            summary,
            [("-", "-", 1, 0), ("r1", "r1-a", 2, 1), ("r1", "r1-b", 1, 1)]
        );
        assert!(rows
            .iter()
            .all(|r| r.cluster == "member-r1" && r.subset == "subset-r1"));
    }

    #[test]
    fn renders_aligned_columns_with_a_total() {
        let row = |cluster: &str, zone: &str, pods, ready| Row {
            cluster: cluster.into(),
            region: "r1".into(),
            zone: zone.into(),
            subset: "subset-r1".into(),
            pods,
            ready,
        };
        let table = render(&[
            row("member-r1", "r1-a", 2, 2),
            row("member-r1", "r1-b", 3, 1),
        ]);
        let expected = "\
CLUSTER    REGION  ZONE  SUBSET     PODS  READY
member-r1  r1      r1-a  subset-r1  2     2
member-r1  r1      r1-b  subset-r1  3     1
TOTAL                               5     3
";
        assert_eq!(table, expected);
    }
}
