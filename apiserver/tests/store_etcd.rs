//! etcd-specific behaviour of `EtcdStore`: connection failures surface as `Unavailable`; group
//! commit of concurrent writes.

#[path = "support/etcd.rs"]
mod etcd_support;

use std::time::Duration;

use bytes::Bytes;
use kruise_apiserver::store::{EtcdStore, KeyValue, Store, StoreError, WriteBatching};

#[tokio::test]
async fn connect_without_a_server_is_unavailable() {
    // Reserve a port, then free it, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    match EtcdStore::connect(&[endpoint.as_str()], "").await {
        Err(e @ StoreError::Unavailable { .. }) => assert!(e.is_retryable()),
        Err(other) => panic!("expected Unavailable, got {other}"),
        Ok(_) => panic!("connected to a port nobody listens on"),
    }
}

#[tokio::test]
async fn requests_after_the_server_stops_are_unavailable() {
    let Some(etcd) = etcd_support::start_or_skip("etcd store tests", "").await else {
        return;
    };
    let store = etcd
        .store
        .clone()
        .with_request_timeout(Duration::from_secs(3));
    store
        .create("/registry/x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    drop(etcd);
    for result in [
        store.get("/registry/x").await.map(|_| ()),
        store
            .create("/registry/y", Bytes::from_static(b"2"))
            .await
            .map(|_| ()),
        store.list("/registry/", None, None).await.map(|_| ()),
    ] {
        assert!(
            matches!(result, Err(StoreError::Unavailable { .. })),
            "expected Unavailable, got {result:?}"
        );
    }
}

/// Queues `writes` together: on a current-thread runtime the committer task the first write
/// starts only runs once all of them are queued, so they form batches together.
async fn together<T>(writes: Vec<futures::future::BoxFuture<'_, T>>) -> Vec<T> {
    futures::future::join_all(writes).await
}

fn v(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn concurrent_writes_share_a_transaction_and_failures_stay_per_write() {
    let Some(etcd) = etcd_support::start_or_skip("etcd store tests", "").await else {
        return;
    };
    let s = etcd.store.clone();
    let x1 = s.create("/registry/b/x", v("1")).await.unwrap();
    let x2 = s
        .update("/registry/b/x", v("2"), x1.mod_revision)
        .await
        .unwrap();
    let before = s.write_batch_stats();
    let results = together(vec![
        Box::pin(s.create("/registry/b/first", v("f"))),
        Box::pin(s.create("/registry/b/a", v("a"))),
        Box::pin(s.update("/registry/b/x", v("stale"), x1.mod_revision)),
        Box::pin(s.create("/registry/b/c", v("c"))),
        Box::pin(s.create("/registry/b/a", v("again"))),
        Box::pin(s.delete("/registry/b/first", None)),
        Box::pin(s.create("/registry/b/d", v("d"))),
    ])
    .await;
    let after = s.write_batch_stats();
    let first = results[0].clone().unwrap();
    let (a, c, d) = (
        results[1].clone().unwrap(),
        results[3].clone().unwrap(),
        results[6].clone().unwrap(),
    );
    // The good creates committed together, in spite of the stale update in their batch.
    assert!(first.mod_revision > x2.mod_revision);
    for kv in [&a, &c, &d] {
        assert_eq!(kv.mod_revision, first.mod_revision);
        assert_eq!(s.get(&kv.key).await.unwrap().as_ref(), Some(kv));
    }
    assert_eq!(
        results[2],
        Err(StoreError::Conflict {
            key: "/registry/b/x".into(),
            expected: x1.mod_revision,
            actual: x2.mod_revision
        })
    );
    assert_eq!(
        results[4],
        Err(StoreError::AlreadyExists {
            key: "/registry/b/a".into()
        })
    );
    // The delete of a key created in the same moment waited for the create's batch.
    let deleted = results[5].clone().unwrap();
    assert_eq!(deleted.value, v("f"));
    assert!(deleted.mod_revision > first.mod_revision);
    assert_eq!(s.get("/registry/b/first").await.unwrap(), None);
    assert_eq!(s.get("/registry/b/x").await.unwrap(), Some(x2));
    assert_eq!(after.committed - before.committed, 5);
    assert_eq!(after.rejected - before.rejected, 2);
    // {first, a, stale x, c, d} failed on x and was retried without it; the second create of
    // "a" was decided by what that batch saw, without a transaction of its own; the delete of
    // "first" ran after the batch that created it.
    assert_eq!(after.txns - before.txns, 3, "{before:?} -> {after:?}");
}

#[tokio::test]
async fn a_lone_write_is_one_transaction_and_batches_respect_max_ops() {
    let Some(etcd) = etcd_support::start_or_skip("etcd store tests", "").await else {
        return;
    };
    let s = etcd.store.clone().with_write_batching(WriteBatching {
        max_ops: 4,
        ..WriteBatching::default()
    });
    let before = s.write_batch_stats();
    s.create("/registry/l/alone", v("1")).await.unwrap();
    assert_eq!(s.write_batch_stats().txns - before.txns, 1);
    let writes: Vec<_> = (0..11)
        .map(|i| {
            let s = s.clone();
            Box::pin(async move { s.create(&format!("/registry/l/{i:02}"), v("x")).await })
                as futures::future::BoxFuture<'static, Result<KeyValue, StoreError>>
        })
        .collect();
    let results = together(writes).await;
    let mut per_revision = std::collections::BTreeMap::new();
    for result in results {
        *per_revision
            .entry(result.unwrap().mod_revision)
            .or_insert(0) += 1;
    }
    assert_eq!(
        per_revision.values().copied().collect::<Vec<_>>(),
        [4, 4, 3]
    );
}

/// Six creates queued together, committed in one transaction.
async fn create_batch(s: &EtcdStore, name: &str) -> Vec<KeyValue> {
    let writes: Vec<futures::future::BoxFuture<'_, Result<KeyValue, StoreError>>> = (0..6)
        .map(|i| {
            let s = s.clone();
            let key = format!("/registry/wb/{name}-{i}");
            Box::pin(async move { s.create(&key, v("x")).await }) as _
        })
        .collect();
    let created: Vec<KeyValue> = together(writes)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(created
        .iter()
        .all(|kv| kv.mod_revision == created[0].mod_revision));
    created
}

#[tokio::test]
async fn a_watch_delivers_a_batch_revision_whole_and_resumes_after_it() {
    let Some(etcd) = etcd_support::start_or_skip("etcd store tests", "").await else {
        return;
    };
    let s = etcd.store.clone();
    let start = s.current_revision().await.unwrap();
    let one = create_batch(&s, "one").await;
    let two = create_batch(&s, "two").await;
    let mut from_start = s.watch("/registry/wb/", start).await.unwrap();
    for kv in one.iter().chain(&two) {
        assert_eq!(next(&mut from_start).await.kv, *kv);
    }
    // Resuming after the first batch's revision gives all of the second batch, none of the
    // first; resuming after the second gives neither.
    let mut after_one = s.watch("/registry/wb/", one[0].mod_revision).await.unwrap();
    for kv in &two {
        assert_eq!(next(&mut after_one).await.kv, *kv);
    }
    let mut after_two = s.watch("/registry/wb/", two[0].mod_revision).await.unwrap();
    let later = s.create("/registry/wb/later", v("y")).await.unwrap();
    for w in [&mut from_start, &mut after_one, &mut after_two] {
        assert_eq!(next(w).await.kv, later);
    }
}

async fn next(w: &mut kruise_apiserver::store::WatchStream) -> kruise_apiserver::store::WatchEvent {
    use futures::StreamExt;
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(Ok(event))) => event,
        other => panic!("expected a watch event, got {other:?}"),
    }
}
