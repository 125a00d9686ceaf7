//! Table tests of the scale and update decisions, in the style of upstream's scale/update tests.

use super::*;
use crate::pods::testing::{pod, with_label};
use crate::pods::SPECIFIED_DELETE_LABEL;
use kruise_api::apps::common::{Lifecycle, LifecycleHook};
use serde_json::json;

const OLD: &str = "demo-old";
const NEW: &str = "demo-new";

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn settings(replicas: i32, partition: i32, max_unavailable: i32, max_surge: i32) -> Settings {
    Settings {
        replicas,
        partition,
        max_unavailable,
        max_surge,
        scale_max_unavailable: i32::MAX,
        update_type: UpdateType::InPlaceIfPossible,
        ..Default::default()
    }
}

fn templates(new_change: serde_json::Value) -> BTreeMap<String, PodTemplateSpec> {
    let base = json!({"metadata": {"labels": {"app": "demo"}},
                      "spec": {"containers": [{"name": "main", "image": "img:v1"}]}});
    let mut new = base.clone();
    if let Some(obj) = new_change.as_object() {
        for (k, v) in obj {
            new["spec"]["containers"][0][k] = v.clone();
        }
    }
    BTreeMap::from([
        (OLD.to_string(), serde_json::from_value(base).unwrap()),
        (NEW.to_string(), serde_json::from_value(new).unwrap()),
    ])
}

fn pods_of(spec: &[(&str, &str, bool)]) -> Vec<Pod> {
    spec.iter()
        .map(|(name, rev, ready)| {
            let p = with_label(pod(name, rev, *ready), plan_id_label(), name);
            with_label(p, lifecycle::STATE_LABEL, "Normal")
        })
        .collect()
}

fn plan_id_label() -> &'static str {
    INSTANCE_ID_LABEL
}

fn run(s: &Settings, pods: &[Pod], tpl: &BTreeMap<String, PodTemplateSpec>) -> Plan {
    let obs = Observed {
        settings: s,
        pods: pods.iter().collect(),
        pvc_instance_ids: BTreeSet::new(),
        current_revision: OLD,
        update_revision: NEW,
        templates: tpl,
        allow_rollback: false,
    };
    plan(&obs, now())
}

fn image_v2() -> serde_json::Value {
    json!({"image": "img:v2"})
}

#[test]
fn diffs_table() {
    struct Case {
        name: &'static str,
        s: Settings,
        pods: Vec<(&'static str, &'static str, bool)>,
        want: Diffs,
    }
    let cases = [
        Case {
            name: "empty cloneset",
            s: settings(0, 0, 1, 0),
            pods: vec![],
            want: Diffs::default(),
        },
        Case {
            name: "increase replicas to 5 (step 1/2)",
            s: settings(5, 0, 1, 0),
            pods: vec![],
            want: Diffs {
                scale_up_num: 5,
                scale_up_limit: 5,
                ..Default::default()
            },
        },
        Case {
            name: "increase replicas to 5 (step 2/2)",
            s: settings(5, 0, 1, 0),
            pods: vec![
                ("a", NEW, false),
                ("b", NEW, false),
                ("c", NEW, false),
                ("d", NEW, false),
                ("e", NEW, false),
            ],
            want: Diffs::default(),
        },
        Case {
            name: "step 1 of 3: 5 pods, partition 3 -> update 2",
            s: settings(5, 3, 1, 0),
            pods: vec![
                ("a", OLD, true),
                ("b", OLD, true),
                ("c", OLD, true),
                ("d", OLD, true),
                ("e", OLD, true),
            ],
            want: Diffs {
                update_num: 2,
                update_max_unavailable: 1,
                ..Default::default()
            },
        },
        Case {
            name: "step 2 of 3: one updated pod not ready yet",
            s: settings(5, 3, 1, 0),
            pods: vec![
                ("a", NEW, false),
                ("b", OLD, true),
                ("c", OLD, true),
                ("d", OLD, true),
                ("e", OLD, true),
            ],
            want: Diffs {
                update_num: 1,
                update_max_unavailable: 1,
                ..Default::default()
            },
        },
        Case {
            name: "step 3 of 3: two updated, partition reached",
            s: settings(5, 3, 1, 0),
            pods: vec![
                ("a", NEW, true),
                ("b", NEW, true),
                ("c", OLD, true),
                ("d", OLD, true),
                ("e", OLD, true),
            ],
            want: Diffs::default(),
        },
        Case {
            name: "maxSurge 1: surge one pod on the new revision",
            s: settings(5, 0, 0, 1),
            pods: vec![
                ("a", OLD, true),
                ("b", OLD, true),
                ("c", OLD, true),
                ("d", OLD, true),
                ("e", OLD, true),
            ],
            want: Diffs {
                scale_up_num: 1,
                scale_up_limit: 1,
                use_surge: 1,
                update_num: 5,
                update_max_unavailable: 0,
                ..Default::default()
            },
        },
        Case {
            name: "scale down 5 -> 3 with a rollout pending on old pods",
            s: settings(3, 0, 1, 0),
            pods: vec![
                ("a", OLD, true),
                ("b", OLD, true),
                ("c", NEW, true),
                ("d", NEW, true),
                ("e", NEW, true),
            ],
            want: Diffs {
                scale_down_num: 2,
                scale_down_num_old_revision: 2,
                delete_ready_limit: 3,
                // scaling goes first: the old pods are the ones removed
                update_num: 0,
                ..Default::default()
            },
        },
    ];
    for c in cases {
        let pods = pods_of(&c.pods);
        let refs: Vec<&Pod> = pods.iter().collect();
        let got = diffs::calculate(&c.s, &refs, OLD, NEW, now(), false);
        assert_eq!(got, c.want, "case {}", c.name);
    }
}

