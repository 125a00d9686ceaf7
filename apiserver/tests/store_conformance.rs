//! The same store contract cases, run against the memory store and against a real etcd.

#[path = "support/etcd.rs"]
mod etcd_support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::StreamExt;
use kruise_apiserver::store::{
    EventKind, MemoryStore, MemoryStoreConfig, Revision, Store, StoreError, WatchEvent, WatchStream,
};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn next_event(w: &mut WatchStream) -> Result<WatchEvent, StoreError> {
    match tokio::time::timeout(Duration::from_secs(10), w.next()).await {
        Ok(Some(item)) => item,
        Ok(None) => panic!("watch stream ended"),
        Err(_) => panic!("no watch event within 10s"),
    }
}

/// Moves the store's oldest resumable revision past `revision`.
type Compactor = Box<dyn Fn(Revision) -> BoxFuture<'static, ()> + Send + Sync>;

async fn case_crud<S: Store>(s: Arc<S>, _: Compactor) {
    let a = s.create("/registry/c/a", b("1")).await.unwrap();
    assert_eq!(a.create_revision, a.mod_revision);
    assert_eq!(s.get("/registry/c/a").await.unwrap(), Some(a.clone()));
    assert_eq!(s.get("/registry/c/missing").await.unwrap(), None);
    assert_eq!(
        s.create("/registry/c/a", b("dup")).await,
        Err(StoreError::AlreadyExists {
            key: "/registry/c/a".into()
        })
    );
    let a2 = s
        .update("/registry/c/a", b("2"), a.mod_revision)
        .await
        .unwrap();
    assert!(a2.mod_revision > a.mod_revision);
    assert_eq!(
        (a2.create_revision, a2.value.clone()),
        (a.create_revision, b("2"))
    );
    assert_eq!(
        s.update("/registry/c/a", b("3"), a.mod_revision).await,
        Err(StoreError::Conflict {
            key: "/registry/c/a".into(),
            expected: a.mod_revision,
            actual: a2.mod_revision
        })
    );
    assert_eq!(
        s.update("/registry/c/missing", b("3"), a.mod_revision)
            .await,
        Err(StoreError::NotFound {
            key: "/registry/c/missing".into()
        })
    );
    assert_eq!(
        s.delete("/registry/c/a", Some(a.mod_revision)).await,
        Err(StoreError::Conflict {
            key: "/registry/c/a".into(),
            expected: a.mod_revision,
            actual: a2.mod_revision
        })
    );
    assert_eq!(
        s.delete("/registry/c/missing", None).await,
        Err(StoreError::NotFound {
            key: "/registry/c/missing".into()
        })
    );
    assert_eq!(
        s.delete("/registry/c/missing", Some(5)).await,
        Err(StoreError::NotFound {
            key: "/registry/c/missing".into()
        })
    );
    let gone = s
        .delete("/registry/c/a", Some(a2.mod_revision))
        .await
        .unwrap();
    assert!(gone.mod_revision > a2.mod_revision);
    assert_eq!(
        (gone.value.clone(), gone.create_revision),
        (b("2"), a.create_revision)
    );
    assert_eq!(s.current_revision().await.unwrap(), gone.mod_revision);
    assert_eq!(s.get("/registry/c/a").await.unwrap(), None);
    let again = s.create("/registry/c/a", b("4")).await.unwrap();
    assert_eq!(again.create_revision, again.mod_revision);
    assert!(again.create_revision > gone.mod_revision);
    let unconditional = s.delete("/registry/c/a", None).await.unwrap();
    assert_eq!(unconditional.value, b("4"));
}

