//! Table tests of the scale and update decisions, step by step, in the style of upstream's
//! StatefulSet control tests: each step feeds the plan the pods the previous step would leave.

use super::*;
use crate::pods::testing::{pod, with_label};
use crate::pods::SPECIFIED_DELETE_LABEL;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kruise_api::apps::common::{
    Lifecycle, LifecycleHook, UpdatePriorityStrategy, UpdatePriorityWeightTerm,
};
use serde_json::json;

/// `(ordinal, revision, ready)` of each pod present.
type PodsSpec<'a> = &'a [(i32, &'a str, bool)];
/// `(claim, storage)` pairs.
type ClaimsSpec<'a> = &'a [(&'a str, &'a str)];

const OLD: &str = "web-old";
const NEW: &str = "web-new";

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn settings(replicas: i32) -> Settings {
    Settings {
        name: "web".into(),
        replicas,
        max_unavailable: 1,
        scale_max_unavailable: i32::MAX,
        ..Default::default()
    }
}

fn parallel(replicas: i32, max_unavailable: i32) -> Settings {
    Settings {
        parallel: true,
        max_unavailable,
        pod_update_policy: PodUpdatePolicy::InPlaceIfPossible,
        ..settings(replicas)
    }
}

fn templates(change: serde_json::Value) -> BTreeMap<String, PodTemplateSpec> {
    let base = json!({"metadata": {"labels": {"app": "web"}},
                      "spec": {"containers": [{"name": "main", "image": "img:v1"}]}});
    let mut new = base.clone();
    for (k, v) in change.as_object().unwrap() {
        new["spec"]["containers"][0][k] = v.clone();
    }
    BTreeMap::from([
        (OLD.to_string(), serde_json::from_value(base).unwrap()),
        (NEW.to_string(), serde_json::from_value(new).unwrap()),
    ])
}

/// `(ordinal, revision, ready)` → Normal pods named `web-<ordinal>`.
fn pods_of(spec: &[(i32, &str, bool)]) -> Vec<Pod> {
    spec.iter()
        .map(|(o, rev, ready)| {
            with_label(
                pod(&format!("web-{o}"), rev, *ready),
                lifecycle::STATE_LABEL,
                "Normal",
            )
        })
        .collect()
}

fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(Time(now()));
    p
}

fn run_with(
    s: &Settings,
    pods: &[Pod],
    tpl: &BTreeMap<String, PodTemplateSpec>,
    claims: &[&str],
    current: &str,
) -> Plan {
    let obs = Observed {
        settings: s,
        pods: pods.iter().collect(),
        claims: claims.iter().map(|c| c.to_string()).collect(),
        claim_storage: BTreeMap::new(),
        current_revision: current,
        update_revision: NEW,
        templates: tpl,
    };
    plan(&obs, now())
}

fn run(s: &Settings, pods: &[Pod]) -> Plan {
    run_with(s, pods, &templates(json!({"image": "img:v2"})), &[], OLD)
}

fn created(p: &Plan) -> Vec<i32> {
    p.create.iter().map(|c| c.ordinal).collect()
}

fn deleted(p: &Plan) -> Vec<&str> {
    p.delete.iter().map(|d| d.name.as_str()).collect()
}

fn updated(p: &Plan) -> Vec<&str> {
    p.update.iter().map(|u| u.name.as_str()).collect()
}

#[test]
fn ordered_ready_creates_one_at_a_time_in_order() {
    let s = settings(3);
    // (pods present, expected creates, expected wait)
    let steps: &[(PodsSpec, &[i32], Option<&str>)] = &[
        (&[], &[0], None),
        (&[(0, NEW, false)], &[], Some("web-0")),
        (&[(0, NEW, true)], &[1], None),
        (&[(0, NEW, true), (1, NEW, false)], &[], Some("web-1")),
        (&[(0, NEW, true), (1, NEW, true)], &[2], None),
        (&[(0, NEW, true), (1, NEW, true), (2, NEW, true)], &[], None),
    ];
    for (i, (have, want, wait)) in steps.iter().enumerate() {
        let p = run(&s, &pods_of(have));
        assert_eq!(created(&p), *want, "step {} of {}", i + 1, steps.len());
        assert_eq!(p.waiting_on.as_deref(), *wait, "step {}", i + 1);
        assert!(p.delete.is_empty() && p.update.is_empty(), "step {}", i + 1);
    }
}

#[test]
fn ordered_ready_deletes_in_reverse_one_at_a_time() {
    let s = settings(1);
    let ready3 = pods_of(&[(0, NEW, true), (1, NEW, true), (2, NEW, true)]);
    // step 1: web-2 goes first
    let p = run(&s, &ready3);
    assert_eq!(deleted(&p), vec!["web-2"]);
    assert_eq!(p.delete[0].reason, DeleteReason::Condemned);
    // step 2: web-2 is terminating: wait for it
    let mut pods = ready3.clone();
    pods[2] = terminating(pods[2].clone());
    let p = run(&s, &pods);
    assert!(p.delete.is_empty());
    assert_eq!(p.waiting_on.as_deref(), Some("web-2"));
    // step 3: web-2 gone, web-1 next
    let p = run(&s, &ready3[..2]);
    assert_eq!(deleted(&p), vec!["web-1"]);
    // an unhealthy kept pod blocks ordered scale-down
    let p = run(&s, &pods_of(&[(0, NEW, false), (1, NEW, true)]));
    assert!(p.delete.is_empty());
}

#[test]
fn parallel_creates_and_deletes_without_waiting() {
    let s = parallel(3, 1);
    let p = run(&s, &[]);
    assert_eq!(created(&p), vec![0, 1, 2]);
    assert!(p.create.iter().all(|c| c.revision == NEW));
    let p = run(&s, &pods_of(&[(0, NEW, false)]));
    assert_eq!(created(&p), vec![1, 2]);
    let s1 = parallel(1, 1);
    let p = run(
        &s1,
        &pods_of(&[(0, NEW, true), (1, NEW, false), (2, NEW, true)]),
    );
    assert_eq!(deleted(&p), vec!["web-2", "web-1"]);
}

#[test]
fn scale_strategy_max_unavailable_limits_parallel_creates() {
    let s = Settings {
        scale_max_unavailable: 2,
        ..parallel(5, 1)
    };
    let steps: &[(PodsSpec, &[i32])] = &[
        (&[], &[0, 1]),
        (&[(0, NEW, false), (1, NEW, false)], &[]),
        (&[(0, NEW, true), (1, NEW, false)], &[2]),
        (&[(0, NEW, true), (1, NEW, true), (2, NEW, true)], &[3, 4]),
    ];
    for (i, (have, want)) in steps.iter().enumerate() {
        assert_eq!(created(&run(&s, &pods_of(have))), *want, "step {}", i + 1);
    }
}

#[test]
fn reserved_ordinals_and_start_are_skipped_and_condemned() {
    let s = Settings {
        reserved: [1].into(),
        ..parallel(3, 1)
    };
    assert_eq!(created(&run(&s, &[])), vec![0, 2, 3]);
    // reserving an ordinal that has a pod condemns the pod; the next free ordinal is created
    let p = run(
        &s,
        &pods_of(&[(0, NEW, true), (1, NEW, true), (2, NEW, true)]),
    );
    assert_eq!(created(&p), vec![3]);
    let p = run(
        &s,
        &pods_of(&[
            (0, NEW, true),
            (1, NEW, true),
            (2, NEW, true),
            (3, NEW, true),
        ]),
    );
    assert_eq!(deleted(&p), vec!["web-1"]);
    let s = Settings {
        start: 5,
        ..parallel(2, 1)
    };
    assert_eq!(created(&run(&s, &[])), vec![5, 6]);
}

#[test]
fn terminal_and_specified_pods_are_deleted() {
    let s = parallel(2, 1);
    let mut pods = pods_of(&[(0, NEW, true), (1, NEW, true)]);
    pods[1].status.as_mut().unwrap().phase = Some("Failed".into());
    let p = run(&s, &pods);
    assert_eq!(deleted(&p), vec!["web-1"]);
    assert_eq!(p.delete[0].reason, DeleteReason::Terminal);

    let mut pods = pods_of(&[(0, NEW, true), (1, NEW, true)]);
    pods[0] = with_label(pods[0].clone(), SPECIFIED_DELETE_LABEL, "true");
    pods[1] = with_label(pods[1].clone(), SPECIFIED_DELETE_LABEL, "true");
    let p = run(&s, &pods);
    assert_eq!(deleted(&p), vec!["web-1"], "maxUnavailable 1 lets one go");
    assert_eq!(p.delete[0].reason, DeleteReason::Specified);
}

#[test]
fn in_place_update_respects_max_unavailable_over_steps() {
    let s = parallel(5, 2);
    let all = |revs: [(&'static str, bool); 5]| -> Vec<Pod> {
        let spec: Vec<(i32, &str, bool)> = revs
            .iter()
            .enumerate()
            .map(|(i, (r, ok))| (i as i32, *r, *ok))
            .collect();
        pods_of(&spec)
    };
    // step 1 of 4: highest ordinals first, two at a time
    let p = run(&s, &all([(OLD, true); 5]));
    assert_eq!(updated(&p), vec!["web-4", "web-3"]);
    assert!(matches!(&p.update[0].action, UpdateAction::InPlace(spec)
        if spec.container_images.get("main").map(String::as_str) == Some("img:v2")));
    assert!(p.delete.is_empty());
    // step 2: both updating (not ready): nothing more
    let p = run(
        &s,
        &all([
            (OLD, true),
            (OLD, true),
            (OLD, true),
            (NEW, false),
            (NEW, false),
        ]),
    );
    assert!(p.update.is_empty());
    assert_eq!(p.waiting_on.as_deref(), Some("web-2"));
    // step 3: web-4 ready again: one slot frees up
    let p = run(
        &s,
        &all([
            (OLD, true),
            (OLD, true),
            (OLD, true),
            (NEW, false),
            (NEW, true),
        ]),
    );
    assert_eq!(updated(&p), vec!["web-2"]);
    // step 4: all but web-0 done
    let p = run(
        &s,
        &all([
            (OLD, true),
            (NEW, true),
            (NEW, true),
            (NEW, true),
            (NEW, true),
        ]),
    );
    assert_eq!(updated(&p), vec!["web-0"]);
}

#[test]
fn partition_keeps_the_lowest_ordinals() {
    // The docs' example: 5 pods, maxUnavailable 3, partition 4 → only web-4 updates; then
    // partition 0 → web-3, web-2 and web-1 together.
    let s = Settings {
        partition: 4,
        ..parallel(5, 3)
    };
    let old5 = pods_of(&[
        (0, OLD, true),
        (1, OLD, true),
        (2, OLD, true),
        (3, OLD, true),
        (4, OLD, true),
    ]);
    assert_eq!(updated(&run(&s, &old5)), vec!["web-4"]);
    let s0 = Settings {
        partition: 0,
        ..s.clone()
    };
    let mut pods = old5.clone();
    pods[4] = pods_of(&[(4, NEW, true)]).remove(0);
    assert_eq!(updated(&run(&s0, &pods)), vec!["web-3", "web-2", "web-1"]);
    // partition = replicas: nothing
    let s5 = Settings { partition: 5, ..s };
    assert!(run(&s5, &old5).update.is_empty());
}

#[test]
fn created_pods_below_partition_stay_on_the_current_revision() {
    let s = Settings {
        partition: 2,
        ..parallel(3, 1)
    };
    let p = run(&s, &[]);
    let revs: Vec<&str> = p.create.iter().map(|c| c.revision.as_str()).collect();
    assert_eq!(revs, vec![OLD, OLD, NEW]);
}

#[test]
fn recreate_policy_deletes_one_at_a_time_in_ordered_ready() {
    let s = settings(3);
    let p = run(
        &s,
        &pods_of(&[(0, OLD, true), (1, OLD, true), (2, OLD, true)]),
    );
    assert_eq!(deleted(&p), vec!["web-2"]);
    assert_eq!(p.delete[0].reason, DeleteReason::Update);
    // the recreated web-2 is not ready yet: OrderedReady waits before touching web-1
    let p = run(
        &s,
        &pods_of(&[(0, OLD, true), (1, OLD, true), (2, NEW, false)]),
    );
    assert!(p.delete.is_empty() && p.update.is_empty());
    assert_eq!(p.waiting_on.as_deref(), Some("web-2"));
}

#[test]
fn in_place_if_possible_falls_back_and_in_place_only_refuses() {
    let env_change = templates(json!({"env": [{"name": "A", "value": "1"}]}));
    let pods = pods_of(&[(0, OLD, true)]);
    let s = parallel(1, 1);
    let p = run_with(&s, &pods, &env_change, &[], OLD);
    assert_eq!(deleted(&p), vec!["web-0"]);
    let only = Settings {
        pod_update_policy: PodUpdatePolicy::InPlaceOnly,
        ..s
    };
    let p = run_with(&only, &pods, &env_change, &[], OLD);
    assert!(p.delete.is_empty());
    assert!(matches!(p.update[0].action, UpdateAction::Refuse(_)));
}

#[test]
fn paused_and_on_delete_do_not_update() {
    let pods = pods_of(&[(0, OLD, true), (1, OLD, true)]);
    let paused = Settings {
        paused: true,
        ..parallel(2, 2)
    };
    assert!(run(&paused, &pods).is_noop());
    let on_delete = Settings {
        on_delete: true,
        ..parallel(2, 2)
    };
    assert!(run(&on_delete, &pods).is_noop());
}

#[test]
fn unordered_update_follows_priority() {
    let s = Settings {
        priority: Some(UpdatePriorityStrategy {
            weight_priority: Some(vec![UpdatePriorityWeightTerm {
                weight: 50,
                match_selector: serde_json::from_value(json!({"matchLabels": {"first": "yes"}}))
                    .unwrap(),
            }]),
            order_priority: None,
        }),
        ..parallel(3, 1)
    };
    let mut pods = pods_of(&[(0, OLD, true), (1, OLD, true), (2, OLD, true)]);
    pods[0] = with_label(pods[0].clone(), "first", "yes");
    assert_eq!(updated(&run(&s, &pods)), vec!["web-0"]);
}

#[test]
fn min_ready_seconds_holds_ordered_creation() {
    let s = Settings {
        min_ready_seconds: 900,
        ..settings(2)
    };
    // web-0 has been ready for 600s of the 900 needed
    let p = run(&s, &pods_of(&[(0, NEW, true)]));
    assert!(p.create.is_empty());
    assert_eq!(p.requeue, Some(Duration::from_secs(300)));
}

#[test]
fn pre_delete_hook_holds_condemned_pods() {
    let hook = LifecycleHook {
        labels_handler: Some(BTreeMap::from([("hold".to_string(), "true".to_string())])),
        finalizers_handler: None,
        mark_pod_not_ready: None,
    };
    let s = Settings {
        lifecycle: Some(Lifecycle {
            pre_delete: Some(hook),
            ..Default::default()
        }),
        ..parallel(1, 1)
    };
    let mut pods = pods_of(&[(0, NEW, true), (1, NEW, true)]);
    pods[1] = with_label(pods[1].clone(), "hold", "true");
    // step 1: hooked → PreparingDelete
    let p = run(&s, &pods);
    assert_eq!(
        p.delete,
        vec![PodDelete {
            name: "web-1".into(),
            pre_delete: true,
            reason: DeleteReason::Condemned
        }]
    );
    // step 2: in PreparingDelete and still hooked → left alone
    pods[1] = with_label(pods[1].clone(), lifecycle::STATE_LABEL, "PreparingDelete");
    assert!(run(&s, &pods).delete.is_empty());
    // step 3: hook removed → deleted
    pods[1].metadata.labels.as_mut().unwrap().remove("hold");
    let p = run(&s, &pods);
    assert_eq!(
        p.delete,
        vec![PodDelete {
            name: "web-1".into(),
            pre_delete: false,
            reason: DeleteReason::Condemned
        }]
    );
}

#[test]
fn claims_of_scaled_away_ordinals_follow_when_scaled() {
    let tpl = templates(json!({}));
    let pods = pods_of(&[(0, NEW, true), (1, NEW, true), (2, NEW, true)]);
    let claims = [
        "data-web-0",
        "data-web-1",
        "data-web-2",
        "data-web-3",
        "other-web-4",
    ];
    let retain = Settings {
        claim_templates: vec!["data".into()],
        ..parallel(1, 1)
    };
    let p = run_with(&retain, &pods, &tpl, &claims, NEW);
    assert!(p.delete_claims.is_empty());
    let delete = Settings {
        when_scaled: Retention::Delete,
        ..retain
    };
    // step 1: web-1 and web-2 still exist: only the orphaned data-web-3 goes
    let p = run_with(&delete, &pods, &tpl, &claims, NEW);
    assert_eq!(p.delete_claims, vec!["data-web-3".to_string()]);
    assert_eq!(deleted(&p), vec!["web-2", "web-1"]);
    // step 2: the pods are gone: their claims go too, web-0's stays
    let p = run_with(&delete, &pods[..1], &tpl, &claims[..3], NEW);
    assert_eq!(
        p.delete_claims,
        vec!["data-web-1".to_string(), "data-web-2".to_string()]
    );
}

#[test]
fn finished_in_place_update_refreshes_condition_and_lifecycle() {
    let s = parallel(1, 1);
    let mut p0 = with_label(pod("web-0", NEW, true), lifecycle::STATE_LABEL, "Updating");
    p0.spec.as_mut().unwrap().readiness_gates =
        Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
            condition_type: IN_PLACE_UPDATE_READY.into(),
        }]);
    let p = run(&s, &[p0]);
    assert_eq!(
        p.refresh,
        vec![
            ("web-0".to_string(), Refresh::SetInPlaceReady(true)),
            (
                "web-0".to_string(),
                Refresh::Lifecycle(LifecycleState::Normal)
            ),
        ]
    );
}

