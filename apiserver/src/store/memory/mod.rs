//! An in-process MVCC store: one global revision, the latest value per key, and a bounded event
//! history from which watches resume.
//!
//! All state sits behind one `std::sync::Mutex` that is never held across an await; every
//! operation is a short critical section over a `BTreeMap`. Watches are registered and replayed
//! under the same lock as writes, so a watch sees every event after its start revision exactly
//! once, in order, even while writes happen.
//!
//! Slow watchers: each watcher has a bounded channel ([`MemoryStoreConfig::watch_buffer`]). A
//! writer never waits for a watcher; if a watcher's channel is full the watcher is dropped and its
//! stream ends with [`StoreError::Compacted`] after the events it already holds. The API layer
//! turns that into a 410 `ERROR` event and the client relists. Memory per watcher is therefore
//! bounded by the buffer size.
//!
//! `Compacted { requested, oldest }`: for a start revision older than the kept history,
//! `oldest` is the lowest start revision still served; for an overflowed watcher, `requested` is
//! the last revision it was given and `oldest` the first one it missed.
//!
//! Persistence ([`MemoryStore::open`]): writes go to an append-only, checksummed log with group
//! commit (one fsync covers every write queued meanwhile) and are acknowledged and shown to
//! watchers only once durable; periodic snapshots truncate the log. See `persist` for the format
//! and the recovery rules. One process at a time may open a directory (not enforced).

mod past;
mod persist;
mod wal;
mod watch;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, OpenOptions};
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::mpsc;

pub use self::persist::PersistError;
use self::persist::{io_err, LOG_FILE, OLD_LOG_FILE, SNAPSHOT_FILE};
use self::wal::{LogFile, LogQueue, Wal};
use self::watch::{MemoryWatch, Offer, Watcher};
use super::{
    EventKind, KeyValue, ListResult, Revision, Store, StoreError, WatchEvent, WatchStream,
};

/// How often, and how far apart, [`Store::list_at`] looks again while writes are in flight to
/// the log.
const LIST_AT_ATTEMPTS: u32 = 5_000;
const LIST_AT_PAUSE: std::time::Duration = std::time::Duration::from_millis(1);

/// Tunables of a [`MemoryStore`].
#[derive(Clone, Debug)]
pub struct MemoryStoreConfig {
    /// Number of events kept for watch resume; older start revisions get `Compacted`.
    pub history_size: usize,
    /// Events buffered per watcher before the watcher is dropped with `Compacted`.
    pub watch_buffer: usize,
    /// Log records after which a persistent store writes a snapshot and truncates its log
    /// (once the log is also at least as large as the previous snapshot).
    pub snapshot_every: u64,
}

impl Default for MemoryStoreConfig {
    fn default() -> Self {
        Self {
            history_size: 10_000,
            watch_buffer: 4_096,
            snapshot_every: 10_000,
        }
    }
}

/// The in-memory store; cheap to clone (clones share state).
#[derive(Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    config: MemoryStoreConfig,
    state: Mutex<State>,
    next_watcher: AtomicU64,
    /// The write log of a persistent store.
    wal: Option<Wal>,
}

/// Everything guarded by the store lock.
pub(crate) struct State {
    revision: Revision,
    data: BTreeMap<String, KeyValue>,
    history: VecDeque<WatchEvent>,
    /// The lowest start revision a watch can resume from (events after it are all in `history`).
    floor: Revision,
    watchers: HashMap<u64, Watcher>,
    /// Writes waiting for the log (persistent stores only).
    queue: Option<LogQueue>,
}

/// A requested write.
enum Write {
    Create(Bytes),
    Update(Bytes, Revision),
    Delete(Option<Revision>),
}

impl State {
    fn empty() -> Self {
        Self {
            revision: 0,
            data: BTreeMap::new(),
            history: VecDeque::new(),
            floor: 0,
            watchers: HashMap::new(),
            queue: None,
        }
    }

