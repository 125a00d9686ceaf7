//! Paged lists over HTTP: every page after the first reads the first page's revision, and a
//! continue token whose revision the store no longer keeps is 410 `Expired` with upstream's
//! message and a token that continues at the current revision.

#[path = "support/etcd.rs"]
mod etcd_support;
#[path = "support/server.rs"]
mod support;

use std::sync::Arc;

use futures::future::BoxFuture;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kruise_apiserver::http::paging::INCONSISTENT_CONTINUE;
use kruise_apiserver::store::{MemoryStore, MemoryStoreConfig, Store};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{json, Value};

/// Events the test store keeps for resume and for reading earlier revisions.
const HISTORY: usize = 32;

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": value}}))
        .expect("configmap")
}

fn names(list: &[ConfigMap]) -> Vec<String> {
    list.iter()
        .map(|cm| cm.metadata.name.clone().unwrap_or_default())
        .collect()
}

/// A continue token as a query value (tokens are standard base64).
fn query_value(token: &str) -> String {
    token
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// GETs `uri` and returns the status code and JSON body, whatever the status.
async fn get_json(client: &kube::Client, uri: &str) -> (u16, Value) {
    let request = http::Request::builder()
        .uri(uri)
        .body(kube::client::Body::from(Vec::new()))
        .expect("request");
    let response = client.send(request).await.expect("response");
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON body"))
}

/// Makes the store drop every revision before its current one, through the API.
type Compact = Box<dyn Fn(Api<ConfigMap>) -> BoxFuture<'static, ()> + Send + Sync>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_continue_tokens() {
    let store = Arc::new(MemoryStore::with_config(MemoryStoreConfig {
        history_size: HISTORY,
        ..MemoryStoreConfig::default()
    }));
    // The history window decides: enough later writes push the first page's revision out.
    let compact: Compact = Box::new(|cms| {
        Box::pin(async move {
            for i in 0..HISTORY {
                cms.create(
                    &PostParams::default(),
                    &configmap(&format!("filler-{i:02}"), "f"),
                )
                .await
                .expect("filler");
            }
        })
    });
    continued_pages_read_the_first_pages_snapshot_until_it_is_compacted(store, compact).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_store_continue_tokens() {
    let Some(etcd) = etcd_support::start_or_skip("etcd continue tokens", "").await else {
        return;
    };
    let store = etcd.store.clone();
    let compact: Compact = Box::new(move |_| {
        let store = store.clone();
        Box::pin(async move {
            let now = store.current_revision().await.expect("revision");
            store
                .client()
                .clone()
                .compact(now, None)
                .await
                .expect("compact");
        })
    });
    continued_pages_read_the_first_pages_snapshot_until_it_is_compacted(
        Arc::new(etcd.store.clone()),
        compact,
    )
    .await;
}

async fn continued_pages_read_the_first_pages_snapshot_until_it_is_compacted(
    store: Arc<dyn Store>,
    compact: Compact,
) {
    let t = support::start_with(store, vec![support::cloneset_crd()]).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for i in 0..7 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("page-{i}"), "v1"),
        )
        .await
        .expect("create");
    }
    let first = cms
        .list(&ListParams::default().limit(3))
        .await
        .expect("page 1");
    assert_eq!(names(&first.items), ["page-0", "page-1", "page-2"]);
    let token = first.metadata.continue_.clone().expect("continue token");
    let revision = first.metadata.resource_version.clone().expect("list RV");

    // Change what the next pages cover.
    cms.delete("page-4", &DeleteParams::default())
        .await
        .expect("delete");
    cms.create(&PostParams::default(), &configmap("page-35", "new"))
        .await
        .expect("create");
    let mut changed = cms.get("page-5").await.expect("get");
    changed.data = Some([("v".to_string(), "v2".to_string())].into());
    cms.replace("page-5", &PostParams::default(), &changed)
        .await
        .expect("update");

    let second = cms
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert_eq!(names(&second.items), ["page-3", "page-4", "page-5"]);
    assert_eq!(
        second.items[2].data.as_ref().and_then(|d| d.get("v")),
        Some(&"v1".to_string()),
        "page 2 shows page-5 as it was at the first page's revision"
    );
    assert_eq!(second.metadata.resource_version.as_ref(), Some(&revision));
    let third = cms
        .list(
            &ListParams::default()
                .limit(3)
                .continue_token(second.metadata.continue_.as_deref().expect("token")),
        )
        .await
        .expect("page 3");
    assert_eq!(names(&third.items), ["page-6"]);
    assert!(third.metadata.continue_.as_deref().unwrap_or("").is_empty());

    compact(cms.clone()).await;
    let (code, status) = get_json(
        &t.client,
        &format!(
            "/api/v1/namespaces/default/configmaps?limit=3&continue={}",
            query_value(&token)
        ),
    )
    .await;
    assert_eq!(code, 410, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Expired");
    assert_eq!(status["message"], INCONSISTENT_CONTINUE);
    // The offered token continues after the same key, at the current revision.
    let latest = status["metadata"]["continue"]
        .as_str()
        .expect("a continue token in the Status");
    let (code, rest) = get_json(
        &t.client,
        &format!(
            "/api/v1/namespaces/default/configmaps?limit=3&continue={}",
            query_value(latest)
        ),
    )
    .await;
    assert_eq!(code, 200, "{rest}");
    let rest_names: Vec<&str> = rest["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|item| item["metadata"]["name"].as_str())
        .collect();
    assert_eq!(rest_names, ["page-3", "page-35", "page-5"]);
    let current: i64 = rest["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|rv| rv.parse().ok())
        .expect("list RV");
    assert!(current > revision.parse::<i64>().expect("numeric RV"));
    t.server.shutdown().await;
}
