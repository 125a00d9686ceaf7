//! Sharding: objects map to a fixed number of shards, the ring assigns shards to live replicas,
//! and every write a replica makes for a shard is fenced by that shard's lock in etcd.
//!
//! An object's shard is `fnv1a64("{namespace}/{name}") mod SHARD_COUNT`. A replica acts on a shard
//! only while it holds the shard's lock key (bound to its lease); every write it makes for the
//! shard is an etcd transaction comparing the lock's create revision (the fencing token), so a
//! replica whose lease was lost cannot commit even if it still believes it owns the shard.

pub mod locks;
pub mod membership;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use kruise_apiserver::store::{KeyValue, Revision, Store, StoreError};
use tokio::sync::{watch, Notify};

use crate::ring::fnv1a64;

pub use locks::ShardLocks;
pub use membership::{Membership, MembershipConfig};

/// Number of shards objects are spread over.
pub const SHARD_COUNT: u32 = 64;

/// The shard of a namespaced (or, with an empty namespace, cluster-scoped) object.
pub fn shard_of(namespace: &str, name: &str) -> u32 {
    let key = format!("{namespace}/{name}");
    (fnv1a64(key.as_bytes()) % u64::from(SHARD_COUNT)) as u32
}

/// A failed fenced write or lock operation.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    /// The replica no longer holds the shard's lock (lease lost or shard handed over).
    #[error("fenced: replica no longer owns shard {shard}")]
    Fenced { shard: u32 },
    /// The object changed since it was read.
    #[error("conflict writing {key}: expected revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: Revision,
        actual: Revision,
    },
    /// etcd failed or timed out.
    #[error("etcd {operation}: {source}")]
    Etcd {
        operation: &'static str,
        #[source]
        source: etcd_client::Error,
    },
    /// An etcd request did not answer in time.
    #[error("etcd {operation} timed out")]
    Timeout { operation: &'static str },
    /// The embedded store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl ShardError {
    /// Whether retrying the same write may succeed (`Fenced` never does: re-read ownership).
    pub fn is_retryable(&self) -> bool {
        match self {
            ShardError::Fenced { .. } | ShardError::Conflict { .. } => false,
            ShardError::Etcd { .. } | ShardError::Timeout { .. } => true,
            ShardError::Store(e) => e.is_retryable(),
        }
    }

    /// A short, closed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ShardError::Fenced { .. } => "fenced",
            ShardError::Conflict { .. } => "conflict",
            ShardError::Etcd { .. } => "etcd",
            ShardError::Timeout { .. } => "timeout",
            ShardError::Store(e) => e.reason(),
        }
    }
}

/// The shards this replica currently owns, each with its fencing token (the lock key's create
/// revision; 0 for the single-replica embedded mode), and the work in flight on each.
///
/// Workers act on a shard inside a [`ShardGuard`] from [`Ownership::begin`]; when the ring gives
/// a shard to another replica, the shard is first removed (no new work starts), then drained
/// (the guards in flight finish, up to a deadline), and only then is its lock released.
#[derive(Clone)]
pub struct Ownership {
    owned: Arc<RwLock<BTreeMap<u32, i64>>>,
    inflight: Arc<Inflight>,
    changed: watch::Sender<u64>,
}

/// Work in flight per shard, and a signal for when a shard's count drops to zero.
#[derive(Default)]
struct Inflight {
    counts: Mutex<BTreeMap<u32, usize>>,
    idle: Notify,
}