#[test]
fn scale_up_creates_on_the_update_revision_and_reuses_orphaned_pvc_ids() {
    let s = settings(3, 0, 1, 0);
    let tpl = templates(image_v2());
    let pods = pods_of(&[("a", NEW, true)]);
    let obs = Observed {
        settings: &s,
        pods: pods.iter().collect(),
        pvc_instance_ids: BTreeSet::from(["a".to_string(), "zzzzz".to_string()]),
        current_revision: NEW,
        update_revision: NEW,
        templates: &tpl,
        allow_rollback: false,
    };
    let p = plan(&obs, now());
    assert_eq!(
        p.create,
        vec![
            PodCreate {
                revision: NEW.into(),
                instance_id: Some("zzzzz".into())
            },
            PodCreate {
                revision: NEW.into(),
                instance_id: None
            },
        ]
    );
    assert!(p.update.is_empty(), "never scale and update in one round");
}

#[test]
fn scale_up_keeps_partition_on_the_old_revision() {
    let s = settings(4, 2, 1, 0);
    let tpl = templates(image_v2());
    let pods = pods_of(&[("a", OLD, true), ("b", NEW, true)]);
    let p = run(&s, &pods, &tpl);
    let revs: Vec<&str> = p.create.iter().map(|c| c.revision.as_str()).collect();
    assert_eq!(revs, [OLD, NEW]);
}

#[test]
fn scale_up_is_capped_by_scale_strategy_max_unavailable() {
    let mut s = settings(5, 0, 1, 0);
    s.scale_max_unavailable = 2;
    let tpl = templates(json!({}));
    let pods = pods_of(&[("a", NEW, false)]);
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.create.len(), 1, "one unavailable already, limit 2");
}

#[test]
fn scale_down_deletes_unready_and_old_first() {
    let s = settings(2, 0, 1, 0);
    let tpl = templates(json!({}));
    let pods = pods_of(&[
        ("a", NEW, true),
        ("b", NEW, false),
        ("c", OLD, true),
        ("d", NEW, true),
    ]);
    let p = run(&s, &pods, &tpl);
    let names: Vec<&str> = p.delete.iter().map(|d| d.name.as_str()).collect();
    // 2 to delete: the old pod "c" is ranked first by revision, "b" by readiness.
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"c") && names.contains(&"b"), "{names:?}");
}

