//! Admission webhooks against a real HTTPS webhook server (axum over rustls, its own rcgen CA):
//! mutation, denial, failure policies, timeouts, selectors, DELETE and eviction reviews, status
//! subresources, `matchPolicy: Equivalent`, reinvocation and service references.

#[path = "support/server.rs"]
mod support;
#[path = "support/webhook_server.rs"]
mod webhook_server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kruise_apiserver::store::MemoryStore;
use kruise_apiserver::{RunningServer, ServerConfig};
use kube::api::{Api, DeleteParams, DynamicObject, EvictParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use webhook_server::{start_webhook_server, WebhookServer};

/// A CRD served at v1alpha1 and v1beta1 (no conversion), to exercise `matchPolicy`.
fn widget_crd() -> Value {
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
            "subresources": {"status": {}}})
    };
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.kruise.io"},
        "spec": {"group": "test.kruise.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [version("v1alpha1", true), version("v1beta1", false)]}})
}

struct Cluster {
    server: RunningServer,
    client: kube::Client,
    kubeconfig: String,
    _dir: tempfile::TempDir,
}

async fn start_cluster(resolve_to: Option<SocketAddr>) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config =
        ServerConfig::new(listen, Arc::new(MemoryStore::new()), dir.path().join("pki"));
    config.cluster_name = "test".into();
    config.crds = vec![widget_crd()];
    if let Some(addr) = resolve_to {
        config.webhook_service_resolver =
            Some(Arc::new(move |ns: &str, name: &str, _port: u16| {
                (ns == "webhooks" && name == "hooks").then_some(addr)
            }));
    }
    let server = kruise_apiserver::start(config)
        .await
        .expect("server starts");
    let kubeconfig = server.kubeconfig("test");
    let client = support::client_for(&kubeconfig).await;
    Cluster {
        server,
        client,
        kubeconfig,
        _dir: dir,
    }
}

/// A webhook entry calling `path` on the webhook server.
fn hook(name: &str, hooks: &WebhookServer, path: &str, rules: Value) -> Value {
    json!({"name": name, "sideEffects": "None", "admissionReviewVersions": ["v1"],
        "clientConfig": {"url": format!("https://127.0.0.1:{}/{path}", hooks.addr.port()), "caBundle": hooks.ca_bundle},
        "rules": rules})
}

fn rule(operations: &[&str], group: &str, version: &str, resources: &[&str]) -> Value {
    json!([{"operations": operations, "apiGroups": [group], "apiVersions": [version], "resources": resources}])
}

async fn register(client: &kube::Client, mutating: bool, name: &str, webhooks: Vec<Value>) {
    let kind = if mutating {
        (
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        )
    } else {
        (
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        )
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind.0),
        kind.1,
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind.0,
        "metadata": {"name": name}, "webhooks": webhooks}))
    .expect("configuration");
    api.create(&PostParams::default(), &obj)
        .await
        .expect("register webhook configuration");
}

async fn unregister(client: &kube::Client, mutating: bool, name: &str) {
    let kind = if mutating {
        (
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        )
    } else {
        (
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        )
    };
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("admissionregistration.k8s.io", "v1", kind.0),
        kind.1,
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    api.delete(name, &DeleteParams::default())
        .await
        .expect("unregister");
}

