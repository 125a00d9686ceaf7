//! Router and verdict tests without sockets.

use super::*;
use axum::body::Body;
use http::Request as HttpRequest;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn state() -> State {
    State {
        gates: FeatureGates::default(),
        pods: None,
        metrics: None,
    }
}

fn cloneset(extra: Value) -> Value {
    let mut cs = json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "demo", "namespace": "default", "uid": "cs-uid"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "g"}},
            "template": {"metadata": {"labels": {"app": "g"}},
                         "spec": {"containers": [{"name": "main", "image": "img:v1"}]}},
            "updateStrategy": {"type": "InPlaceIfPossible"}
        }
    });
    if let Some(obj) = extra.as_object() {
        for (k, v) in obj {
            cs["spec"][k] = v.clone();
        }
    }
    cs
}

fn review(op: &str, resource: &str, kind: &str, object: Value, old: Option<Value>) -> Value {
    let (group, version) = if resource == "pods" {
        ("", "v1")
    } else {
        ("apps.kruise.io", "v1alpha1")
    };
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "req-1",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"].clone(),
            "namespace": "default",
            "operation": op,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": old,
            "dryRun": false
        }
    })
}

async fn call(path: &str, body: Value) -> Value {
    let resp = app(state())
        .oneshot(
            HttpRequest::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn apply_patch(object: &Value, response: &Value) -> Value {
    use base64::Engine;
    let raw = response["response"]["patch"]
        .as_str()
        .expect("patch present");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
    let mut out = object.clone();
    json_patch::patch(&mut out, &patch).unwrap();
    out
}

#[tokio::test]
async fn mutating_cloneset_returns_defaults_as_a_json_patch() {
    let cs = cloneset(json!({}));
    let resp = call(
        "/mutate-apps-kruise-io-cloneset",
        review("CREATE", "clonesets", "CloneSet", cs.clone(), None),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], true);
    assert_eq!(resp["response"]["uid"], "req-1");
    let out = apply_patch(&cs, &resp);
    assert_eq!(out["spec"]["updateStrategy"]["maxUnavailable"], "20%");
    assert_eq!(out["spec"]["revisionHistoryLimit"], 10);
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
}

#[tokio::test]
async fn invalid_cloneset_is_refused_with_field_paths() {
    let cs = cloneset(json!({"updateStrategy": {"type": "Bogus", "partition": -1}}));
    let resp = call(
        "/validate-apps-kruise-io-cloneset",
        review("CREATE", "clonesets", "CloneSet", cs, None),
    )
    .await;
    let r = &resp["response"];
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["reason"], "Invalid");
    let fields: Vec<&str> = r["status"]["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"spec.updateStrategy.type"), "{fields:?}");
    assert!(
        fields.contains(&"spec.updateStrategy.partition"),
        "{fields:?}"
    );
    let type_cause = r["status"]["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["field"] == "spec.updateStrategy.type")
        .unwrap();
    assert!(
        type_cause["message"]
            .as_str()
            .unwrap()
            .starts_with("Unsupported value: \"Bogus\""),
        "cause messages start after the field: {type_cause}"
    );
}

#[tokio::test]
async fn in_place_only_refuses_non_image_template_changes() {
    let old = cloneset(json!({"updateStrategy": {"type": "InPlaceOnly"}}));
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": 80}]);
    let resp = call(
        "/validate-apps-kruise-io-cloneset",
        review("UPDATE", "clonesets", "CloneSet", new, Some(old.clone())),
    )
    .await;
    let msg = resp["response"]["status"]["message"].as_str().unwrap();
    assert_eq!(
        msg,
        "spec: Forbidden: only allowed to update images in spec for InPlaceOnly, but found add /containers/0/ports"
    );
    let mut image_only = old.clone();
    image_only["spec"]["template"]["spec"]["containers"][0]["image"] = json!("img:v2");
    let resp = call(
        "/validate-apps-kruise-io-cloneset",
        review("UPDATE", "clonesets", "CloneSet", image_only, Some(old)),
    )
    .await;
    assert_eq!(resp["response"]["allowed"], true);
}

#[tokio::test]
async fn immutable_selector_change_is_forbidden() {
    let old = cloneset(json!({}));
    let mut new = old.clone();
    new["spec"]["selector"]["matchLabels"]["extra"] = json!("x");
    new["spec"]["template"]["metadata"]["labels"]["extra"] = json!("x");
    let resp = call(
        "/validate-apps-kruise-io-cloneset",
        review("UPDATE", "clonesets", "CloneSet", new, Some(old)),
    )
    .await;
    let msg = resp["response"]["status"]["message"].as_str().unwrap();
    assert!(
        msg.starts_with("spec: Forbidden: updates to cloneset spec for fields other than"),
        "{msg}"
    );
}

#[tokio::test]
async fn pod_mutation_adds_readiness_gates_to_kruise_owned_pods_only() {
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "demo-abcde", "namespace": "default",
                     "ownerReferences": [{"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                                          "name": "demo", "uid": "cs-uid", "controller": true}]},
        "spec": {"containers": [{"name": "main", "image": "img:v1"}]}
    });
    let resp = call(
        "/mutate-pod",
        review("CREATE", "pods", "Pod", pod.clone(), None),
    )
    .await;
    let out = apply_patch(&pod, &resp);
    assert_eq!(
        out["spec"]["readinessGates"],
        json!([{"conditionType": "InPlaceUpdateReady"}, {"conditionType": "KruisePodReady"}])
    );
    let mut other = pod.clone();
    other["metadata"]["ownerReferences"][0]["kind"] = json!("StatefulSet");
    let resp = call(
        "/mutate-pod",
        review("CREATE", "pods", "Pod", other.clone(), None),
    )
    .await;
    let out = apply_patch(&other, &resp);
    assert_eq!(
        out["spec"]["readinessGates"],
        json!([{"conditionType": "KruisePodReady"}])
    );
    let mut plain = pod.clone();
    plain["metadata"]["ownerReferences"] = json!([]);
    let resp = call("/mutate-pod", review("CREATE", "pods", "Pod", plain, None)).await;
    assert_eq!(resp["response"]["allowed"], true);
    assert!(resp["response"].get("patch").is_none());
}

#[test]
fn unknown_paths_are_denied() {
    let req: AdmissionReview<DynamicObject> = serde_json::from_value(review(
        "CREATE",
        "pods",
        "Pod",
        json!({"metadata": {"name": "x"}}),
        None,
    ))
    .unwrap();
    let request = Request {
        path: "/nope".into(),
        review: req.try_into().unwrap(),
    };
    assert!(matches!(admit(&request, &state()), Verdict::Deny(_)));
}