#[test]
fn specified_delete_replaces_the_pod_and_honours_the_ready_budget() {
    let mut s = settings(3, 0, 1, 0);
    s.pods_to_delete = BTreeSet::from(["a".to_string()]);
    let tpl = templates(json!({}));
    let mut pods = pods_of(&[("a", NEW, true), ("b", NEW, true), ("c", NEW, true)]);
    pods[1] = with_label(pods[1].clone(), SPECIFIED_DELETE_LABEL, "");
    // step 1 of 4: two marked, all ready, maxUnavailable 1 -> delete one
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.delete.len(), 1, "{:?}", p.delete);
    assert!(p.create.is_empty());
    // step 2 of 4: "a" gone -> a replacement is created
    let step2: Vec<Pod> = pods[1..].to_vec();
    let p = run(&s, &step2, &tpl);
    assert_eq!(p.create.len(), 1);
    assert!(p.delete.is_empty());
    // step 3 of 4: replacement not ready -> no budget to delete the ready marked pod
    let mut step3 = step2.clone();
    step3.extend(pods_of(&[("x", NEW, false)]));
    let p = run(&s, &step3, &tpl);
    assert!(p.delete.is_empty() && p.create.is_empty(), "{p:?}");
    // step 4 of 4: replacement ready -> "b" goes
    let mut step4 = step2.clone();
    step4.extend(pods_of(&[("x", NEW, true)]));
    let p = run(&s, &step4, &tpl);
    assert_eq!(
        p.delete,
        vec![PodDelete {
            name: "b".into(),
            pre_delete: false
        }]
    );
}

#[test]
fn max_surge_creates_a_replacement_before_deleting_a_marked_pod() {
    let s = settings(2, 0, 0, 1);
    let tpl = templates(json!({}));
    let mut pods = pods_of(&[("a", NEW, true), ("b", NEW, true)]);
    pods[0] = with_label(pods[0].clone(), SPECIFIED_DELETE_LABEL, "true");
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.create.len(), 1, "{p:?}");
    assert!(p.delete.is_empty());
}

fn pre_delete_settings() -> Settings {
    let mut s = settings(1, 0, 1, 0);
    s.lifecycle = Some(Lifecycle {
        pre_delete: Some(LifecycleHook {
            labels_handler: Some(BTreeMap::from([("hold".to_string(), "true".to_string())])),
            ..Default::default()
        }),
        ..Default::default()
    });
    s
}

#[test]
fn pre_delete_hook_holds_deletion_until_released() {
    let s = pre_delete_settings();
    let tpl = templates(json!({}));
    let hooked = pods_of(&[("a", NEW, true), ("b", NEW, true)]);
    let hooked: Vec<Pod> = hooked
        .into_iter()
        .map(|p| with_label(p, "hold", "true"))
        .collect();
    // step 1: one too many -> goes to PreparingDelete, not deleted
    let p = run(&s, &hooked, &tpl);
    assert_eq!(p.delete.len(), 1);
    assert!(p.delete[0].pre_delete);
    // step 2: still hooked in PreparingDelete -> nothing
    let mut held = hooked.clone();
    held[1] = with_label(held[1].clone(), lifecycle::STATE_LABEL, "PreparingDelete");
    let p = run(&s, &held, &tpl);
    assert!(p.delete.is_empty() && p.create.is_empty(), "{p:?}");
    // step 3: hook label removed -> deleted for real
    let mut released = held.clone();
    released[1].metadata.labels.as_mut().unwrap().remove("hold");
    let p = run(&s, &released, &tpl);
    assert_eq!(
        p.delete,
        vec![PodDelete {
            name: pods::name(&released[1]).to_string(),
            pre_delete: false
        }]
    );
}

#[test]
fn update_step_one_of_three_partition_three_updates_two_within_max_unavailable() {
    let s = settings(5, 3, 1, 0);
    let tpl = templates(image_v2());
    // step 1 of 3: 5 pods, partition 3 -> update 2, but only 1 at a time (maxUnavailable 1)
    let pods = pods_of(&[
        ("a", OLD, true),
        ("b", OLD, true),
        ("c", OLD, true),
        ("d", OLD, true),
        ("e", OLD, true),
    ]);
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.diffs.update_num, 2);
    assert_eq!(p.update.len(), 1);
    assert!(
        matches!(p.update[0].action, UpdateAction::InPlace(ref spec) if spec.container_images["main"] == "img:v2")
    );
    // step 2 of 3: the first is updating (unavailable) -> nothing more
    let mut step2 = pods.clone();
    let first = p.update[0].name.clone();
    let idx = step2.iter().position(|x| pods::name(x) == first).unwrap();
    step2[idx] = with_label(pod(&first, NEW, false), lifecycle::STATE_LABEL, "Updating");
    let p2 = run(&s, &step2, &tpl);
    assert!(p2.update.is_empty(), "{:?}", p2.update);
    // step 3 of 3: first done and available -> the second one
    step2[idx] = pods_of(&[(first.as_str(), NEW, true)]).remove(0);
    let p3 = run(&s, &step2, &tpl);
    assert_eq!(p3.update.len(), 1);
    assert_ne!(p3.update[0].name, first);
    // and then: partition reached, nothing left
    let done: Vec<Pod> = pods_of(&[
        ("a", NEW, true),
        ("b", NEW, true),
        ("c", OLD, true),
        ("d", OLD, true),
        ("e", OLD, true),
    ]);
    assert!(run(&s, &done, &tpl).update.is_empty());
}