fn configmap(name: &str, labels: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .expect("configmap")
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn mutation_is_applied_and_the_review_matches_the_wire_contract() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    register(
        &c.client,
        true,
        "labeler",
        vec![hook(
            "label.test.io",
            &hooks,
            "label-mutated",
            rule(&["CREATE", "UPDATE"], "", "v1", &["configmaps"]),
        )],
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let created = api
        .create(
            &PostParams::default(),
            &configmap("one", json!({"app": "t"})),
        )
        .await
        .expect("create");
    let labels = created.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get("mutated").map(String::as_str), Some("yes"));
    assert_eq!(labels.get("app").map(String::as_str), Some("t"));
    let stored = api.get("one").await.expect("get");
    assert_eq!(stored.metadata.labels, created.metadata.labels);

    let calls = hooks.hooks.on("label-mutated");
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.query, "timeout=10s");
    assert_eq!(call.content_type, "application/json");
    assert_eq!(call.review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(call.review["kind"], "AdmissionReview");
    let request = &call.review["request"];
    assert!(!request["uid"].as_str().unwrap_or("").is_empty());
    assert_eq!(
        request["kind"],
        json!({"group": "", "version": "v1", "kind": "ConfigMap"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "", "version": "v1", "resource": "configmaps"})
    );
    assert_eq!(request["requestKind"], request["kind"]);
    assert_eq!(request["requestResource"], request["resource"]);
    assert_eq!(request["name"], "one");
    assert_eq!(request["namespace"], "default");
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(request["object"]["metadata"]["name"], "one");
    assert_eq!(request["oldObject"], Value::Null);
    assert_eq!(request["dryRun"], false);
    assert_eq!(request["options"]["kind"], "CreateOptions");
    assert!(request.get("subResource").is_none());

    // A merge patch is an UPDATE with the old object; the webhook sees the label already set.
    api.patch(
        "one",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .expect("patch");
    let calls = hooks.hooks.on("label-mutated");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].review["request"]["operation"], "UPDATE");
    assert_eq!(calls[1].review["request"]["oldObject"]["data"]["k"], "v");
    assert_eq!(calls[1].review["request"]["object"]["data"]["k"], "w");
    assert_eq!(
        calls[1].review["request"]["options"]["kind"],
        "UpdateOptions"
    );

    // Webhook configurations themselves are never reviewed.
    register(
        &c.client,
        false,
        "deny-all",
        vec![hook(
            "deny.test.io",
            &hooks,
            "deny-anything",
            rule(&["*"], "*", "*", &["*"]),
        )],
    )
    .await;
    unregister(&c.client, false, "deny-all").await;
    assert!(hooks.hooks.on("deny-anything").is_empty());
    c.server.shutdown().await;
}

#[tokio::test]
async fn denial_reaches_kube_rs_and_kubectl_verbatim() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    register(
        &c.client,
        false,
        "denier",
        vec![hook(
            "deny.test.io",
            &hooks,
            "deny-configmaps",
            rule(&["CREATE"], "", "v1", &["configmaps"]),
        )],
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let status = api_error(
        api.create(&PostParams::default(), &configmap("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 403);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        "admission webhook \"deny.test.io\" denied the request: no configmaps today"
    );
    assert!(api.get_opt("x").await.expect("get").is_none());

    // Without a reason kubectl prints "Error from server: <message>".
    register(
        &c.client,
        false,
        "plain",
        vec![hook(
            "plain.test.io",
            &hooks,
            "denyplain-secrets",
            rule(&["CREATE"], "", "v1", &["secrets"]),
        )],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &c.kubeconfig).expect("write kubeconfig");
    let manifest = dir.path().join("secret.json");
    std::fs::write(
        &manifest,
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "viakubectl", "namespace": "default"}, "stringData": {"a": "b"}})
        .to_string(),
    )
    .expect("write manifest");
    let output = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("create")
        .arg("-f")
        .arg(&manifest)
        .output()
        .await
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    let expected = format!(
        "Error from server: error when creating {:?}: admission webhook \"plain.test.io\" denied the request: secrets must be labelled",
        manifest.display().to_string()
    );
    assert!(stderr.contains(&expected), "{stderr}");
    c.server.shutdown().await;
}

#[tokio::test]
async fn warnings_are_forwarded_to_kubectl() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    register(
        &c.client,
        false,
        "warner",
        vec![hook(
            "warn.test.io",
            &hooks,
            "warn-policy",
            rule(&["CREATE"], "", "v1", &["configmaps"]),
        )],
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &c.kubeconfig).expect("write kubeconfig");
    let output = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["create", "configmap", "warned", "--from-literal=a=b"])
        .output()
        .await
        .expect("run kubectl");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("Warning: checked by policy"), "{stderr}");
    c.server.shutdown().await;
}

