//! kube-runtime against the server: watcher + reflector through many writes, a Controller
//! (with a metadata watcher for owned objects), and the ERROR-event form of 410.

#[path = "support/server.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kruise_apiserver::store::{MemoryStore, MemoryStoreConfig};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use serde_json::json;

fn configmap(name: &str, value: usize) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value.to_string()}}))
        .expect("configmap")
}

#[tokio::test]
async fn reflector_stays_in_sync_through_a_thousand_writes() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let (reader, writer) = reflector::store();
    let stream =
        reflector(writer, watcher(api.clone(), watcher::Config::default())).applied_objects();
    let pump = tokio::spawn(async move {
        stream.for_each(|_| futures::future::ready(())).await;
    });
    const OBJECTS: usize = 50;
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        let writes = (0..OBJECTS).map(|i| {
            let api = api.clone();
            async move {
                let name = format!("cm-{i}");
                if round == 0 {
                    api.create(&PostParams::default(), &configmap(&name, round))
                        .await
                        .map(|_| ())
                } else {
                    api.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"v": round.to_string()}})),
                    )
                    .await
                    .map(|_| ())
                }
            }
        });
        for result in futures::future::join_all(writes).await {
            result.expect("write");
        }
    }
    let last = (ROUNDS - 1).to_string();
    let synced = support::eventually(20, || {
        let state = reader.state();
        let last = last.clone();
        async move {
            state.len() == OBJECTS
                && state
                    .iter()
                    .all(|cm| cm.data.as_ref().and_then(|d| d.get("v")) == Some(&last))
        }
    })
    .await;
    assert!(
        synced,
        "reflector did not converge: {} objects",
        reader.state().len()
    );
    for i in 0..10 {
        api.delete(&format!("cm-{i}"), &DeleteParams::default())
            .await
            .expect("delete");
    }
    assert!(
        support::eventually(10, || {
            let n = reader.state().len();
            async move { n == OBJECTS - 10 }
        })
        .await
    );
    pump.abort();
    t.server.shutdown().await;
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed: {0}")]
struct ReconcileError(#[from] kube::Error);

#[tokio::test]
async fn controller_reconciles_every_object() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for i in 0..5 {
        api.create(&PostParams::default(), &configmap(&format!("ctl-{i}"), i))
            .await
            .expect("create");
    }
    let secrets: Api<Secret> = Api::namespaced(t.client.clone(), "default");
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .owns(secrets, watcher::Config::default())
        .run(
            |cm: Arc<ConfigMap>, api: Arc<Api<ConfigMap>>| async move {
                let name = cm.metadata.name.clone().unwrap_or_default();
                if cm
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("reconciled"))
                    .is_none()
                {
                    api.patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"annotations": {"reconciled": "yes"}}})),
                    )
                    .await?;
                }
                Ok::<_, ReconcileError>(Action::await_change())
            },
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            Arc::new(api.clone()),
        )
        .for_each(|_| futures::future::ready(()));
    let handle = tokio::spawn(controller);
    let done = support::eventually(20, || {
        let api = api.clone();
        async move {
            match api.list(&Default::default()).await {
                Ok(list) => {
                    list.items.len() == 5
                        && list.items.iter().all(|cm| {
                            cm.metadata
                                .annotations
                                .as_ref()
                                .and_then(|a| a.get("reconciled"))
                                .is_some()
                        })
                }
                Err(_) => false,
            }
        }
    })
    .await;
    assert!(done, "not every ConfigMap was reconciled");
    handle.abort();
    t.server.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_version_is_an_error_event_and_watchers_relist() {
    let store = MemoryStore::with_config(MemoryStoreConfig {
        history_size: 8,
        ..MemoryStoreConfig::default()
    });
    let t = support::start_with(Arc::new(store), Vec::new()).await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for i in 0..30 {
        api.create(&PostParams::default(), &configmap(&format!("old-{i}"), i))
            .await
            .expect("create");
    }
    let mut events = api
        .watch(&WatchParams::default(), "2")
        .await
        .expect("watch answers 200")
        .boxed();
    match events.try_next().await.expect("stream") {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    // A watcher starts from a fresh list, so it sees all objects despite the short history.
    let objects: Vec<ConfigMap> = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .take(30)
        .try_collect()
        .await
        .expect("watcher");
    assert_eq!(objects.len(), 30);
    t.server.shutdown().await;
}

#[tokio::test]
async fn watch_with_selector_sees_enter_and_leave() {
    let t = support::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("sel", 0))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let params = WatchParams::default().labels("team=a").timeout(5);
    let mut events = api.watch(&params, &rv).await.expect("watch").boxed();
    let label = |v: serde_json::Value| Patch::Merge(json!({"metadata": {"labels": {"team": v}}}));
    api.patch("sel", &PatchParams::default(), &label(json!("a")))
        .await
        .expect("enter");
    api.patch("sel", &PatchParams::default(), &label(json!("b")))
        .await
        .expect("leave");
    let first = events.try_next().await.expect("stream").expect("event");
    assert!(
        matches!(first, WatchEvent::Added(_)),
        "entering the selector is ADDED: {first:?}"
    );
    let second = events.try_next().await.expect("stream").expect("event");
    assert!(
        matches!(second, WatchEvent::Deleted(_)),
        "leaving the selector is DELETED: {second:?}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn bookmarks_carry_kind_and_resource_version() {
    let t = support::start_custom(
        Arc::new(MemoryStore::new()),
        Vec::new(),
        Duration::from_millis(200),
    )
    .await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let created = api
        .create(&PostParams::default(), &configmap("bm", 0))
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let mut events = api
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            }
            .timeout(5),
            &rv,
        )
        .await
        .expect("watch")
        .boxed();
    api.patch(
        "bm",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "1"}})),
    )
    .await
    .expect("patch");
    let modified = events.try_next().await.expect("stream").expect("event");
    let modified_rv = match modified {
        WatchEvent::Modified(cm) => cm.metadata.resource_version.expect("rv"),
        other => panic!("expected MODIFIED, got {other:?}"),
    };
    match events.try_next().await.expect("stream").expect("event") {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.types.kind, "ConfigMap");
            assert_eq!(b.metadata.resource_version, modified_rv);
        }
        other => panic!("expected BOOKMARK, got {other:?}"),
    }
    t.server.shutdown().await;
}