async fn case_concurrent_counter<S: Store>(s: Arc<S>, _: Compactor) {
    const TASKS: usize = 16;
    const INCREMENTS: u64 = 20;
    s.create("/registry/counter", b("0")).await.unwrap();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..INCREMENTS {
                loop {
                    let current = s.get("/registry/counter").await.unwrap().unwrap();
                    let n: u64 = std::str::from_utf8(&current.value)
                        .unwrap()
                        .parse()
                        .unwrap();
                    match s
                        .update(
                            "/registry/counter",
                            b(&(n + 1).to_string()),
                            current.mod_revision,
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.unwrap();
    }
    let last = s.get("/registry/counter").await.unwrap().unwrap();
    assert_eq!(
        last.value,
        b(&(TASKS as u64 * INCREMENTS).to_string()),
        "{conflicts} conflicts seen"
    );
}

async fn case_stale_update_conflicts_and_loses_nothing<S: Store>(s: Arc<S>, _: Compactor) {
    let v1 = s.create("/registry/s/x", b("v1")).await.unwrap();
    let v2 = s
        .update("/registry/s/x", b("v2"), v1.mod_revision)
        .await
        .unwrap();
    assert!(matches!(
        s.update("/registry/s/x", b("stale"), v1.mod_revision).await,
        Err(StoreError::Conflict { actual, .. }) if actual == v2.mod_revision
    ));
    assert_eq!(
        s.get("/registry/s/x").await.unwrap().map(|kv| kv.value),
        Some(b("v2"))
    );
}

async fn case_watch_resumes_without_gap_or_duplicate<S: Store>(s: Arc<S>, _: Compactor) {
    let mut written = Vec::new();
    for i in 0..5 {
        written.push(
            s.create(&format!("/registry/w/{i}"), b("v"))
                .await
                .unwrap()
                .mod_revision,
        );
    }
    // Noise outside the watched prefix must not show up.
    s.create("/registry/other/x", b("v")).await.unwrap();
    let resume_after = written[1];
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..60 {
                let key = format!("/registry/w/{}", i % 7);
                let rev = match s.get(&key).await.unwrap() {
                    Some(kv) if i % 3 == 0 => {
                        s.delete(&key, Some(kv.mod_revision))
                            .await
                            .unwrap()
                            .mod_revision
                    }
                    Some(kv) => {
                        s.update(&key, b(&format!("u{i}")), kv.mod_revision)
                            .await
                            .unwrap()
                            .mod_revision
                    }
                    None => s.create(&key, b("c")).await.unwrap().mod_revision,
                };
                revs.push(rev);
                s.create(&format!("/registry/other/{i}"), b("noise"))
                    .await
                    .unwrap();
            }
            revs
        })
    };
    let mut w = s.watch("/registry/w/", resume_after).await.unwrap();
    let live = writer.await.unwrap();
    let expected: Vec<Revision> = written[2..].iter().copied().chain(live).collect();
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let event = next_event(&mut w).await.unwrap();
        assert!(
            event.kv.key.starts_with("/registry/w/"),
            "foreign key {}",
            event.kv.key
        );
        seen.push(event.kv.mod_revision);
    }
    assert_eq!(seen, expected);
}

async fn case_watch_from_compacted_revision<S: Store>(s: Arc<S>, compact: Compactor) {
    let first = s
        .create("/registry/k/a", b("1"))
        .await
        .unwrap()
        .mod_revision;
    s.create("/registry/k/b", b("2")).await.unwrap();
    let last = s
        .create("/registry/k/c", b("3"))
        .await
        .unwrap()
        .mod_revision;
    compact(last).await;
    let mut w = s.watch("/registry/k/", first).await.unwrap();
    match next_event(&mut w).await {
        Err(StoreError::Compacted { requested, oldest }) => {
            assert_eq!(requested, first);
            assert!(
                oldest > requested,
                "oldest {oldest} must be past the requested {requested}"
            );
        }
        other => panic!("expected Compacted first, got {other:?}"),
    }
    // A watch from the current revision still works.
    let now = s.current_revision().await.unwrap();
    let mut w = s.watch("/registry/k/", now).await.unwrap();
    let d = s.create("/registry/k/d", b("4")).await.unwrap();
    assert_eq!(next_event(&mut w).await.unwrap().kv, d);
}