#[tokio::test]
async fn failure_policy_fail_and_ignore_when_the_webhook_is_down() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let mut down = hook(
        "down.test.io",
        &hooks,
        "allow-down",
        rule(&["CREATE"], "", "v1", &["configmaps"]),
    );
    down["clientConfig"]["url"] = json!(format!("https://127.0.0.1:{closed}/down"));
    let mut ignored = down.clone();
    ignored["name"] = json!("ignored.test.io");
    ignored["failurePolicy"] = json!("Ignore");
    register(&c.client, false, "ignored", vec![ignored]).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("passes", json!({})))
        .await
        .expect("Ignore lets the write through");

    register(&c.client, false, "failing", vec![down]).await;
    let status = api_error(
        api.create(&PostParams::default(), &configmap("blocked", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 500);
    assert_eq!(status.reason, "InternalError");
    let prefix = format!(
        "Internal error occurred: failed calling webhook \"down.test.io\": failed to call webhook: Post \"https://127.0.0.1:{closed}/down?timeout=10s\": "
    );
    assert!(status.message.starts_with(&prefix), "{}", status.message);
    assert!(api.get_opt("blocked").await.expect("get").is_none());

    // A response for another request is a call failure too.
    unregister(&c.client, false, "failing").await;
    register(
        &c.client,
        false,
        "confused",
        vec![hook(
            "confused.test.io",
            &hooks,
            "wronguid",
            rule(&["CREATE"], "", "v1", &["configmaps"]),
        )],
    )
    .await;
    let status = api_error(
        api.create(&PostParams::default(), &configmap("confused", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 500);
    assert!(
        status.message.contains("failed calling webhook \"confused.test.io\": received invalid webhook response: expected response.uid="),
        "{}",
        status.message
    );
    c.server.shutdown().await;
}

#[tokio::test]
async fn timeout_seconds_bounds_a_slow_webhook() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    let mut slow = hook(
        "slow.test.io",
        &hooks,
        "slow-x",
        rule(&["CREATE"], "", "v1", &["configmaps"]),
    );
    slow["timeoutSeconds"] = json!(1);
    register(&c.client, false, "slow", vec![slow]).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let started = Instant::now();
    let status = api_error(
        api.create(&PostParams::default(), &configmap("late", json!({})))
            .await
            .unwrap_err(),
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(status.code, 500);
    assert!(
        status
            .message
            .ends_with("?timeout=1s\": context deadline exceeded"),
        "{}",
        status.message
    );
    assert_eq!(hooks.hooks.on("slow-x")[0].query, "timeout=1s");
    c.server.shutdown().await;
}

#[tokio::test]
async fn namespace_and_object_selectors_are_honoured() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    let namespaces: Api<Namespace> = Api::all(c.client.clone());
    for (name, labels) in [
        ("hooked", json!({"webhooks": "enabled"})),
        ("plain", json!({})),
    ] {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
                .expect("namespace");
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    let plain: Api<ConfigMap> = Api::namespaced(c.client.clone(), "plain");
    plain
        .create(
            &PostParams::default(),
            &configmap("tagged", json!({"check": "yes"})),
        )
        .await
        .expect("created before the webhook exists");

    let mut by_ns = hook(
        "ns.test.io",
        &hooks,
        "deny-hooked",
        rule(&["*"], "", "v1", &["configmaps"]),
    );
    by_ns["namespaceSelector"] = json!({"matchLabels": {"webhooks": "enabled"}});
    let mut by_obj = hook(
        "obj.test.io",
        &hooks,
        "deny-tagged",
        rule(&["*"], "", "v1", &["configmaps"]),
    );
    by_obj["objectSelector"] =
        json!({"matchExpressions": [{"key": "check", "operator": "In", "values": ["yes"]}]});
    register(&c.client, false, "selectors", vec![by_ns, by_obj]).await;

    let hooked: Api<ConfigMap> = Api::namespaced(c.client.clone(), "hooked");
    let status = api_error(
        hooked
            .create(&PostParams::default(), &configmap("a", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        status.message,
        "admission webhook \"ns.test.io\" denied the request: no hooked today"
    );
    plain
        .create(&PostParams::default(), &configmap("a", json!({})))
        .await
        .expect("namespace without the label is not reviewed");
    let status = api_error(
        plain
            .create(
                &PostParams::default(),
                &configmap("b", json!({"check": "yes"})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        status.message,
        "admission webhook \"obj.test.io\" denied the request: no tagged today"
    );
    // Removing the label is still reviewed: the old object matches.
    let status = api_error(
        plain
            .patch(
                "tagged",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"check": null}}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 403);
    assert!(hooks.hooks.on("deny-hooked").len() == 1);
    // A namespace is selected by its own labels.
    let mut ns_hook = hook(
        "nsself.test.io",
        &hooks,
        "deny-namespaces",
        rule(&["CREATE"], "", "v1", &["namespaces"]),
    );
    ns_hook["namespaceSelector"] = json!({"matchLabels": {"webhooks": "enabled"}});
    register(&c.client, false, "namespaces", vec![ns_hook]).await;
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "other"}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("unlabelled namespace");
    let ns: Namespace = serde_json::from_value(
        json!({"metadata": {"name": "other2", "labels": {"webhooks": "enabled"}}}),
    )
    .expect("namespace");
    assert_eq!(
        api_error(
            namespaces
                .create(&PostParams::default(), &ns)
                .await
                .unwrap_err()
        )
        .code,
        403
    );
    c.server.shutdown().await;
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "p"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .expect("pod")
}

#[tokio::test]
async fn delete_eviction_and_status_are_reviewed() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    register(
        &c.client,
        false,
        "recorder",
        vec![
            hook(
                "delete.test.io",
                &hooks,
                "allow-delete",
                rule(&["DELETE"], "", "v1", &["configmaps", "pods"]),
            ),
            hook(
                "evict.test.io",
                &hooks,
                "allow-evict",
                rule(&["CREATE"], "", "v1", &["pods/eviction"]),
            ),
            hook(
                "status.test.io",
                &hooks,
                "allow-status",
                rule(&["UPDATE"], "", "v1", &["pods/status"]),
            ),
            hook(
                "pods.test.io",
                &hooks,
                "allow-pods",
                rule(&["UPDATE"], "", "v1", &["pods"]),
            ),
        ],
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    api.create(&PostParams::default(), &configmap("gone", json!({})))
        .await
        .expect("create");
    api.delete("gone", &DeleteParams::default())
        .await
        .expect("delete");
    let calls = hooks.hooks.on("allow-delete");
    assert_eq!(calls.len(), 1);
    let request = &calls[0].review["request"];
    assert_eq!(request["operation"], "DELETE");
    assert_eq!(request["object"], Value::Null);
    assert_eq!(request["oldObject"]["metadata"]["name"], "gone");
    assert_eq!(request["name"], "gone");
    assert_eq!(request["options"]["kind"], "DeleteOptions");

    let pods: Api<Pod> = Api::namespaced(c.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p1"))
        .await
        .expect("pod");
    pods.patch_status(
        "p1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"phase": "Running"}})),
    )
    .await
    .expect("status");
    let calls = hooks.hooks.on("allow-status");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].review["request"]["subResource"], "status");
    assert_eq!(calls[0].review["request"]["requestSubResource"], "status");
    assert!(
        hooks.hooks.on("allow-pods").is_empty(),
        "pods does not match pods/status"
    );

    pods.evict("p1", &EvictParams::default())
        .await
        .expect("evict");
    let calls = hooks.hooks.on("allow-evict");
    assert_eq!(calls.len(), 1);
    let request = &calls[0].review["request"];
    assert_eq!(request["operation"], "CREATE");
    assert_eq!(request["subResource"], "eviction");
    assert_eq!(
        request["kind"],
        json!({"group": "policy", "version": "v1", "kind": "Eviction"})
    );
    assert_eq!(
        request["resource"],
        json!({"group": "", "version": "v1", "resource": "pods"})
    );
    assert_eq!(request["name"], "p1");
    assert_eq!(request["object"]["kind"], "Eviction");
    assert!(
        hooks.hooks.on("allow-delete").len() == 1,
        "an eviction is not reviewed as a DELETE"
    );

    // A denied eviction leaves the pod in place.
    pods.create(&PostParams::default(), &pod("p2"))
        .await
        .expect("pod");
    register(
        &c.client,
        false,
        "no-evictions",
        vec![hook(
            "noevict.test.io",
            &hooks,
            "deny-evictions",
            rule(&["CREATE"], "", "v1", &["pods/*"]),
        )],
    )
    .await;
    let status = api_error(pods.evict("p2", &EvictParams::default()).await.unwrap_err());
    assert_eq!(
        status.message,
        "admission webhook \"noevict.test.io\" denied the request: no evictions today"
    );
    assert!(pods.get_opt("p2").await.expect("get").is_some());
    c.server.shutdown().await;
}

fn widgets(client: &kube::Client, version: &str) -> Api<DynamicObject> {
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("test.kruise.io", version, "Widget"),
        "widgets",
    );
    Api::namespaced_with(client.clone(), "default", &resource)
}

#[tokio::test]
async fn match_policy_equivalent_reviews_other_versions() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(None).await;
    let mut exact = hook(
        "exact.test.io",
        &hooks,
        "allow-exact",
        rule(&["CREATE"], "test.kruise.io", "v1beta1", &["widgets"]),
    );
    exact["matchPolicy"] = json!("Exact");
    let equivalent = hook(
        "equivalent.test.io",
        &hooks,
        "label-equivalent",
        rule(&["CREATE"], "test.kruise.io", "v1beta1", &["widgets"]),
    );
    register(&c.client, true, "versions", vec![exact, equivalent]).await;
    let widget: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "test.kruise.io/v1alpha1",
        "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 1}}))
        .expect("widget");
    let created = widgets(&c.client, "v1alpha1")
        .create(&PostParams::default(), &widget)
        .await
        .expect("create");
    assert!(hooks.hooks.on("allow-exact").is_empty());
    let calls = hooks.hooks.on("label-equivalent");
    assert_eq!(calls.len(), 1);
    let request = &calls[0].review["request"];
    assert_eq!(
        request["resource"],
        json!({"group": "test.kruise.io", "version": "v1beta1", "resource": "widgets"})
    );
    assert_eq!(
        request["requestResource"],
        json!({"group": "test.kruise.io", "version": "v1alpha1", "resource": "widgets"})
    );
    assert_eq!(request["kind"]["version"], "v1beta1");
    assert_eq!(request["requestKind"]["version"], "v1alpha1");
    assert_eq!(request["object"]["apiVersion"], "test.kruise.io/v1beta1");
    assert_eq!(
        created.types.as_ref().map(|t| t.api_version.as_str()),
        Some("test.kruise.io/v1alpha1")
    );
    assert_eq!(
        created
            .metadata
            .labels
            .unwrap_or_default()
            .get("equivalent")
            .map(String::as_str),
        Some("yes")
    );

    let direct: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "test.kruise.io/v1beta1",
        "kind": "Widget", "metadata": {"name": "w2"}, "spec": {"size": 2}}))
        .expect("widget");
    widgets(&c.client, "v1beta1")
        .create(&PostParams::default(), &direct)
        .await
        .expect("create at v1beta1");
    assert_eq!(hooks.hooks.on("allow-exact").len(), 1);
    c.server.shutdown().await;
}

