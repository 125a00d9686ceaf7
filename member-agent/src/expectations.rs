//! Expectations: writes a controller has made but not yet seen in its cache. While any are
//! pending for an owner, the controller does not act on that owner (its cache is stale).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Expected, not yet observed, changes for one owner.
#[derive(Debug, Default)]
struct Pending {
    creates: BTreeSet<String>,
    deletes: BTreeSet<String>,
    /// Pod name → resource version our own write produced.
    updates: BTreeMap<String, u64>,
    since: Option<Instant>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.creates.is_empty() && self.deletes.is_empty() && self.updates.is_empty()
    }
}

/// What the cache currently holds for an owner's children, for [`Expectations::satisfied`].
pub trait Observed {
    /// The resource version of the named child in the cache, `None` if absent.
    fn resource_version(&self, name: &str) -> Option<u64>;
}

impl Observed for BTreeMap<String, u64> {
    fn resource_version(&self, name: &str) -> Option<u64> {
        self.get(name).copied()
    }
}

/// Per-owner expectations, owned by a controller's context.
#[derive(Debug)]
pub struct Expectations {
    pending: Mutex<BTreeMap<String, Pending>>,
    timeout: Duration,
}

impl Expectations {
    /// Expectations that are dropped after `timeout` (a lost watch event must not wedge an owner).
    pub fn new(timeout: Duration) -> Self {
        Self {
            pending: Mutex::new(BTreeMap::new()),
            timeout,
        }
    }

    fn with<R>(&self, owner: &str, f: impl FnOnce(&mut Pending) -> R) -> R {
        let mut all = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let p = all.entry(owner.to_string()).or_default();
        if p.since.is_none() {
            p.since = Some(Instant::now());
        }
        f(p)
    }

    /// Records a child we created.
    pub fn expect_create(&self, owner: &str, name: &str) {
        self.with(owner, |p| p.creates.insert(name.to_string()));
    }

    /// Drops a create expectation whose create failed.
    pub fn forget_create(&self, owner: &str, name: &str) {
        let mut all = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = all.get_mut(owner) {
            p.creates.remove(name);
        }
    }

    /// Records a child we deleted.
    pub fn expect_delete(&self, owner: &str, name: &str) {
        self.with(owner, |p| p.deletes.insert(name.to_string()));
    }

    /// Records a child we updated, with the resource version the server returned.
    pub fn expect_update(&self, owner: &str, name: &str, resource_version: Option<&str>) {
        if let Some(rv) = resource_version.and_then(|rv| rv.parse::<u64>().ok()) {
            self.with(owner, |p| p.updates.insert(name.to_string(), rv));
        }
    }

    /// Clears what the cache already shows; true when nothing remains pending (or it timed out).
    pub fn satisfied(&self, owner: &str, cache: &dyn Observed) -> bool {
        let mut all = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let Some(p) = all.get_mut(owner) else {
            return true;
        };
        p.creates.retain(|n| cache.resource_version(n).is_none());
        p.deletes.retain(|n| cache.resource_version(n).is_some());
        p.updates
            .retain(|n, rv| cache.resource_version(n).is_some_and(|seen| seen < *rv));
        let expired = p.since.is_some_and(|s| s.elapsed() >= self.timeout);
        if p.is_empty() || expired {
            all.remove(owner);
            return true;
        }
        false
    }

    /// Forgets an owner (it was deleted).
    pub fn forget(&self, owner: &str) {
        let mut all = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_deletes_and_updates_clear_when_seen() {
        let e = Expectations::new(Duration::from_secs(60));
        let mut cache: BTreeMap<String, u64> =
            BTreeMap::from([("old".to_string(), 5), ("upd".to_string(), 5)]);
        assert!(e.satisfied("ns/a", &cache));
        e.expect_create("ns/a", "new");
        e.expect_delete("ns/a", "old");
        e.expect_update("ns/a", "upd", Some("10"));
        assert!(!e.satisfied("ns/a", &cache));
        cache.insert("new".into(), 7);
        cache.remove("old");
        assert!(!e.satisfied("ns/a", &cache), "update not seen yet");
        cache.insert("upd".into(), 9);
        assert!(!e.satisfied("ns/a", &cache), "stale version of upd");
        cache.insert("upd".into(), 10);
        assert!(e.satisfied("ns/a", &cache));
    }

    #[test]
    fn expectations_time_out() {
        let e = Expectations::new(Duration::ZERO);
        e.expect_create("ns/a", "never");
        assert!(e.satisfied("ns/a", &BTreeMap::new()));
    }

    #[test]
    fn deleted_pod_satisfies_update_expectation() {
        let e = Expectations::new(Duration::from_secs(60));
        e.expect_update("o", "gone", Some("3"));
        assert!(e.satisfied("o", &BTreeMap::new()));
        e.expect_update("o", "x", Some("not-a-number"));
        assert!(e.satisfied("o", &BTreeMap::new()));
    }
}