#[test]
fn non_image_change_recreates_or_is_refused() {
    let tpl = templates(json!({"ports": [{"containerPort": 80}]}));
    let pods = pods_of(&[("a", OLD, true), ("b", OLD, true)]);
    let s = settings(2, 0, 1, 0);
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].action, UpdateAction::Recreate);
    let mut only = s.clone();
    only.update_type = UpdateType::InPlaceOnly;
    let p = run(&only, &pods, &tpl);
    assert!(
        matches!(&p.update[0].action, UpdateAction::Refuse(m) if m.contains("update strategy is InPlaceOnly but can not update in-place"))
    );
    let mut recreate = s.clone();
    recreate.update_type = UpdateType::ReCreate;
    let p = run(&recreate, &pods, &templates(image_v2()));
    assert_eq!(p.update[0].action, UpdateAction::Recreate);
}

#[test]
fn paused_stops_updates_but_not_scaling() {
    let mut s = settings(3, 0, 1, 0);
    s.paused = true;
    let tpl = templates(image_v2());
    let pods = pods_of(&[("a", OLD, true), ("b", OLD, true), ("c", OLD, true)]);
    assert!(run(&s, &pods, &tpl).update.is_empty());
    s.replicas = 4;
    assert_eq!(run(&s, &pods, &tpl).create.len(), 1);
}

#[test]
fn priority_decides_which_pod_goes_first() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use kruise_api::apps::common::{UpdatePriorityStrategy, UpdatePriorityWeightTerm};
    let mut s = settings(3, 0, 1, 0);
    s.priority = Some(UpdatePriorityStrategy {
        weight_priority: Some(vec![UpdatePriorityWeightTerm {
            weight: 10,
            match_selector: LabelSelector {
                match_labels: Some(BTreeMap::from([("first".to_string(), "yes".to_string())])),
                ..Default::default()
            },
        }]),
        order_priority: None,
    });
    let tpl = templates(image_v2());
    let mut pods = pods_of(&[("a", OLD, true), ("b", OLD, true), ("c", OLD, true)]);
    pods[2] = with_label(pods[2].clone(), "first", "yes");
    let p = run(&s, &pods, &tpl);
    assert_eq!(p.update.len(), 1);
    assert_eq!(p.update[0].name, "c");
}

#[test]
fn refresh_moves_new_pods_to_normal_and_sets_the_inplace_condition() {
    let s = settings(1, 0, 1, 0);
    let tpl = templates(json!({}));
    let mut p0 = with_label(
        pod("a", NEW, false),
        lifecycle::STATE_LABEL,
        "PreparingNormal",
    );
    p0.spec.as_mut().unwrap().readiness_gates =
        Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
            condition_type: IN_PLACE_UPDATE_READY.into(),
        }]);
    let p = run(&s, &[p0.clone()], &tpl);
    assert_eq!(
        p.refresh,
        vec![
            ("a".to_string(), Refresh::SetInPlaceReady(true)),
            ("a".to_string(), Refresh::Lifecycle(LifecycleState::Normal)),
        ]
    );
    let mut unscheduled = p0;
    unscheduled.spec.as_mut().unwrap().node_name = None;
    let p = run(&s, &[unscheduled], &tpl);
    assert_eq!(
        p.refresh,
        vec![("a".to_string(), Refresh::SetInPlaceReady(true))]
    );
}

