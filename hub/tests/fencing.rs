//! Fencing against a real etcd: two replicas that both believe they own a shard never both
//! commit, and a replica that lost its lease gets a non-retryable `Fenced` error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::Client;
use kruise_apiserver::store::etcd_process::EtcdProcess;
use kruise_hub::metrics::HubMetrics;
use kruise_hub::shard::{Membership, MembershipConfig, ShardError, ShardLocks, SHARD_COUNT};

async fn etcd() -> Option<(EtcdProcess, Client)> {
    let process = match EtcdProcess::start().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping: {e}");
            return None;
        }
    };
    let client = Client::connect([process.endpoint()], None)
        .await
        .expect("connect etcd");
    Some((process, client))
}

/// Reads the counter key and its mod revision.
async fn read(client: &mut Client, key: &str) -> (u64, i64) {
    let resp = client.get(key, None).await.expect("get");
    match resp.kvs().first() {
        Some(kv) => (
            std::str::from_utf8(kv.value())
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            kv.mod_revision(),
        ),
        None => (0, 0),
    }
}

#[tokio::test]
async fn two_believed_owners_never_both_commit() {
    let Some((_etcd, client)) = etcd().await else {
        return;
    };
    let locks = ShardLocks::new(client.clone(), "/test-hub");
    let shard = 7;
    let mut c = client.clone();
    let lease_a = c.lease_grant(30, None).await.expect("lease a").id();
    let lease_b = c.lease_grant(30, None).await.expect("lease b").id();
    let token_a = locks
        .try_acquire(shard, "a", lease_a)
        .await
        .expect("acquire")
        .expect("free lock");
    assert!(
        locks
            .try_acquire(shard, "b", lease_b)
            .await
            .expect("acquire")
            .is_none(),
        "a held lock cannot be taken"
    );
    // A's lease is lost (e.g. a long pause) while A still believes it owns the shard; B, whose
    // ring now says it owns the shard, takes the lock.
    c.lease_revoke(lease_a).await.expect("revoke a");
    let token_b = locks
        .try_acquire(shard, "b", lease_b)
        .await
        .expect("acquire")
        .expect("lock free after a's lease ended");
    assert!(token_b > token_a);

    let key = "/registry/test/counter";
    let commits_a = Arc::new(AtomicU64::new(0));
    let commits_b = Arc::new(AtomicU64::new(0));
    let fenced_a = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (token, commits, fenced) in [
        (token_a, commits_a.clone(), Some(fenced_a.clone())),
        (token_b, commits_b.clone(), None),
    ] {
        let (locks, mut client) = (locks.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let (value, rev) = read(&mut client, key).await;
                let next = Bytes::from((value + 1).to_string());
                match locks.fenced_put(shard, token, key, next, rev).await {
                    Ok(_) => {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(ShardError::Fenced { shard: s }) => {
                        assert_eq!(s, shard);
                        if let Some(f) = &fenced {
                            f.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(ShardError::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    assert_eq!(
        commits_a.load(Ordering::Relaxed),
        0,
        "the stale owner committed"
    );
    assert_eq!(
        fenced_a.load(Ordering::Relaxed),
        50,
        "every stale write is fenced"
    );
    assert!(commits_b.load(Ordering::Relaxed) > 0);
    let (value, _) = read(&mut c, key).await;
    assert_eq!(
        value,
        commits_b.load(Ordering::Relaxed),
        "only b's commits landed"
    );
    assert!(!ShardError::Fenced { shard }.is_retryable());
    // A forged token (a replica that never held the lock) is fenced too.
    let forged = locks
        .fenced_put(shard, token_b + 1000, key, Bytes::from("x"), 0)
        .await;
    assert!(
        matches!(forged, Err(ShardError::Fenced { .. })),
        "{forged:?}"
    );
}

fn member(client: &Client, id: &str) -> Arc<Membership> {
    Arc::new(Membership::new(
        client.clone(),
        MembershipConfig {
            id: id.into(),
            prefix: "/ring-test".into(),
            lease_ttl: Duration::from_secs(2),
            vnodes: 256,
            grpc_endpoint: format!("https://{id}"),
        },
        Arc::new(HubMetrics::default()),
    ))
}

async fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn replicas_split_shards_and_take_over_after_leave() {
    let Some((_etcd, client)) = etcd().await else {
        return;
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (stop_c_tx, stop_c_rx) = tokio::sync::watch::channel(false);
    let a = member(&client, "a");
    let b = member(&client, "b");
    let c = member(&client, "c");
    tokio::spawn(a.clone().run(stop_rx.clone()));
    tokio::spawn(b.clone().run(stop_rx.clone()));
    let c_task = tokio::spawn(c.clone().run(stop_c_rx));
    let total = |ms: &[&Arc<Membership>]| ms.iter().map(|m| m.ownership().len()).sum::<usize>();
    wait_for("three replicas own every shard", || {
        total(&[&a, &b, &c]) == SHARD_COUNT as usize
            && [&a, &b, &c].iter().all(|m| !m.ownership().is_empty())
    })
    .await;
    // No shard is owned twice.
    let mut seen = std::collections::HashSet::new();
    for m in [&a, &b, &c] {
        for s in m.ownership().shards() {
            assert!(seen.insert(s), "shard {s} owned twice");
        }
    }
    let before_c = c.ownership().len();
    stop_c_tx.send(true).expect("stop c");
    c_task.await.expect("c stopped");
    wait_for("a and b take over c's shards", || {
        total(&[&a, &b]) == SHARD_COUNT as usize
    })
    .await;
    assert!(before_c > 0);
    stop_tx.send(true).expect("stop");
}
