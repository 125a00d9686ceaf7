//! Garbage collection and namespace lifecycle through kube-rs against a running server, and
//! typed `Api<CloneSet>` over the real kruise CRDs.

#[path = "support/server.rs"]
mod support;

use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kruise_api::apps::v1alpha1::CloneSet;
use kruise_apiserver::store::MemoryStore;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, PropagationPolicy};
use serde_json::json;

fn cm(name: &str, owner: Option<(&str, &str, bool)>) -> ConfigMap {
    let mut meta = json!({"name": name});
    if let Some((owner_name, uid, block)) = owner {
        meta["ownerReferences"] = json!([{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner_name, "uid": uid,
            "controller": true, "blockOwnerDeletion": block
        }]);
    }
    serde_json::from_value(json!({"metadata": meta, "data": {"k": "v"}})).expect("configmap")
}

async fn exists(api: &Api<ConfigMap>, name: &str) -> bool {
    api.get_opt(name).await.expect("get").is_some()
}

#[tokio::test]
async fn background_deletion_removes_dependents_and_nothing_else() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", None))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.expect("uid");
    api.create(
        &PostParams::default(),
        &cm("dep-1", Some(("owner", &uid, false))),
    )
    .await
    .expect("dep-1");
    api.create(
        &PostParams::default(),
        &cm("dep-2", Some(("owner", &uid, true))),
    )
    .await
    .expect("dep-2");
    api.create(&PostParams::default(), &cm("plain", None))
        .await
        .expect("plain");
    api.delete("owner", &DeleteParams::background())
        .await
        .expect("delete owner");
    let api2 = api.clone();
    assert!(
        support::eventually(15, || {
            let api = api2.clone();
            async move { !exists(&api, "dep-1").await && !exists(&api, "dep-2").await }
        })
        .await,
        "dependents not collected"
    );
    assert!(
        exists(&api, "plain").await,
        "an unrelated object was deleted"
    );
}

#[tokio::test]
async fn foreground_deletion_keeps_the_owner_until_blocking_dependents_are_gone() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", None))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.expect("uid");
    api.create(
        &PostParams::default(),
        &cm("dep", Some(("owner", &uid, true))),
    )
    .await
    .expect("dep");
    // A finalizer on the dependent holds it, so the owner must wait in foreground deletion.
    api.patch(
        "dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["test.kruise.io/hold"]}})),
    )
    .await
    .expect("hold dependent");
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..DeleteParams::default()
    };
    api.delete("owner", &dp).await.expect("delete owner");
    let held = api
        .get("owner")
        .await
        .expect("owner kept while its dependent exists");
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(held
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));
    let api2 = api.clone();
    assert!(
        support::eventually(10, || {
            let api = api2.clone();
            async move {
                api.get("dep")
                    .await
                    .is_ok_and(|d| d.metadata.deletion_timestamp.is_some())
            }
        })
        .await,
        "the dependent was not deleted"
    );
    assert!(
        exists(&api, "owner").await,
        "owner went before its blocking dependent"
    );
    api.patch(
        "dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release dependent");
    let api2 = api.clone();
    assert!(
        support::eventually(15, || {
            let api = api2.clone();
            async move { !exists(&api, "dep").await && !exists(&api, "owner").await }
        })
        .await,
        "owner not removed after its dependents"
    );
}

#[tokio::test]
async fn orphan_deletion_strips_owner_references() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let owner = api
        .create(&PostParams::default(), &cm("owner", None))
        .await
        .expect("owner");
    let uid = owner.metadata.uid.expect("uid");
    api.create(
        &PostParams::default(),
        &cm("dep", Some(("owner", &uid, true))),
    )
    .await
    .expect("dep");
    api.delete("owner", &DeleteParams::orphan())
        .await
        .expect("delete owner");
    let api2 = api.clone();
    assert!(
        support::eventually(15, || {
            let api = api2.clone();
            async move { !exists(&api, "owner").await }
        })
        .await,
        "owner not removed"
    );
    let dep = api.get("dep").await.expect("orphaned dependent kept");
    assert!(
        dep.metadata.owner_references.unwrap_or_default().is_empty(),
        "ownerReferences not stripped"
    );
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_contents_then_itself() {
    let t = support::start().await;
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    for ns in ["doomed", "kept"] {
        let obj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("ns");
        namespaces
            .create(&PostParams::default(), &obj)
            .await
            .expect("namespace");
        let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), ns);
        api.create(&PostParams::default(), &cm("inside", None))
            .await
            .expect("configmap");
    }
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .expect("delete namespace");
    let terminating = namespaces.get("doomed").await;
    if let Ok(ns) = terminating {
        assert_eq!(
            ns.status.and_then(|s| s.phase).as_deref(),
            Some("Terminating")
        );
    }
    let ns2 = namespaces.clone();
    assert!(
        support::eventually(20, || {
            let ns = ns2.clone();
            async move { ns.get_opt("doomed").await.expect("get").is_none() }
        })
        .await,
        "namespace not removed"
    );
    let doomed: Api<ConfigMap> = Api::namespaced(t.client.clone(), "doomed");
    assert!(doomed
        .list(&ListParams::default())
        .await
        .map(|l| l.items.is_empty())
        .unwrap_or(true));
    let kept: Api<ConfigMap> = Api::namespaced(t.client.clone(), "kept");
    assert!(
        exists(&kept, "inside").await,
        "another namespace's object was deleted"
    );
}

#[tokio::test]
async fn typed_cloneset_crud_over_the_kruise_crds() {
    let crds: Vec<serde_json::Value> = kruise_api::member_crds()
        .iter()
        .map(|c| serde_json::to_value(c).expect("crd json"))
        .collect();
    let t = support::start_with(Arc::new(MemoryStore::new()), crds).await;
    let api: Api<CloneSet> = Api::namespaced(t.client.clone(), "default");
    let seed: CloneSet = serde_yaml::from_str(include_str!("../../examples/seed-cloneset.yaml"))
        .expect("seed CloneSet");
    let created = api
        .create(&PostParams::default(), &seed)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(created.spec.replicas, Some(5));
    let patched = api
        .patch(
            "demo-clone",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"updateStrategy": {"partition": 2}}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(patched.metadata.generation, Some(2));
    let strategy = patched.spec.update_strategy.expect("strategy");
    assert_eq!(strategy.type_.as_deref(), Some("InPlaceIfPossible"));
    assert_eq!(
        strategy.partition,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(2))
    );
    let status = api
        .patch_status(
            "demo-clone",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 5, "readyReplicas": 5, "updatedReplicas": 5, "updatedReadyReplicas": 5, "availableReplicas": 5, "labelSelector": "app=guestbook"}})),
        )
        .await
        .expect("status");
    assert_eq!(status.status.map(|s| s.ready_replicas), Some(5));
    assert_eq!(
        api.get("demo-clone")
            .await
            .expect("get")
            .metadata
            .generation,
        Some(2),
        "status bumped generation"
    );
    let scale = api.get_scale("demo-clone").await.expect("scale");
    assert_eq!(
        scale.status.map(|s| (s.replicas, s.selector)),
        Some((5, Some("app=guestbook".into())))
    );
    let list = api.list(&ListParams::default()).await.expect("list");
    assert_eq!(list.items.len(), 1);
    api.delete("demo-clone", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(api.get_opt("demo-clone").await.expect("get").is_none());
}