impl Inflight {
    fn count(&self, shard: u32) -> usize {
        self.counts
            .lock()
            .map(|c| c.get(&shard).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

/// Permission to act on one owned shard; the shard is not released while the guard lives.
pub struct ShardGuard {
    shard: u32,
    token: i64,
    inflight: Arc<Inflight>,
}

impl ShardGuard {
    /// The shard.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The fencing token to write with.
    pub fn token(&self) -> i64 {
        self.token
    }
}

impl Drop for ShardGuard {
    fn drop(&mut self) {
        let idle = match self.inflight.counts.lock() {
            Ok(mut counts) => match counts.get_mut(&self.shard) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                _ => {
                    counts.remove(&self.shard);
                    true
                }
            },
            Err(_) => true,
        };
        if idle {
            self.inflight.idle.notify_waiters();
        }
    }
}

impl Default for Ownership {
    fn default() -> Self {
        Self::new()
    }
}

impl Ownership {
    /// Owns nothing.
    pub fn new() -> Self {
        let (changed, _) = watch::channel(0);
        Ownership {
            owned: Arc::default(),
            inflight: Arc::default(),
            changed,
        }
    }

    /// Starts work on `shard` if this replica owns it. While the guard lives, a handover of the
    /// shard waits (up to its drain deadline) before releasing the lock.
    pub fn begin(&self, shard: u32) -> Option<ShardGuard> {
        // Holding the read lock while counting means a shard removed by `remove` can never
        // gain new work afterwards, so a drain that starts after the removal sees every guard.
        let owned = self.owned.read().ok()?;
        let token = *owned.get(&shard)?;
        if let Ok(mut counts) = self.inflight.counts.lock() {
            *counts.entry(shard).or_insert(0) += 1;
        }
        Some(ShardGuard {
            shard,
            token,
            inflight: self.inflight.clone(),
        })
    }

    /// Work in flight on `shard`.
    pub fn in_flight(&self, shard: u32) -> usize {
        self.inflight.count(shard)
    }

    /// Waits until no work is in flight on any of `shards`, or until `deadline`; returns the
    /// shards still busy at the deadline.
    pub async fn drain(&self, shards: &[u32], deadline: tokio::time::Instant) -> Vec<u32> {
        loop {
            let idle = self.inflight.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let busy: Vec<u32> = shards
                .iter()
                .copied()
                .filter(|s| self.inflight.count(*s) > 0)
                .collect();
            if busy.is_empty() {
                return busy;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return busy;
            }
        }
    }

    /// Owns every shard with token 0 (single replica over the embedded store).
    pub fn all() -> Self {
        let ownership = Self::new();
        for shard in 0..SHARD_COUNT {
            ownership.insert(shard, 0);
        }
        ownership
    }

    /// The fencing token of `shard`, if owned.
    pub fn token(&self, shard: u32) -> Option<i64> {
        self.owned.read().ok()?.get(&shard).copied()
    }

    /// Owned shards in order.
    pub fn shards(&self) -> Vec<u32> {
        self.owned
            .read()
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Number of owned shards.
    pub fn len(&self) -> usize {
        self.owned.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether nothing is owned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Notified on every ownership change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn insert(&self, shard: u32, token: i64) {
        if let Ok(mut m) = self.owned.write() {
            m.insert(shard, token);
        }
        self.changed.send_modify(|v| *v += 1);
    }

    pub(crate) fn remove(&self, shard: u32) -> Option<i64> {
        let token = self.owned.write().ok()?.remove(&shard);
        self.changed.send_modify(|v| *v += 1);
        token
    }

    pub(crate) fn clear(&self) -> Vec<u32> {
        let shards = self
            .owned
            .write()
            .map(|mut m| std::mem::take(&mut *m).into_keys().collect())
            .unwrap_or_default();
        self.changed.send_modify(|v| *v += 1);
        shards
    }
}

/// Where fenced writes go: straight to the embedded store (single replica, nothing to fence
/// against) or through etcd transactions that compare the shard lock.
#[derive(Clone)]
pub enum FencedWriter {
    /// The embedded store; the only replica owns everything.
    Solo(Arc<dyn Store>),
    /// etcd with shard locks.
    Etcd(ShardLocks),
}

impl FencedWriter {
    /// Replaces `key` if its mod revision is `expected`, only while `token` still fences `shard`.
    pub async fn update(
        &self,
        shard: u32,
        token: i64,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, ShardError> {
        match self {
            FencedWriter::Solo(store) => match store.update(key, value, expected).await {
                Ok(kv) => Ok(kv),
                Err(StoreError::Conflict {
                    key,
                    expected,
                    actual,
                }) => Err(ShardError::Conflict {
                    key,
                    expected,
                    actual,
                }),
                Err(e) => Err(e.into()),
            },
            FencedWriter::Etcd(locks) => locks.fenced_put(shard, token, key, value, expected).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        assert_eq!(shard_of("default", "web"), shard_of("default", "web"));
        let mut counts = [0u32; SHARD_COUNT as usize];
        for i in 0..6400 {
            counts[shard_of("ns", &format!("w-{i}")) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50 && *c < 150), "{counts:?}");
    }

    #[test]
    fn ownership_tracks_tokens_and_notifies() {
        let ownership = Ownership::new();
        let rx = ownership.subscribe();
        ownership.insert(3, 42);
        assert!(rx.has_changed().unwrap_or(false));
        assert_eq!(ownership.token(3), Some(42));
        assert_eq!(ownership.remove(3), Some(42));
        assert!(ownership.is_empty());
        assert_eq!(Ownership::all().len(), SHARD_COUNT as usize);
    }

    #[tokio::test]
    async fn a_removed_shard_drains_its_work_in_flight_before_release() {
        let ownership = Ownership::new();
        ownership.insert(7, 11);
        let guard = ownership.begin(7).expect("owned");
        assert_eq!((guard.shard(), guard.token()), (7, 11));
        assert_eq!(ownership.in_flight(7), 1);
        assert!(ownership.begin(8).is_none(), "not owned");

        // Handover: removed first, so nothing new starts on it.
        ownership.remove(7);
        assert!(ownership.begin(7).is_none());
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
        assert_eq!(ownership.drain(&[7], soon).await, vec![7], "still busy");

        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let drained = {
            let ownership = ownership.clone();
            tokio::spawn(async move { ownership.drain(&[7, 9], later).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!drained.is_finished(), "waits for the guard");
        drop(guard);
        let busy = drained.await.expect("drain task");
        assert!(busy.is_empty(), "{busy:?}");
        assert_eq!(ownership.in_flight(7), 0);
    }

    #[test]
    fn fenced_is_not_retryable() {
        assert!(!ShardError::Fenced { shard: 1 }.is_retryable());
        assert_eq!(ShardError::Fenced { shard: 1 }.reason(), "fenced");
    }
}