#[tokio::test]
async fn reinvocation_and_service_references() {
    let hooks = start_webhook_server().await;
    let c = start_cluster(Some(hooks.addr)).await;
    let mut first = hook(
        "first.test.io",
        &hooks,
        "label-first",
        rule(&["CREATE"], "", "v1", &["configmaps"]),
    );
    first["reinvocationPolicy"] = json!("IfNeeded");
    let mut second = hook(
        "second.test.io",
        &hooks,
        "label-second",
        rule(&["CREATE"], "", "v1", &["configmaps"]),
    );
    second["clientConfig"] = json!({"service": {"namespace": "webhooks", "name": "hooks",
        "path": "/label-second", "port": hooks.addr.port()}, "caBundle": hooks.ca_bundle});
    register(&c.client, true, "a-first", vec![first]).await;
    register(&c.client, true, "b-second", vec![second]).await;
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("both", json!({})))
        .await
        .expect("create");
    let labels = created.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("first").map(String::as_str), Some("yes"));
    assert_eq!(labels.get("second").map(String::as_str), Some("yes"));
    let second_calls = hooks.hooks.on("label-second");
    assert_eq!(
        second_calls.len(),
        1,
        "the service reference is resolved and called"
    );
    let first_calls = hooks.hooks.on("label-first");
    assert_eq!(
        first_calls.len(),
        2,
        "IfNeeded re-invokes after a later mutation"
    );
    assert_eq!(
        first_calls[1].review["request"]["object"]["metadata"]["labels"]["second"],
        "yes"
    );
    c.server.shutdown().await;
}