async fn case_delete_event_carries_last_value<S: Store>(s: Arc<S>, _: Compactor) {
    let created = s.create("/registry/d/x", b("first")).await.unwrap();
    let updated = s
        .update("/registry/d/x", b("last"), created.mod_revision)
        .await
        .unwrap();
    let mut w = s.watch("/registry/d/", updated.mod_revision).await.unwrap();
    let deleted = s.delete("/registry/d/x", None).await.unwrap();
    let event = next_event(&mut w).await.unwrap();
    assert_eq!(event.kind, EventKind::Delete);
    assert_eq!(event.kv, deleted);
    assert_eq!(event.kv.value, b("last"));
    assert_eq!(event.kv.create_revision, created.create_revision);
    assert_eq!(event.prev, Some(updated));
    // The put events of a replay carry their previous values too.
    let mut replay = s.watch("/registry/d/", created.mod_revision).await.unwrap();
    let put = next_event(&mut replay).await.unwrap();
    assert_eq!(
        (put.kind, put.prev.map(|p| p.value)),
        (EventKind::Put, Some(b("first")))
    );
}

async fn case_paging_returns_every_key_once<S: Store>(s: Arc<S>, _: Compactor) {
    let mut expected = BTreeSet::new();
    for i in 0..23 {
        let key = format!("/registry/p/ns/{i:03}");
        s.create(&key, b("v")).await.unwrap();
        expected.insert(key);
    }
    for key in [
        "/registry/p",
        "/registry/pods/x",
        "/registry/o/x",
        "/registry/p0",
    ] {
        s.create(key, b("outside")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut start_after: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s
            .list("/registry/p/", start_after.as_deref(), Some(5))
            .await
            .unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        if !page.more {
            break;
        }
        start_after = page.items.last().map(|kv| kv.key.clone());
    }
    assert_eq!(pages, 5);
    assert_eq!(seen, expected.into_iter().collect::<Vec<_>>());
    let zero = s.list("/registry/p/", None, Some(0)).await.unwrap();
    assert_eq!((zero.items.len(), zero.more), (0, true));
    let past_end = s
        .list("/registry/p/", Some("/registry/p/ns/022"), Some(0))
        .await
        .unwrap();
    assert_eq!((past_end.items.len(), past_end.more), (0, false));
}

async fn case_large_lists_are_complete_and_consistent<S: Store>(s: Arc<S>, _: Compactor) {
    const KEYS: usize = 1_300;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..KEYS).step_by(16) {
                s.create(&format!("/registry/big/{i:05}"), b(&"x".repeat(200)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Keep rewriting the last key while listing: a list read in pages must still be one snapshot.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (s, stop) = (s.clone(), stop.clone());
        let last = format!("/registry/big/{:05}", KEYS - 1);
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let kv = s.get(&last).await.unwrap().unwrap();
                s.update(&last, b("rewritten"), kv.mod_revision)
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let all = s.list("/registry/big/", None, None).await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert_eq!(all.items.len(), KEYS);
    assert!(!all.more);
    assert!(all.items.windows(2).all(|w| w[0].key < w[1].key));
    assert!(all.items.iter().all(|kv| kv.mod_revision <= all.revision));
    let first = s.list("/registry/big/", None, Some(1_100)).await.unwrap();
    assert_eq!((first.items.len(), first.more), (1_100, true));
    assert_eq!(first.items[..1_000], all.items[..1_000]);
    let rest = s
        .list("/registry/big/", Some(&first.items[1_099].key), Some(1_100))
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.more), (KEYS - 1_100, false));
}

async fn case_list_revision<S: Store>(s: Arc<S>, _: Compactor) {
    let a = s.create("/registry/l/a", b("1")).await.unwrap();
    let list = s.list("/registry/l/", None, None).await.unwrap();
    assert_eq!(list.revision, a.mod_revision);
    assert!(!list.more);
    let other = s.create("/registry/m/x", b("1")).await.unwrap();
    let list = s.list("/registry/l/", None, None).await.unwrap();
    assert_eq!(list.items, vec![a]);
    assert_eq!(
        list.revision, other.mod_revision,
        "a list reports the store revision, not the items'"
    );
    let empty = s.list("/registry/none/", None, Some(10)).await.unwrap();
    assert_eq!(
        (empty.items.len(), empty.revision, empty.more),
        (0, other.mod_revision, false)
    );
    assert_eq!(s.current_revision().await.unwrap(), other.mod_revision);
}

async fn case_concurrent_creates_of_one_name_have_one_winner<S: Store>(s: Arc<S>, _: Compactor) {
    const TASKS: usize = 24;
    let start = Arc::new(tokio::sync::Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for i in 0..TASKS {
        let (s, start) = (s.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            // Other keys in the same moment, so that a batching store groups these writes.
            s.create(&format!("/registry/race/other-{i}"), b("o"))
                .await
                .unwrap();
            s.create("/registry/race/x", b(&i.to_string())).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(kv) => winners.push(kv),
            Err(StoreError::AlreadyExists { key }) => assert_eq!(key, "/registry/race/x"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one create wins: {winners:?}");
    assert_eq!(
        s.get("/registry/race/x").await.unwrap().as_ref(),
        Some(&winners[0])
    );
}

async fn case_a_conflicting_update_does_not_fail_concurrent_creates<S: Store>(
    s: Arc<S>,
    _: Compactor,
) {
    let v1 = s.create("/registry/mix/x", b("v1")).await.unwrap();
    let v2 = s
        .update("/registry/mix/x", b("v2"), v1.mod_revision)
        .await
        .unwrap();
    let created: Vec<_> = (0..20)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.create(&format!("/registry/mix/n{i:02}"), b("n")).await })
        })
        .collect();
    let stale = {
        let s = s.clone();
        tokio::spawn(async move {
            s.update("/registry/mix/x", b("stale"), v1.mod_revision)
                .await
        })
    };
    let missing = {
        let s = s.clone();
        tokio::spawn(async move { s.delete("/registry/mix/missing", Some(3)).await })
    };
    for (i, task) in created.into_iter().enumerate() {
        let kv = task.await.unwrap().unwrap();
        assert_eq!(kv.key, format!("/registry/mix/n{i:02}"));
        assert_eq!(kv.create_revision, kv.mod_revision);
        assert_eq!(s.get(&kv.key).await.unwrap(), Some(kv));
    }
    assert_eq!(
        stale.await.unwrap(),
        Err(StoreError::Conflict {
            key: "/registry/mix/x".into(),
            expected: v1.mod_revision,
            actual: v2.mod_revision
        })
    );
    assert_eq!(
        missing.await.unwrap(),
        Err(StoreError::NotFound {
            key: "/registry/mix/missing".into()
        })
    );
    assert_eq!(s.get("/registry/mix/x").await.unwrap(), Some(v2));
    assert_eq!(
        s.list("/registry/mix/n", None, None)
            .await
            .unwrap()
            .items
            .len(),
        20
    );
}

async fn case_watch_resumes_from_every_revision_of_concurrent_writes<S: Store>(
    s: Arc<S>,
    _: Compactor,
) {
    let before = s.current_revision().await.unwrap();
    let writes: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let key = format!("/registry/cw/{i:02}");
                let kv = s.create(&key, b("1")).await.unwrap();
                if i % 4 == 0 {
                    s.update(&key, b("2"), kv.mod_revision).await.unwrap();
                }
                if i % 8 == 0 {
                    s.delete(&key, None).await.unwrap();
                }
            })
        })
        .collect();
    for w in writes {
        w.await.unwrap();
    }
    // Every event, in revision order (events sharing a revision come in key order).
    let after_all = s.current_revision().await.unwrap();
    let mut all = Vec::new();
    let mut w = s.watch("/registry/cw/", before).await.unwrap();
    while all.len() < 40 + 10 + 5 {
        let e = next_event(&mut w).await.unwrap();
        all.push((e.kv.mod_revision, e.kv.key.clone(), e.kind));
    }
    assert!(all.windows(2).all(|p| p[0].0 <= p[1].0), "{all:?}");
    assert!(all
        .iter()
        .all(|(rev, ..)| *rev > before && *rev <= after_all));
    // Resuming after any revision gives exactly the events after it, once each.
    let mut revisions: Vec<Revision> = all.iter().map(|(rev, ..)| *rev).collect();
    revisions.dedup();
    for resume in revisions {
        let expected: Vec<_> = all
            .iter()
            .filter(|(rev, ..)| *rev > resume)
            .cloned()
            .collect();
        let mut w = s.watch("/registry/cw/", resume).await.unwrap();
        let mut seen = Vec::new();
        while seen.len() < expected.len() {
            let e = next_event(&mut w).await.unwrap();
            seen.push((e.kv.mod_revision, e.kv.key.clone(), e.kind));
        }
        assert_eq!(seen, expected, "resumed after {resume}");
        // Nothing more: the next event is a later write.
        let marker = s
            .create(&format!("/registry/cw/marker-{resume}"), b("m"))
            .await
            .unwrap();
        assert_eq!(next_event(&mut w).await.unwrap().kv, marker);
        s.delete(&marker.key, None).await.unwrap();
        all.push((marker.mod_revision, marker.key.clone(), EventKind::Put));
        let gone = next_event(&mut w).await.unwrap();
        all.push((gone.kv.mod_revision, gone.kv.key.clone(), EventKind::Delete));
    }
}

