use super::*;
use crate::pods::testing::{pod, with_label};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kruise_api::apps::common::{UpdatePriorityOrderTerm, UpdatePriorityWeightTerm};

fn names(v: &[&Pod]) -> Vec<String> {
    v.iter().map(|p| pods::name(p).to_string()).collect()
}

#[test]
fn last_int_takes_the_trailing_number() {
    assert_eq!(last_int("5"), Some(5));
    assert_eq!(last_int("sts-10"), Some(10));
    assert_eq!(last_int("a1b22c"), Some(22));
    assert_eq!(last_int("none"), None);
}

#[test]
fn weight_priority_puts_heavier_pods_first_and_is_stable() {
    let a = pod("a", "r", true);
    let b = with_label(pod("b", "r", true), "canary", "true");
    let c = pod("c", "r", true);
    let strategy = UpdatePriorityStrategy {
        weight_priority: Some(vec![UpdatePriorityWeightTerm {
            weight: 50,
            match_selector: LabelSelector {
                match_labels: Some([("canary".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
        }]),
        order_priority: None,
    };
    let mut v = vec![&a, &b, &c];
    sort_by_priority(&mut v, &strategy);
    assert_eq!(names(&v), ["b", "a", "c"]);
}

#[test]
fn order_priority_uses_key_order_then_value() {
    let a = with_label(pod("a", "r", true), "k2", "9");
    let b = with_label(pod("b", "r", true), "k1", "x-1");
    let c = with_label(pod("c", "r", true), "k1", "x-10");
    let d = pod("d", "r", true);
    let strategy = UpdatePriorityStrategy {
        weight_priority: None,
        order_priority: Some(vec![
            UpdatePriorityOrderTerm {
                ordered_key: "k1".into(),
            },
            UpdatePriorityOrderTerm {
                ordered_key: "k2".into(),
            },
        ]),
    };
    let mut v = vec![&a, &b, &c, &d];
    sort_by_priority(&mut v, &strategy);
    assert_eq!(names(&v), ["c", "b", "a", "d"]);
}

#[test]
fn scatter_spreads_three_of_ten_to_first_sixth_and_tenth() {
    let all: Vec<Pod> = (0..10)
        .map(|i| {
            let p = pod(&format!("p{i}"), "r", true);
            if i < 3 {
                with_label(p, "zone", "a")
            } else {
                p
            }
        })
        .collect();
    let refs: Vec<&Pod> = all.iter().collect();
    let out = scatter(
        refs,
        &[UpdateScatterTerm {
            key: "zone".into(),
            value: "a".into(),
        }],
    );
    let positions: Vec<usize> = out
        .iter()
        .enumerate()
        .filter(|(_, p)| pods::label(p, "zone") == Some("a"))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(positions, [1, 6, 10]);
    assert_eq!(out.len(), 10);
}

#[test]
fn active_first_prefers_unready_then_restarts_then_newer() {
    let ready = pod("ready", "r", true);
    let unready = pod("unready", "r", false);
    let mut unassigned = pod("unassigned", "r", false);
    unassigned.spec.as_mut().unwrap().node_name = None;
    let mut v = vec![&ready, &unready, &unassigned];
    v.sort_by(|a, b| active_first(a, b));
    assert_eq!(names(&v), ["unassigned", "unready", "ready"]);
}

#[test]
fn deletion_order_honours_cost_and_spread() {
    let cheap = with_label(pod("cheap", "r", true), "x", "y");
    let mut cheap = cheap;
    cheap
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(pods::POD_DELETION_COST.into(), "-5".into());
    let mut lonely = pod("lonely", "r", true);
    lonely.spec.as_mut().unwrap().node_name = Some("node-2".into());
    let crowded = pod("crowded", "r", true);
    let crowded2 = pod("crowded2", "r", true);
    let mut v = vec![&lonely, &crowded, &cheap, &crowded2];
    sort_for_deletion(&mut v);
    assert_eq!(names(&v)[0], "cheap");
    assert_eq!(names(&v)[3], "lonely");
}
