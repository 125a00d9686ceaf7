use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::{MemoryStore, MemoryStoreConfig};
use crate::store::{EventKind, Store, StoreError, WatchStream};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next(w: &mut WatchStream) -> Result<crate::store::WatchEvent, StoreError> {
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("watch ended"),
        Err(_) => panic!("no watch event within 5s"),
    }
}

#[tokio::test]
async fn create_update_delete_assign_increasing_revisions() {
    let s = MemoryStore::new();
    let a = s.create("/r/a", b("1")).await.unwrap();
    assert_eq!((a.create_revision, a.mod_revision), (1, 1));
    assert_eq!(
        s.create("/r/a", b("x")).await,
        Err(StoreError::AlreadyExists { key: "/r/a".into() })
    );
    let a2 = s.update("/r/a", b("2"), 1).await.unwrap();
    assert_eq!((a2.create_revision, a2.mod_revision), (1, 2));
    assert_eq!(
        s.update("/r/a", b("3"), 1).await,
        Err(StoreError::Conflict {
            key: "/r/a".into(),
            expected: 1,
            actual: 2
        })
    );
    assert_eq!(
        s.update("/r/b", b("3"), 1).await,
        Err(StoreError::NotFound { key: "/r/b".into() })
    );
    assert!(matches!(
        s.delete("/r/a", Some(1)).await,
        Err(StoreError::Conflict { .. })
    ));
    let gone = s.delete("/r/a", Some(2)).await.unwrap();
    assert_eq!((gone.value.as_ref(), gone.mod_revision), (&b"2"[..], 3));
    assert_eq!(s.get("/r/a").await.unwrap(), None);
    assert_eq!(s.current_revision().await.unwrap(), 3);
    let again = s.create("/r/a", b("4")).await.unwrap();
    assert_eq!((again.create_revision, again.mod_revision), (4, 4));
}

#[tokio::test]
async fn list_pages_by_start_after_and_limit() {
    let s = MemoryStore::new();
    for k in ["/r/a", "/r/b", "/r/c", "/q/x", "/rx"] {
        s.create(k, b(k)).await.unwrap();
    }
    let page = s.list("/r/", None, Some(2)).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(
        (keys, page.more, page.revision),
        (vec!["/r/a", "/r/b"], true, 5)
    );
    let page = s.list("/r/", Some("/r/b"), Some(2)).await.unwrap();
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!((keys, page.more), (vec!["/r/c"], false));
    let all = s.list("/r", None, None).await.unwrap();
    assert_eq!(all.items.len(), 4);
}

#[tokio::test]
async fn watch_replays_history_then_live_events() {
    let s = MemoryStore::new();
    s.create("/r/a", b("1")).await.unwrap();
    s.create("/other", b("1")).await.unwrap();
    s.update("/r/a", b("2"), 1).await.unwrap();
    let mut w = s.watch("/r/", 1).await.unwrap();
    let e = next(&mut w).await.unwrap();
    assert_eq!((e.kind, e.kv.mod_revision), (EventKind::Put, 3));
    assert_eq!(e.prev.map(|p| p.mod_revision), Some(1));
    s.delete("/r/a", None).await.unwrap();
    let e = next(&mut w).await.unwrap();
    assert_eq!(
        (e.kind, e.kv.mod_revision, e.kv.value),
        (EventKind::Delete, 4, b("2"))
    );
}

#[tokio::test]
async fn watch_before_history_start_is_compacted() {
    let s = MemoryStore::with_config(MemoryStoreConfig {
        history_size: 3,
        watch_buffer: 16,
        ..Default::default()
    });
    for i in 0..6 {
        s.create(&format!("/r/{i}"), b("v")).await.unwrap();
    }
    let mut w = s.watch("/r/", 1).await.unwrap();
    assert_eq!(
        next(&mut w).await,
        Err(StoreError::Compacted {
            requested: 1,
            oldest: 3
        })
    );
    let mut ok = s.watch("/r/", 3).await.unwrap();
    assert_eq!(next(&mut ok).await.unwrap().kv.mod_revision, 4);
}

#[tokio::test]
async fn overflowing_watcher_ends_with_compacted_and_does_not_block_writers() {
    let s = MemoryStore::with_config(MemoryStoreConfig {
        history_size: 100,
        watch_buffer: 2,
        ..Default::default()
    });
    let mut w = s.watch("/r/", 0).await.unwrap();
    for i in 0..5 {
        s.create(&format!("/r/{i}"), b("v")).await.unwrap();
    }
    assert_eq!(s.watcher_count(), 0);
    assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, 1);
    assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, 2);
    assert_eq!(
        next(&mut w).await,
        Err(StoreError::Compacted {
            requested: 2,
            oldest: 3
        })
    );
    assert!(w.next().await.is_none());
}

#[tokio::test]
async fn dropping_a_watch_unregisters_it() {
    let s = MemoryStore::new();
    let w = s.watch("/r/", 0).await.unwrap();
    assert_eq!(s.watcher_count(), 1);
    drop(w);
    assert_eq!(s.watcher_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_started_during_writes_sees_every_event_once_in_order() {
    let s = MemoryStore::new();
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..2_000 {
                s.create(&format!("/r/{i}"), b("v")).await.unwrap();
            }
        })
    };
    tokio::task::yield_now().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch("/r/", start).await.unwrap();
    writer.await.unwrap();
    let mut expected = start + 1;
    while expected <= 2_000 {
        assert_eq!(next(&mut w).await.unwrap().kv.mod_revision, expected);
        expected += 1;
    }
}