    /// Validates `write` against the current value, then applies it under the next revision.
    fn apply(&mut self, key: &str, write: Write) -> Result<WatchEvent, StoreError> {
        let current = self.data.get(key);
        let revision = self.revision + 1;
        let event = match (write, current) {
            (Write::Create(_), Some(_)) => {
                return Err(StoreError::AlreadyExists {
                    key: key.to_owned(),
                });
            }
            (Write::Create(value), None) => WatchEvent {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            },
            (Write::Update(..) | Write::Delete(_), None) => {
                return Err(StoreError::NotFound {
                    key: key.to_owned(),
                });
            }
            (Write::Update(value, expected), Some(old)) => {
                check_expected(old, expected)?;
                WatchEvent {
                    kind: EventKind::Put,
                    kv: KeyValue {
                        key: key.to_owned(),
                        value,
                        create_revision: old.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(old.clone()),
                }
            }
            (Write::Delete(expected), Some(old)) => {
                if let Some(expected) = expected {
                    check_expected(old, expected)?;
                }
                WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        mod_revision: revision,
                        ..old.clone()
                    },
                    prev: Some(old.clone()),
                }
            }
        };
        self.replay_event(&event);
        Ok(event)
    }

    /// Applies an already validated event to the key map (also used by log recovery).
    pub(crate) fn replay_event(&mut self, event: &WatchEvent) {
        self.revision = event.kv.mod_revision;
        match event.kind {
            EventKind::Put => {
                self.data.insert(event.kv.key.clone(), event.kv.clone());
            }
            EventKind::Delete => {
                self.data.remove(&event.kv.key);
            }
        }
    }

    /// Appends `event` to the history and hands it to every matching watcher.
    pub(crate) fn publish(&mut self, event: WatchEvent, history_size: usize) {
        let mut gone = Vec::new();
        for (id, watcher) in &self.watchers {
            match watcher.offer(&event) {
                Offer::Keep => {}
                Offer::Remove => gone.push(*id),
                Offer::Overflowed => {
                    tracing::warn!(
                        watcher = id,
                        prefix = %watcher.prefix,
                        revision = event.kv.mod_revision,
                        "watcher fell behind its buffer; ending its stream with Compacted"
                    );
                    gone.push(*id);
                }
            }
        }
        for id in gone {
            self.watchers.remove(&id);
        }
        self.push_history(event, history_size);
    }

    pub(crate) fn push_history(&mut self, event: WatchEvent, history_size: usize) {
        self.history.push_back(event);
        while self.history.len() > history_size {
            if let Some(evicted) = self.history.pop_front() {
                self.floor = evicted.kv.mod_revision;
            }
        }
    }
}