async fn case_list_at_reads_an_earlier_revision<S: Store>(s: Arc<S>, compact: Compactor) {
    for i in 0..9 {
        s.create(&format!("/registry/la/{i}"), b(&format!("v{i}")))
            .await
            .unwrap();
    }
    let first = s.list("/registry/la/", None, Some(3)).await.unwrap();
    assert!(first.more);
    let at = first.revision;
    // Change the keyspace behind the first page.
    let k4 = s.get("/registry/la/4").await.unwrap().unwrap();
    s.update("/registry/la/4", b("changed"), k4.mod_revision)
        .await
        .unwrap();
    s.delete("/registry/la/5", None).await.unwrap();
    s.create("/registry/la/45", b("new")).await.unwrap();
    s.delete("/registry/la/8", None).await.unwrap();
    s.create("/registry/la/9", b("new")).await.unwrap();
    s.create("/registry/lb", b("outside")).await.unwrap();
    let last = &first.items[2].key;
    let second = s
        .list_at("/registry/la/", Some(last), Some(3), at)
        .await
        .unwrap();
    assert_eq!(second.revision, at);
    let values: Vec<_> = second
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("/registry/la/3", b("v3")),
            ("/registry/la/4", b("v4")),
            ("/registry/la/5", b("v5"))
        ]
    );
    assert_eq!(second.items[1], k4);
    assert!(second.more);
    let third = s
        .list_at("/registry/la/", Some("/registry/la/5"), None, at)
        .await
        .unwrap();
    let keys: Vec<_> = third.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/registry/la/6", "/registry/la/7", "/registry/la/8"]);
    assert!(!third.more);
    let counted = s
        .list_at("/registry/la/", Some("/registry/la/7"), Some(0), at)
        .await
        .unwrap();
    assert_eq!((counted.items.len(), counted.more), (0, true));
    // At the current revision it is a plain list.
    let now = s.current_revision().await.unwrap();
    assert_eq!(
        s.list_at("/registry/la/", None, None, now).await.unwrap(),
        s.list("/registry/la/", None, None).await.unwrap()
    );
    compact(now).await;
    match s.list_at("/registry/la/", Some(last), Some(3), at).await {
        Err(StoreError::Compacted { requested, .. }) => assert_eq!(requested, at),
        other => panic!("expected Compacted, got {other:?}"),
    }
}

