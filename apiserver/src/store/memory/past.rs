//! Reading the keyspace as of an earlier revision, for the later pages of a paged list.
//!
//! The state holds only the latest value per key; a value at revision `R` is recovered from the
//! first kept event after `R` on that key (its `prev`). That needs every event after `R`: `R`
//! must not be below the history floor, and a persistent store's events that are being written to
//! its log (neither queued nor yet in the history) must have landed first.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::State;
use crate::store::{KeyValue, ListResult, Revision, StoreError};

impl State {
    /// Keys under `prefix` after `start_after` (at most `limit`) as they were at `revision`.
    /// `Ok(None)` when some events after `revision` are in flight to the log: retry shortly.
    pub(super) fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> Result<Option<ListResult>, StoreError> {
        if revision > self.revision {
            return Err(StoreError::Internal {
                message: format!(
                    "listing at revision {revision}: the store is only at revision {}",
                    self.revision
                ),
            });
        }
        if revision < self.floor {
            return Err(StoreError::Compacted {
                requested: revision,
                oldest: self.floor,
            });
        }
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let in_range = |key: &str| {
            key.starts_with(prefix)
                && match start {
                    Bound::Excluded(after) => key > after,
                    _ => true,
                }
        };
        // The value each key changed after `revision` had at `revision` (None: absent then).
        let newer = self.history.range(
            self.history
                .partition_point(|e| e.kv.mod_revision <= revision)..,
        );
        let queued = self.queue.iter().flat_map(|q| q.events.iter());
        let mut undone = 0;
        let mut then: BTreeMap<&str, Option<&KeyValue>> = BTreeMap::new();
        for event in newer.chain(queued) {
            undone += 1;
            if in_range(&event.kv.key) {
                then.entry(event.kv.key.as_str())
                    .or_insert(event.prev.as_ref());
            }
        }
        // Revisions are consecutive here; fewer events than revisions means some are in flight.
        if undone != self.revision - revision {
            return Ok(None);
        }
        let limit = limit.unwrap_or(usize::MAX);
        let mut now = self
            .data
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .map(|(key, kv)| (key.as_str(), Some(kv)))
            .peekable();
        let mut changed = then.into_iter().peekable();
        let mut items = Vec::new();
        let mut more = false;
        loop {
            // Merge the two key-ordered sequences; a changed key's old value wins.
            let next = match (now.peek(), changed.peek()) {
                (None, None) => break,
                (Some(_), None) => now.next(),
                (None, Some(_)) => changed.next(),
                (Some((a, _)), Some((b, _))) => match a.cmp(b) {
                    std::cmp::Ordering::Less => now.next(),
                    std::cmp::Ordering::Greater => changed.next(),
                    std::cmp::Ordering::Equal => {
                        now.next();
                        changed.next()
                    }
                },
            };
            let Some((_, Some(kv))) = next else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(kv.clone());
        }
        Ok(Some(ListResult {
            items,
            revision,
            more,
        }))
    }
}
