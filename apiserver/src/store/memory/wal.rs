//! Group commit of a persistent memory store's writes.
//!
//! A writer applies its change under the state lock and appends the encoded record to the shared
//! queue, then waits (on the blocking pool) until a flush covers its revision. Whoever takes the
//! log file lock first writes and fsyncs everything queued so far, so concurrent writers share one
//! fsync. Events are published to watchers only after they are durable, in revision order (the
//! publisher holds the file lock), so no watcher sees a revision a crash could take back.
//! Reads may see a write before its fsync completes.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use super::persist::{self, PersistError};
use super::Shared;
use crate::store::{Revision, StoreError, WatchEvent};

/// Writes applied to the state but not yet in the log; guarded by the state lock.
#[derive(Default)]
pub(super) struct LogQueue {
    pub(super) bytes: Vec<u8>,
    pub(super) events: Vec<WatchEvent>,
    /// Set after a failed log write: the store refuses further writes.
    pub(super) failed: Option<String>,
}

/// The log file and what is known to be on disk.
pub(super) struct Wal {
    pub(super) dir: PathBuf,
    pub(super) log: Mutex<LogFile>,
    pub(super) durable: AtomicI64,
    pub(super) snapshot_every: u64,
}

pub(super) struct LogFile {
    pub(super) file: File,
    pub(super) path: PathBuf,
    /// Records appended since the last snapshot.
    pub(super) records: u64,
    /// Current size of the log.
    pub(super) bytes: u64,
    /// Size of the last snapshot.
    pub(super) snapshot_bytes: u64,
}

fn internal(message: String) -> StoreError {
    StoreError::Internal { message }
}

impl Shared {
    /// Blocks until `revision` is durable (flushing the queue if nobody else is).
    pub(super) fn flush(&self, revision: Revision) -> Result<(), StoreError> {
        let Some(wal) = &self.wal else {
            return Ok(());
        };
        if wal.durable.load(Ordering::Acquire) >= revision {
            return Ok(());
        }
        let mut log = wal
            .log
            .lock()
            .map_err(|_| internal("store log lock poisoned".to_owned()))?;
        if wal.durable.load(Ordering::Acquire) >= revision {
            return Ok(());
        }
        let (bytes, events) = {
            let mut state = self.lock()?;
            let Some(queue) = state.queue.as_mut() else {
                return Ok(());
            };
            if let Some(failed) = &queue.failed {
                return Err(internal(failed.clone()));
            }
            (
                std::mem::take(&mut queue.bytes),
                std::mem::take(&mut queue.events),
            )
        };
        let Some(last) = events.last().map(|e| e.kv.mod_revision) else {
            return Ok(());
        };
        let count = events.len() as u64;
        if let Err(e) = log
            .file
            .write_all(&bytes)
            .and_then(|()| log.file.sync_data())
        {
            let message = format!("writing store log {}: {e}", log.path.display());
            tracing::error!(%message, "store log write failed; refusing further writes");
            if let Some(queue) = self.lock()?.queue.as_mut() {
                queue.failed = Some(message.clone());
            }
            return Err(internal(message));
        }
        {
            let mut state = self.lock()?;
            for event in events {
                state.publish(event, self.config.history_size);
            }
        }
        wal.durable.store(last, Ordering::Release);
        log.records += count;
        log.bytes += bytes.len() as u64;
        // Snapshot only once the log outweighs the snapshot, which bounds both the write
        // amplification (a large store is not rewritten every few writes) and recovery time.
        if log.records >= wal.snapshot_every && log.bytes >= log.snapshot_bytes {
            match self.snapshot(wal, &mut log) {
                Ok(size) => {
                    log.records = 0;
                    log.bytes = 0;
                    log.snapshot_bytes = size;
                }
                // The log still holds everything; the next flush tries again.
                Err(e) => tracing::warn!(error = %e, "store snapshot failed"),
            }
        }
        Ok(())
    }

    /// Snapshots the current state and empties the log (called with the log lock held).
    fn snapshot(&self, wal: &Wal, log: &mut LogFile) -> Result<u64, StoreError> {
        let (revision, data) = {
            let state = self.lock()?;
            (
                state.revision,
                state.data.values().cloned().collect::<Vec<_>>(),
            )
        };
        let on_disk = |e: PersistError| internal(e.to_string());
        let size = persist::write_snapshot(&wal.dir, revision, data.iter()).map_err(on_disk)?;
        // Queued records at or below `revision` that reach the new log later are skipped on
        // recovery, so truncating here loses nothing.
        let truncate = log.file.set_len(0).and_then(|()| log.file.sync_all());
        truncate.map_err(|e| on_disk(persist::io_err(&log.path)(e)))?;
        tracing::info!(
            revision,
            keys = data.len(),
            bytes = size,
            "store snapshot written, log truncated"
        );
        Ok(size)
    }
}