/// Events a conformance memory store keeps; the compactor pushes that many unrelated events.
const MEMORY_HISTORY: usize = 256;

/// A memory store with a small history; compaction overwrites the history with filler events.
fn memory() -> (Arc<MemoryStore>, Compactor) {
    let store = Arc::new(MemoryStore::with_config(MemoryStoreConfig {
        history_size: MEMORY_HISTORY,
        ..MemoryStoreConfig::default()
    }));
    let writer = store.clone();
    let compact: Compactor = Box::new(move |_| {
        let writer = writer.clone();
        Box::pin(async move {
            for i in 0..MEMORY_HISTORY {
                writer
                    .create(&format!("/filler/{i}"), b("x"))
                    .await
                    .unwrap();
            }
        })
    });
    (store, compact)
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory_store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, compact) = memory();
                    super::$case(store, compact).await;
                }
            )*
        }
        mod etcd_store {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(etcd) = etcd_support::start_or_skip("etcd conformance", "").await else {
                        return;
                    };
                    let client = etcd.store.client().clone();
                    let compact: Compactor = Box::new(move |revision| {
                        let mut client = client.clone();
                        Box::pin(async move {
                            client.compact(revision, None).await.unwrap();
                        })
                    });
                    super::$case(Arc::new(etcd.store.clone()), compact).await;
                }
            )*
        }
    };
}

