use super::*;
use k8s_openapi::api::core::v1::ContainerStatus;
use serde_json::json;

fn template(v: serde_json::Value) -> PodTemplateSpec {
    serde_json::from_value(v).expect("valid template")
}

fn base() -> serde_json::Value {
    json!({
        "metadata": {"labels": {"app": "g"}},
        "spec": {"containers": [
            {"name": "main", "image": "img:v1", "env": [{"name": "test", "value": "foo"}]},
            {"name": "side", "image": "side:v1"}
        ]}
    })
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

#[test]
fn image_and_metadata_changes_are_in_place() {
    let old = template(base());
    let mut new = base();
    new["spec"]["containers"][0]["image"] = json!("img:v2");
    new["metadata"]["labels"]["tier"] = json!("web");
    new["metadata"]["annotations"] = json!({"note": "x"});
    let spec = calculate_spec(&old, &template(new), "demo-2", 0).expect("in place");
    assert_eq!(
        spec.container_images,
        BTreeMap::from([("main".to_string(), "img:v2".to_string())])
    );
    assert_eq!(spec.labels.get("tier"), Some(&Some("web".to_string())));
    assert_eq!(spec.annotations.get("note"), Some(&Some("x".to_string())));
}

#[test]
fn other_changes_need_recreate() {
    let old = template(base());
    let cases = [
        ("/spec/containers/0/env/0/value", json!("bar")),
        ("/spec/containers/0/ports", json!([{"containerPort": 80}])),
        ("/spec/containers/1/name", json!("other")),
        ("/spec/nodeSelector", json!({"a": "b"})),
        ("/metadata/finalizers", json!(["x"])),
    ];
    for (path, value) in cases {
        let mut new = base();
        *new.pointer_mut(path.rsplit_once('/').unwrap().0)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .entry(path.rsplit_once('/').unwrap().1)
            .or_insert(json!(null)) = value;
        assert_eq!(
            calculate_spec(&old, &template(new), "r", 0),
            None,
            "{path} must not be in place"
        );
    }
    let mut added = base();
    added["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "x", "image": "x"}));
    assert_eq!(calculate_spec(&old, &template(added), "r", 0), None);
}

fn running_pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "labels": {"controller-revision-hash": "demo-1"}},
        "spec": {"containers": [{"name": "main", "image": "img:v1"}, {"name": "side", "image": "side:v1"}],
                 "readinessGates": [{"conditionType": "InPlaceUpdateReady"}]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": "main", "image": "img:v1", "imageID": "img@sha256:1", "ready": true, "restartCount": 0},
            {"name": "side", "image": "side:v1", "imageID": "side@sha256:1", "ready": true, "restartCount": 0}
        ]}
    }))
    .unwrap()
}

fn image_spec(grace: i32) -> UpdateSpec {
    UpdateSpec {
        revision: "demo-2".into(),
        container_images: BTreeMap::from([("main".to_string(), "img:v2".to_string())]),
        grace_seconds: grace,
        ..Default::default()
    }
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("controller-revision-hash".to_string(), "demo-2".to_string())])
}

#[test]
fn update_without_grace_patches_images_and_completes_on_new_image_id() {
    let mut pod = running_pod();
    begin_update(&mut pod, &image_spec(0), &labels(), t0());
    let spec = pod.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("img:v2"));
    assert_eq!(spec.containers[1].image.as_deref(), Some("side:v1"));
    assert_eq!(crate::revision::pod_revision(&pod), "demo-2");
    let st = state(&pod).unwrap();
    assert_eq!(st.last_container_statuses["main"].image_id, "img@sha256:1");
    assert!(
        !is_completed(&pod),
        "kubelet has not reported the new image yet"
    );
    let statuses = pod
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap();
    statuses[0] = ContainerStatus {
        name: "main".into(),
        image: "img:v2".into(),
        image_id: "img@sha256:2".into(),
        ..Default::default()
    };
    assert!(is_completed(&pod));
}

#[test]
fn grace_period_holds_images_back_until_it_has_passed() {
    let mut pod = running_pod();
    begin_update(&mut pod, &image_spec(3), &labels(), t0());
    assert_eq!(
        pod.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("img:v1")
    );
    assert!(!is_completed(&pod));
    let t1 = t0() + k8s_openapi::jiff::SignedDuration::from_secs(1);
    assert_eq!(grace_remaining(&pod, t1), Some(Duration::from_secs(2)));
    assert!(!finish_grace(&mut pod, t1));
    let t3 = t0() + k8s_openapi::jiff::SignedDuration::from_secs(3);
    assert!(finish_grace(&mut pod, t3));
    assert_eq!(
        pod.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("img:v2")
    );
    assert_eq!(grace_spec(&pod), None);
    assert_eq!(state(&pod).unwrap().container_batches_record.len(), 1);
}

#[test]
fn conditions_and_gates() {
    let mut pod = running_pod();
    assert!(has_readiness_gate(&pod));
    assert!(set_condition(
        &mut pod,
        IN_PLACE_UPDATE_READY,
        false,
        Some(REASON_START),
        t0()
    ));
    assert!(!set_condition(
        &mut pod,
        IN_PLACE_UPDATE_READY,
        false,
        Some(REASON_START),
        t0()
    ));
    assert!(set_condition(
        &mut pod,
        IN_PLACE_UPDATE_READY,
        true,
        None,
        t0()
    ));
    let mut spec = pod.spec.clone().unwrap();
    assert!(!inject_readiness_gate(&mut spec));
    spec.readiness_gates = None;
    assert!(inject_readiness_gate(&mut spec));
    assert_eq!(spec.readiness_gates.unwrap().len(), 1);
}

#[test]
fn untagged_images_compare_as_latest() {
    let mut pod = running_pod();
    begin_update(
        &mut pod,
        &UpdateSpec {
            revision: "demo-2".into(),
            container_images: BTreeMap::from([("main".to_string(), "img".to_string())]),
            ..Default::default()
        },
        &labels(),
        t0(),
    );
    pod.status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()[0]
        .image = "img:latest".into();
    assert!(is_completed(&pod));
}