#[test]
fn grace_period_requeues_then_finishes() {
    let s = settings(1, 0, 1, 0);
    let tpl = templates(image_v2());
    let mut p0 = pods_of(&[("a", OLD, true)]).remove(0);
    let spec = inplace::UpdateSpec {
        revision: NEW.into(),
        container_images: BTreeMap::from([("main".to_string(), "img:v2".to_string())]),
        grace_seconds: 3,
        ..Default::default()
    };
    let start = now() - k8s_openapi::jiff::SignedDuration::from_secs(1);
    inplace::begin_update(&mut p0, &spec, &BTreeMap::new(), start);
    let p = run(&s, &[p0.clone()], &tpl);
    assert!(p.refresh.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(2)));
    let late = Observed {
        settings: &s,
        pods: vec![&p0],
        pvc_instance_ids: BTreeSet::new(),
        current_revision: OLD,
        update_revision: NEW,
        templates: &tpl,
        allow_rollback: false,
    };
    let p = plan(
        &late,
        now() + k8s_openapi::jiff::SignedDuration::from_secs(5),
    );
    assert_eq!(p.refresh, vec![("a".to_string(), Refresh::FinishGrace)]);
}

#[test]
fn disabled_pvc_reuse_deletes_orphaned_claims() {
    let mut s = settings(1, 0, 1, 0);
    s.disable_pvc_reuse = true;
    let tpl = templates(json!({}));
    let pods = pods_of(&[("a", NEW, true)]);
    let obs = Observed {
        settings: &s,
        pods: pods.iter().collect(),
        pvc_instance_ids: BTreeSet::from(["a".to_string(), "gone1".to_string()]),
        current_revision: NEW,
        update_revision: NEW,
        templates: &tpl,
        allow_rollback: false,
    };
    assert_eq!(plan(&obs, now()).delete_pvc_ids, vec!["gone1".to_string()]);
}

fn gated(p: Pod) -> Pod {
    let mut p = p;
    crate::podreadiness::inject_gate(p.spec.as_mut().unwrap());
    p
}

fn with_ready_keys(p: Pod, keys: &[&str]) -> Pod {
    let mut p = p;
    crate::podreadiness::set_keys(&mut p, LIFECYCLE_USER_AGENT, keys, now());
    p
}

fn ready_steps(p: &Plan) -> Vec<(String, Vec<String>)> {
    p.refresh
        .iter()
        .filter_map(|(n, r)| match r {
            Refresh::PodReadyKeys(k) => Some((n.clone(), k.clone())),
            _ => None,
        })
        .collect()
}

fn mark_settings() -> Settings {
    let hook = || LifecycleHook {
        labels_handler: Some(BTreeMap::from([("hold".to_string(), "true".to_string())])),
        mark_pod_not_ready: Some(true),
        ..Default::default()
    };
    let mut s = settings(1, 0, 1, 0);
    s.lifecycle = Some(Lifecycle {
        pre_delete: Some(hook()),
        in_place_update: Some(hook()),
        ..Default::default()
    });
    s
}

#[test]
fn kruise_pod_ready_is_initialised_for_gated_pods_only() {
    let s = settings(1, 0, 1, 0);
    let tpl = templates(json!({}));
    let plain = pods_of(&[("a", NEW, true)]);
    assert!(ready_steps(&run(&s, &plain, &tpl)).is_empty());
    let g = vec![gated(plain[0].clone())];
    assert_eq!(
        ready_steps(&run(&s, &g, &tpl)),
        vec![("a".to_string(), vec![])]
    );
    // initialised: nothing more to do
    let done = vec![with_ready_keys(g[0].clone(), &[])];
    assert!(run(&s, &done, &tpl).is_noop());
}