fn check_expected(current: &KeyValue, expected: Revision) -> Result<(), StoreError> {
    if current.mod_revision == expected {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            key: current.key.clone(),
            expected,
            actual: current.mod_revision,
        })
    }
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, State>, StoreError> {
        self.state.lock().map_err(|_| StoreError::Internal {
            message: "memory store lock poisoned by an earlier panic".to_owned(),
        })
    }

    fn remove_watcher(&self, id: u64) {
        if let Ok(mut state) = self.state.lock() {
            state.watchers.remove(&id);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A purely in-memory store with the default configuration.
    pub fn new() -> Self {
        Self::with_config(MemoryStoreConfig::default())
    }

    /// A purely in-memory store.
    pub fn with_config(config: MemoryStoreConfig) -> Self {
        Self::from_parts(config, State::empty(), None)
    }

    /// Opens (or creates) a persistent store in `dir`: recovers the snapshot and the write log,
    /// then logs every write (fsynced before the write returns). Revisions continue from the
    /// recovered revision, and watches can resume from any revision the replayed log covers.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, PersistError> {
        Self::open_with_config(dir, MemoryStoreConfig::default())
    }

    /// [`MemoryStore::open`] with explicit tunables.
    pub fn open_with_config(
        dir: impl AsRef<Path>,
        config: MemoryStoreConfig,
    ) -> Result<Self, PersistError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut state = State::empty();
        let snapshot_revision = persist::load_snapshot(&dir.join(SNAPSHOT_FILE), &mut state)?;
        let log_path = dir.join(LOG_FILE);
        let old_log_path = dir.join(OLD_LOG_FILE);
        let history_size = config.history_size.max(1);
        let old_records =
            persist::replay_log(&old_log_path, &mut state, snapshot_revision, history_size)?;
        let mut records =
            persist::replay_log(&log_path, &mut state, snapshot_revision, history_size)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io_err(&log_path))?;
        if old_log_path.exists() {
            // A crash interrupted a snapshot: finish the job now that everything is replayed.
            tracing::warn!(dir = %dir.display(), old_records, "completing an interrupted store snapshot");
            persist::write_snapshot(dir, state.revision, state.data.values())?;
            fs::remove_file(&old_log_path).map_err(io_err(&old_log_path))?;
            file.set_len(0)
                .and_then(|()| file.sync_all())
                .map_err(io_err(&log_path))?;
            records = 0;
        }
        persist::sync_dir(dir)?;
        let size_of = |path: &Path| fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let (log_bytes, snapshot_bytes) = (size_of(&log_path), size_of(&dir.join(SNAPSHOT_FILE)));
        tracing::info!(
            dir = %dir.display(),
            revision = state.revision,
            snapshot_revision,
            log_records = records,
            keys = state.data.len(),
            "recovered memory store"
        );
        let wal = Wal {
            dir: dir.to_owned(),
            log: Arc::new(Mutex::new(LogFile {
                file,
                path: log_path,
                records,
                bytes: log_bytes,
                snapshot_bytes,
            })),
            durable: AtomicI64::new(state.revision),
            snapshot_every: config.snapshot_every.max(1),
            snapshotter: Mutex::new(None),
        };
        state.queue = Some(LogQueue::default());
        Ok(Self::from_parts(config, state, Some(wal)))
    }

    fn from_parts(config: MemoryStoreConfig, state: State, wal: Option<Wal>) -> Self {
        let config = MemoryStoreConfig {
            history_size: config.history_size.max(1),
            watch_buffer: config.watch_buffer.max(1),
            snapshot_every: config.snapshot_every.max(1),
        };
        Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                next_watcher: AtomicU64::new(0),
                wal,
            }),
        }
    }

    /// Number of live watchers (for tests and diagnostics).
    pub fn watcher_count(&self) -> usize {
        self.shared.lock().map(|s| s.watchers.len()).unwrap_or(0)
    }

    async fn write(&self, key: &str, write: Write) -> Result<KeyValue, StoreError> {
        // Callers often hand over a grown serialisation buffer with up to 2x slack; values live
        // long here, so keep an exact-size copy (made before taking the lock).
        let write = match write {
            Write::Create(value) => Write::Create(Bytes::copy_from_slice(&value)),
            Write::Update(value, expected) => {
                Write::Update(Bytes::copy_from_slice(&value), expected)
            }
            delete @ Write::Delete(_) => delete,
        };
        let result = {
            let mut state = self.shared.lock()?;
            if let Some(failed) = state.queue.as_ref().and_then(|q| q.failed.as_ref()) {
                return Err(StoreError::Internal {
                    message: failed.clone(),
                });
            }
            let event = state.apply(key, write)?;
            let result = event.kv.clone();
            match state.queue.as_mut() {
                Some(queue) => {
                    persist::encode_event(&mut queue.bytes, &event);
                    queue.events.push(event);
                }
                None => state.publish(event, self.shared.config.history_size),
            }
            result
        };
        if self.shared.wal.is_some() {
            // Runs to completion even if this future is dropped, so the queue always drains.
            let shared = self.shared.clone();
            let revision = result.mod_revision;
            tokio::task::spawn_blocking(move || shared.flush(revision))
                .await
                .map_err(|e| StoreError::Internal {
                    message: format!("store log flush task: {e}"),
                })??;
        }
        Ok(result)
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        Ok(self.shared.lock()?.data.get(key).cloned())
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
    ) -> Result<ListResult, StoreError> {
        let state = self.shared.lock()?;
        let start = match start_after {
            Some(after) if after >= prefix => Bound::Excluded(after),
            _ => Bound::Included(prefix),
        };
        let limit = limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut more = false;
        for (key, kv) in state.data.range::<str, _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(kv.clone());
        }
        Ok(ListResult {
            items,
            revision: state.revision,
            more,
        })
    }

    async fn list_at(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> Result<ListResult, StoreError> {
        // Events being written to the log are briefly in neither the queue nor the history.
        for _ in 0..LIST_AT_ATTEMPTS {
            let listed = self
                .shared
                .lock()?
                .list_at(prefix, start_after, limit, revision)?;
            if let Some(listed) = listed {
                return Ok(listed);
            }
            tokio::time::sleep(LIST_AT_PAUSE).await;
        }
        Err(StoreError::Unavailable {
            message: format!(
                "listing at revision {revision}: the store log did not catch up within {:?}",
                LIST_AT_PAUSE * LIST_AT_ATTEMPTS
            ),
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Create(value)).await
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Update(value, expected)).await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<KeyValue, StoreError> {
        self.write(key, Write::Delete(expected)).await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let mut state = self.shared.lock()?;
        if after < state.floor {
            let compacted = StoreError::Compacted {
                requested: after,
                oldest: state.floor,
            };
            return Ok(Box::pin(futures::stream::iter([Err(compacted)])));
        }
        let replay: VecDeque<WatchEvent> = state
            .history
            .iter()
            .filter(|e| e.kv.mod_revision > after && e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(self.shared.config.watch_buffer);
        let overflow = Arc::new(Mutex::new(None));
        let id = self.shared.next_watcher.fetch_add(1, Ordering::Relaxed);
        state.watchers.insert(
            id,
            Watcher {
                prefix: prefix.to_owned(),
                // Every later event is newer than the replayed history; `after` only filters
                // events below a start revision that lies in the future.
                after,
                tx,
                overflow: overflow.clone(),
            },
        );
        Ok(Box::pin(MemoryWatch {
            id,
            store: Arc::downgrade(&self.shared),
            replay,
            rx,
            overflow,
            last: after,
            done: false,
        }))
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        Ok(self.shared.lock()?.revision)
    }
}

#[cfg(test)]
mod tests;