conformance!(
    case_crud,
    case_concurrent_counter,
    case_stale_update_conflicts_and_loses_nothing,
    case_watch_resumes_without_gap_or_duplicate,
    case_watch_from_compacted_revision,
    case_delete_event_carries_last_value,
    case_paging_returns_every_key_once,
    case_list_revision,
    case_large_lists_are_complete_and_consistent,
    case_concurrent_creates_of_one_name_have_one_winner,
    case_a_conflicting_update_does_not_fail_concurrent_creates,
    case_watch_resumes_from_every_revision_of_concurrent_writes,
    case_list_at_reads_an_earlier_revision,
);

/// A key prefix isolates a store's keys and is invisible to its callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_key_prefix_is_stripped_and_isolates() {
    let Some(etcd) = etcd_support::start_or_skip("etcd conformance", "/tenant-a").await else {
        return;
    };
    let other =
        kruise_apiserver::store::EtcdStore::from_client(etcd.store.client().clone(), "/tenant-b");
    let a = &etcd.store;
    let start = a.current_revision().await.unwrap();
    let mut everything = a.watch("", start).await.unwrap();
    other.create("/registry/x", b("b")).await.unwrap();
    let created = a.create("/registry/x", b("a")).await.unwrap();
    assert_eq!(created.key, "/registry/x");
    let listed = a.list("", None, None).await.unwrap();
    assert_eq!(listed.items, vec![created.clone()]);
    assert_eq!(next_event(&mut everything).await.unwrap().kv, created);
    let raw = etcd
        .store
        .client()
        .clone()
        .get("/tenant-a/registry/x", None)
        .await
        .unwrap();
    assert_eq!(
        raw.kvs().first().map(|kv| kv.value().to_vec()),
        Some(b"a".to_vec())
    );
}

/// Without a key prefix, the empty list/watch prefix covers the whole keyspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_prefix_lists_and_watches_all_keys() {
    let (memory, _) = memory();
    check_empty_prefix(memory).await;
    if let Some(etcd) = etcd_support::start_or_skip("etcd conformance", "").await {
        check_empty_prefix(Arc::new(etcd.store.clone())).await;
    }
}

async fn check_empty_prefix<S: Store>(s: Arc<S>) {
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch("", start).await.unwrap();
    let a = s.create("/a", b("1")).await.unwrap();
    let z = s.create("/registry/z", b("2")).await.unwrap();
    let list = s.list("", None, None).await.unwrap();
    assert_eq!(list.items, vec![a.clone(), z.clone()]);
    assert_eq!(next_event(&mut w).await.unwrap().kv, a);
    assert_eq!(next_event(&mut w).await.unwrap().kv, z);
}