#[test]
fn mark_pod_not_ready_holds_pods_only_in_hooked_states() {
    let tpl = templates(json!({}));
    let marked = mark_settings();
    let unmarked = settings(1, 0, 1, 0);
    let in_state = |state: &str, keys: &[&str]| {
        let p = gated(pods_of(&[("a", NEW, true)])[0].clone());
        let p = with_label(with_label(p, "hold", "true"), lifecycle::STATE_LABEL, state);
        with_ready_keys(p, keys)
    };
    struct Case {
        name: &'static str,
        s: Settings,
        pod: Pod,
        want: Option<Vec<&'static str>>,
    }
    let cases = [
        Case {
            name: "PreparingDelete holds preDeleteHook",
            s: marked.clone(),
            pod: in_state("PreparingDelete", &[]),
            want: Some(vec![PRE_DELETE_KEY]),
        },
        Case {
            name: "PreparingDelete already held: nothing",
            s: marked.clone(),
            pod: in_state("PreparingDelete", &[PRE_DELETE_KEY]),
            want: None,
        },
        Case {
            name: "PreparingUpdate holds preUpdateHook",
            s: marked.clone(),
            pod: in_state("PreparingUpdate", &[]),
            want: Some(vec![PRE_UPDATE_KEY]),
        },
        Case {
            name: "Updated releases preUpdateHook",
            s: marked.clone(),
            pod: in_state("Updated", &[PRE_UPDATE_KEY]),
            want: Some(vec![]),
        },
        Case {
            name: "Normal never stays held",
            s: marked.clone(),
            pod: in_state("Normal", &[PRE_DELETE_KEY]),
            want: Some(vec![]),
        },
        Case {
            name: "without markPodNotReady a PreparingDelete pod is released",
            s: unmarked.clone(),
            pod: in_state("PreparingDelete", &[PRE_DELETE_KEY]),
            want: Some(vec![]),
        },
    ];
    for c in cases {
        let p = run(&c.s, &[c.pod], &tpl);
        let want: Vec<(String, Vec<String>)> = c
            .want
            .into_iter()
            .map(|k| ("a".to_string(), k.into_iter().map(String::from).collect()))
            .collect();
        assert_eq!(ready_steps(&p), want, "{}", c.name);
    }
}

#[test]
fn updating_keeps_its_key_until_the_update_completes() {
    let s = mark_settings();
    assert_eq!(
        not_ready_keys(&s, LifecycleState::Updating, &[PRE_UPDATE_KEY.to_string()]),
        vec![PRE_UPDATE_KEY.to_string()]
    );
    assert!(not_ready_keys(&s, LifecycleState::Updating, &[]).is_empty());
    assert!(not_ready_keys(&s, LifecycleState::Normal, &[PRE_UPDATE_KEY.to_string()]).is_empty());
}

#[test]
fn mark_pod_not_ready_never_returns_preparing_delete_pods_to_normal() {
    let tpl = templates(json!({}));
    let held = |s: &Settings| {
        let p = gated(pods_of(&[("a", NEW, true)])[0].clone());
        let p = with_label(
            with_label(p, "hold", "true"),
            lifecycle::STATE_LABEL,
            "PreparingDelete",
        );
        let p = with_ready_keys(p, &[PRE_DELETE_KEY]);
        let mut s = s.clone();
        s.replicas = 2;
        run(&s, &[p], &tpl)
    };
    let p = held(&mark_settings());
    assert!(p.regret.is_empty());
    assert_eq!(p.create.len(), 1);
    let mut unmarked = mark_settings();
    if let Some(l) = unmarked.lifecycle.as_mut() {
        l.pre_delete.as_mut().unwrap().mark_pod_not_ready = None;
    }
    let p = held(&unmarked);
    assert_eq!(p.regret, vec!["a".to_string()]);
    assert!(
        p.create.is_empty(),
        "regret and creation never share a round"
    );
}

#[test]
fn regret_counts_preparing_delete_pods_as_planned_deletions() {
    // 1 Normal + 1 PreparingDelete, replicas back to 2: the held pod is taken back, nothing created
    let tpl = templates(json!({}));
    let mut s = pre_delete_settings();
    s.replicas = 2;
    let pods = pods_of(&[("a", NEW, true), ("b", NEW, true)]);
    let held = vec![
        pods[0].clone(),
        with_label(
            with_label(pods[1].clone(), "hold", "true"),
            lifecycle::STATE_LABEL,
            "PreparingDelete",
        ),
    ];
    let p = run(&s, &held, &tpl);
    assert_eq!(p.regret, vec!["b".to_string()]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    // replicas still 1: the held pod stays held
    s.replicas = 1;
    let p = run(&s, &held, &tpl);
    assert!(p.regret.is_empty() && p.create.is_empty(), "{p:?}");
    // with markPodNotReady it stays held even at 2, and nothing is created while it counts
    let mut marked = mark_settings();
    marked.replicas = 2;
    let p = run(&marked, &held, &tpl);
    assert!(p.regret.is_empty() && p.create.is_empty(), "{p:?}");
}