fn resizing(replicas: i32, template_storage: &str) -> Settings {
    Settings {
        claim_templates: vec!["data".into()],
        claim_storage: BTreeMap::from([("data".into(), template_storage.into())]),
        resize_claims: true,
        ..parallel(replicas, 1)
    }
}

fn run_claims(s: &Settings, pods: &[Pod], storage: &[(&str, &str)]) -> Plan {
    let tpl = templates(json!({"image": "img:v2"}));
    let obs = Observed {
        settings: s,
        pods: pods.iter().collect(),
        claims: storage.iter().map(|(c, _)| c.to_string()).collect(),
        claim_storage: storage
            .iter()
            .map(|(c, q)| (c.to_string(), q.to_string()))
            .collect(),
        current_revision: OLD,
        update_revision: NEW,
        templates: &tpl,
    };
    plan(&obs, now())
}

fn resized(p: &Plan) -> Vec<(&str, &str)> {
    p.resize_claims
        .iter()
        .map(|r| (r.claim.as_str(), r.storage.as_str()))
        .collect()
}

#[test]
fn claims_of_updated_pods_grow_to_the_template_storage() {
    let s = resizing(3, "2Gi");
    // (pods, claim requests, expected resizes)
    let cases: &[(PodsSpec, ClaimsSpec, ClaimsSpec)] = &[
        // Nothing is on the update revision yet: claims wait for their pod.
        (
            &[(0, OLD, true), (1, OLD, true), (2, OLD, true)],
            &[
                ("data-web-0", "1Gi"),
                ("data-web-1", "1Gi"),
                ("data-web-2", "1Gi"),
            ],
            &[],
        ),
        // web-2 was updated: only its claim grows.
        (
            &[(0, OLD, true), (1, OLD, true), (2, NEW, true)],
            &[
                ("data-web-0", "1Gi"),
                ("data-web-1", "1Gi"),
                ("data-web-2", "1Gi"),
            ],
            &[("data-web-2", "2Gi")],
        ),
        // Already large enough (other units compare by bytes), or missing: left alone.
        (
            &[(0, NEW, true), (1, NEW, true), (2, NEW, true)],
            &[("data-web-0", "2048Mi"), ("data-web-1", "3Gi")],
            &[],
        ),
        // A request that does not parse is never overwritten.
        (&[(0, NEW, true)], &[("data-web-0", "lots")], &[]),
    ];
    for (i, (pods, storage, want)) in cases.iter().enumerate() {
        let p = run_claims(&s, &pods_of(pods), storage);
        assert_eq!(resized(&p), *want, "case {i}");
    }
    // A resize alone is work: the plan is not a no-op, and no-op once the claims caught up.
    let all_new = pods_of(&[(0, NEW, true), (1, NEW, true), (2, NEW, true)]);
    let small = [
        ("data-web-0", "1Gi"),
        ("data-web-1", "2Gi"),
        ("data-web-2", "2Gi"),
    ];
    let p = run_claims(&s, &all_new, &small);
    assert_eq!(resized(&p), vec![("data-web-0", "2Gi")]);
    assert!(!p.is_noop());
    let caught_up = [
        ("data-web-0", "2Gi"),
        ("data-web-1", "2Gi"),
        ("data-web-2", "2Gi"),
    ];
    assert!(run_claims(&s, &all_new, &caught_up).is_noop());
}

#[test]
fn claims_never_shrink_and_stay_put_without_the_strategy() {
    let pods = pods_of(&[(0, NEW, true), (1, NEW, true)]);
    let storage = [("data-web-0", "5Gi"), ("data-web-1", "1Gi")];
    // A smaller template is accepted but not applied.
    let shrink = run_claims(&resizing(2, "2Gi"), &pods, &storage);
    assert_eq!(resized(&shrink), vec![("data-web-1", "2Gi")]);
    // OnDelete (or the gate off): claims keep their size.
    let off = Settings {
        resize_claims: false,
        ..resizing(2, "10Gi")
    };
    assert!(run_claims(&off, &pods, &storage).resize_claims.is_empty());
    // A terminating pod's claim is not touched.
    let gone = vec![terminating(pods[1].clone())];
    assert!(run_claims(&resizing(2, "10Gi"), &gone, &storage)
        .resize_claims
        .is_empty());
}
