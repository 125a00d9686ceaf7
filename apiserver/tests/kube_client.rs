//! kube-rs against the server over loopback TLS: typed and dynamic CRUD, every patch type,
//! subresources, deletion, Table output and discovery.

#[path = "support/server.rs"]
mod support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, Scope};
use serde_json::json;

fn cloneset_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.kruise.io", "v1alpha1", "CloneSet"),
        "clonesets",
    )
}

fn configmap(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "t"}}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

#[tokio::test]
async fn typed_configmap_crud_and_conflicts() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("one"))
        .await
        .expect("create");
    let meta = &created.metadata;
    assert!(
        meta.uid.is_some() && meta.resource_version.is_some() && meta.creation_timestamp.is_some()
    );
    let err = api
        .create(&PostParams::default(), &configmap("one"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.reason == "AlreadyExists" && s.code == 409),
        "{err:?}"
    );

    let mut stale = created.clone();
    let mut fresh = created.clone();
    fresh.data = Some([("k".to_string(), "w".to_string())].into());
    api.replace("one", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    stale.data = Some([("k".to_string(), "x".to_string())].into());
    let err = api
        .replace("one", &PostParams::default(), &stale)
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains("the object has been modified"),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let list = api
        .list(&ListParams::default().labels("app=t"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());
    assert!(api
        .list(&ListParams::default().labels("app=none"))
        .await
        .expect("list")
        .items
        .is_empty());

    let deleted = api
        .delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    let status = deleted
        .right()
        .expect("configmap deletion answers a Status");
    assert!(
        !status.details.expect("details").uid.is_empty(),
        "the Status carries the uid"
    );
    let err = api.get("one").await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 404 && s.message == "configmaps \"one\" not found")
    );
    let missing_ns: Api<ConfigMap> = Api::namespaced(t.client.clone(), "nowhere");
    let err = missing_ns
        .create(&PostParams::default(), &configmap("x"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 404 && s.message == "namespaces \"nowhere\" not found")
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn pods_get_defaults_and_strategic_merge_keeps_containers() {
    let t = support::start().await;
    let api: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"generateName": "web-"},
        "spec": {"containers": [{"name": "main", "image": "example.com/app:v1"}, {"name": "side", "image": "example.com/side"}]}
    }))
    .expect("pod");
    let created = api
        .create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let name = created.metadata.name.clone().expect("generated name");
    assert!(name.starts_with("web-") && name.len() == 9, "{name}");
    let spec = created.spec.expect("spec");
    assert_eq!(spec.restart_policy.as_deref(), Some("Always"));
    assert_eq!(spec.scheduler_name.as_deref(), Some("default-scheduler"));
    assert_eq!(
        spec.containers[0].image_pull_policy.as_deref(),
        Some("IfNotPresent")
    );
    assert_eq!(
        spec.containers[1].image_pull_policy.as_deref(),
        Some("Always")
    );

    let patch = json!({"spec": {"containers": [{"name": "main", "image": "example.com/app:v2"}]}});
    let patched = api
        .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .expect("smp");
    let containers = patched.spec.expect("spec").containers;
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("example.com/app:v2"));

    // kube-runtime's finalizer helper: test null on a missing member, then add.
    let add: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]}
    ]))
    .expect("patch");
    let with_finalizer = api
        .patch(&name, &PatchParams::default(), &Patch::<()>::Json(add))
        .await
        .expect("json patch");
    assert_eq!(
        with_finalizer.metadata.finalizers,
        Some(vec!["example.com/cleanup".to_string()])
    );

    // Unscheduled pods are deleted without grace; the finalizer holds it.
    let pending = api
        .delete(&name, &DeleteParams::default())
        .await
        .expect("delete")
        .left()
        .expect("pod returned");
    assert!(pending.metadata.deletion_timestamp.is_some());
    let remove: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "example.com/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]))
    .expect("patch");
    api.patch(&name, &PatchParams::default(), &Patch::<()>::Json(remove))
        .await
        .expect("remove finalizer");
    assert!(
        api.get_opt(&name).await.expect("get").is_none(),
        "emptied finalizers remove the pod"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn custom_resources_validate_default_scale_and_patch() {
    let t = support::start().await;
    let api: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), "default", &cloneset_resource());
    let mut obj = DynamicObject::new("demo", &cloneset_resource());
    obj.data = json!({"spec": {"selector": {"matchLabels": {"app": "demo"}}, "updateStrategy": {"type": "InPlaceIfPossible"}, "junk": 1}});
    let created = api
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert_eq!(created.data["spec"]["replicas"], 1, "defaulted");
    assert!(created.data["spec"].get("junk").is_none(), "pruned");
    assert_eq!(created.metadata.generation, Some(1));

    let mut bad = DynamicObject::new("bad", &cloneset_resource());
    bad.data = json!({"spec": {"selector": {}, "updateStrategy": {"type": "Sideways"}}});
    match api.create(&PostParams::default(), &bad).await.unwrap_err() {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 422);
            assert!(
                s.message
                    .contains("spec.updateStrategy.type: Unsupported value: \"Sideways\""),
                "{}",
                s.message
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let err = api
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 415));

    let merged = api
        .patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("merge");
    assert_eq!(merged.data["spec"]["replicas"], 4);
    assert_eq!(merged.metadata.generation, Some(2));

    // Status is a subresource: writes to the main resource keep it, /status keeps the spec.
    let status = api
        .patch_status("demo", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 4, "labelSelector": "app=demo"}, "spec": {"replicas": 9}})))
        .await
        .expect("status");
    assert_eq!(status.data["status"]["replicas"], 4);
    assert_eq!(status.data["spec"]["replicas"], 4);
    assert_eq!(status.metadata.generation, Some(2));

    let scale = api.get_scale("demo").await.expect("scale");
    assert_eq!(scale.spec.and_then(|s| s.replicas), Some(4));
    assert_eq!(
        scale.status.expect("status").selector.as_deref(),
        Some("app=demo")
    );
    api.patch_scale(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 6}})),
    )
    .await
    .expect("scale patch");
    assert_eq!(
        api.get("demo").await.expect("get").data["spec"]["replicas"],
        6
    );

    // PUT without resourceVersion is refused for custom resources.
    let mut unconditional = api.get("demo").await.expect("get");
    unconditional.metadata.resource_version = None;
    let err = api
        .replace("demo", &PostParams::default(), &unconditional)
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 422));

    // Server-side apply: create (201) then merge.
    let applied = json!({"apiVersion": "test.kruise.io/v1alpha1", "kind": "CloneSet", "metadata": {"name": "applied"},
        "spec": {"selector": {"matchLabels": {"app": "a"}}, "replicas": 2}});
    let params = PatchParams::apply("tests");
    api.patch("applied", &params, &Patch::Apply(&applied))
        .await
        .expect("apply create");
    let again = json!({"apiVersion": "test.kruise.io/v1alpha1", "kind": "CloneSet", "metadata": {"name": "applied", "labels": {"x": "y"}}});
    let merged = api
        .patch("applied", &params, &Patch::Apply(&again))
        .await
        .expect("apply merge");
    assert_eq!(
        merged.data["spec"]["replicas"], 2,
        "apply merges instead of replacing"
    );
    let err = api
        .patch("applied", &PatchParams::default(), &Patch::Apply(&again))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 422),
        "fieldManager is required"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn deployment_scale_and_generation() {
    let t = support::start().await;
    let api: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}
    }))
    .expect("deployment");
    api.create(&PostParams::default(), &deploy)
        .await
        .expect("create");
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .expect("scale");
    let scaled = api.get("web").await.expect("get");
    assert_eq!(scaled.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert_eq!(scaled.metadata.generation, Some(2));
    let scale = api.get_scale("web").await.expect("scale");
    assert_eq!(
        scale.status.expect("status").selector.as_deref(),
        Some("app=web")
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn table_output_and_discovery() {
    let t = support::start().await;
    let request = http::Request::builder()
        .uri("/api/v1/nodes")
        .header(
            "Accept",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .expect("request");
    let table: serde_json::Value =
        serde_json::from_str(&t.client.request_text(request).await.expect("table")).expect("json");
    assert_eq!(table["kind"], "Table");
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(&names[..5], &["Name", "Status", "Roles", "Age", "Version"]);

    let api: Api<DynamicObject> =
        Api::namespaced_with(t.client.clone(), "default", &cloneset_resource());
    let mut obj = DynamicObject::new("shown", &cloneset_resource());
    obj.data = json!({"spec": {"selector": {}, "replicas": 5}});
    api.create(&PostParams::default(), &obj)
        .await
        .expect("create");
    let request = http::Request::builder()
        .uri("/apis/test.kruise.io/v1alpha1/namespaces/default/clonesets")
        .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Vec::new())
        .expect("request");
    let table: serde_json::Value =
        serde_json::from_str(&t.client.request_text(request).await.expect("table")).expect("json");
    let names: Vec<&str> = table["columnDefinitions"]
        .as_array()
        .expect("columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(
        names,
        vec![
            "Name",
            "DESIRED",
            "UPDATED",
            "UPDATED_READY",
            "READY",
            "TOTAL",
            "AGE"
        ]
    );
    let cells = &table["rows"][0]["cells"];
    assert_eq!(cells[0], "shown");
    assert_eq!(cells[1], 5);
    assert!(cells[2].is_null(), "missing values are null cells");

    let discovery = Discovery::new(t.client.clone())
        .run()
        .await
        .expect("discovery");
    let apps = discovery.get("apps").expect("apps group");
    let (deployments, caps) = apps
        .recommended_resources()
        .into_iter()
        .find(|(r, _)| r.plural == "deployments")
        .expect("deployments");
    assert_eq!(deployments.kind, "Deployment");
    assert_eq!(caps.scope, Scope::Namespaced);
    assert!(caps.subresources.iter().any(|(r, _)| r.plural == "scale"));
    let custom = discovery.get("test.kruise.io").expect("CRD group served");
    assert!(custom
        .recommended_resources()
        .iter()
        .any(|(r, _)| r.kind == "CloneSet"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn requests_without_token_are_unauthorized() {
    let t = support::start().await;
    let anonymous = t.kubeconfig.replace(t.server.admin_token(), "wrong-token");
    let client = support::client_for(&anonymous).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 401 && s.reason == "Unauthorized"));
    assert_eq!(
        client
            .apiserver_version()
            .await
            .expect("version is public")
            .minor,
        "31"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn paging_binding_and_eviction() {
    let t = support::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for i in 0..7 {
        cms.create(&PostParams::default(), &configmap(&format!("page-{i}")))
            .await
            .expect("create");
    }
    let first = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = cms
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    let third = cms
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(second.metadata.continue_.as_deref().expect("token")),
        )
        .await
        .expect("page 3");
    assert_eq!(third.items.len(), 1);
    assert!(third.metadata.continue_.as_deref().unwrap_or("").is_empty());
    assert_eq!(
        second.metadata.resource_version, first.metadata.resource_version,
        "pages report the first page's RV"
    );

    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let pod: Pod = serde_json::from_value(
        json!({"metadata": {"name": "bound", "labels": {"app": "guarded"}},
        "spec": {"containers": [{"name": "c", "image": "x:v1"}]}}),
    )
    .expect("pod");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create");
    let binding = http::Request::builder()
        .method("POST")
        .uri("/api/v1/namespaces/default/pods/bound/binding")
        .header("Content-Type", "application/json")
        .body(
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
            "target": {"kind": "Node", "name": "node-1"}}),
            )
            .expect("json"),
        )
        .expect("request");
    t.client.request_text(binding.clone()).await.expect("bind");
    assert_eq!(
        pods.get("bound")
            .await
            .expect("get")
            .spec
            .and_then(|s| s.node_name)
            .as_deref(),
        Some("node-1")
    );
    let err = t.client.request_text(binding).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(s) if s.code == 409),
        "a bound pod cannot be bound again"
    );

    pods.patch_status(
        "bound",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("running");
    let pdbs: Api<k8s_openapi::api::policy::v1::PodDisruptionBudget> =
        Api::namespaced(t.client.clone(), "default");
    let pdb = serde_json::from_value(json!({"metadata": {"name": "guard"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}}}))
        .expect("pdb");
    pdbs.create(&PostParams::default(), &pdb)
        .await
        .expect("pdb");
    pdbs.patch_status(
        "guard",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"observedGeneration": 1,
        "disruptionsAllowed": 0, "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}})),
    )
    .await
    .expect("pdb status");
    let evict = |client: kube::Client| async move {
        let request = http::Request::builder()
            .method("POST")
            .uri("/api/v1/namespaces/default/pods/bound/eviction")
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "bound", "namespace": "default"}})).expect("json"))
            .expect("request");
        client.request_text(request).await
    };
    // kube-rs retries 429 by default; this client must see the first answer.
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&t.kubeconfig).expect("kubeconfig"),
        &Default::default(),
    )
    .await
    .expect("config");
    config.default_retry = false;
    let no_retry = kube::Client::try_from(config).expect("client");
    let err = evict(no_retry).await.unwrap_err();
    match err {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 429);
            assert_eq!(
                s.message,
                "Cannot evict pod as it would violate the pod's disruption budget."
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    pdbs.patch_status(
        "guard",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"disruptionsAllowed": 1}})),
    )
    .await
    .expect("allow");
    evict(t.client.clone()).await.expect("eviction allowed");
    let evicted = pods
        .get("bound")
        .await
        .expect("graceful deletion keeps the pod");
    assert!(evicted.metadata.deletion_timestamp.is_some());
    assert_eq!(evicted.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete(
        "bound",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .expect("force");
    assert!(pods.get_opt("bound").await.expect("get").is_none());
    t.server.shutdown().await;
}
