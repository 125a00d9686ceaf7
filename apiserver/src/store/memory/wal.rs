//! Group commit of a persistent memory store's writes.
//!
//! A writer applies its change under the state lock and appends the encoded record to the shared
//! queue, then waits (on the blocking pool) until a flush covers its revision. Whoever takes the
//! log file lock first writes and fsyncs everything queued so far, so concurrent writers share one
//! fsync. Events are published to watchers only after they are durable, in revision order (the
//! publisher holds the file lock), so no watcher sees a revision a crash could take back.
//! Reads may see a write before its fsync completes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::persist::{self, OLD_LOG_FILE};
use super::Shared;
use crate::store::{KeyValue, Revision, StoreError, WatchEvent};

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
    pub(super) log: Arc<Mutex<LogFile>>,
    pub(super) durable: AtomicI64,
    pub(super) snapshot_every: u64,
    /// The background snapshot writer, if one was started.
    pub(super) snapshotter: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Wal {
    /// Waits for a running snapshot, so that a store reopened after this one is dropped never
    /// races with its files.
    fn drop(&mut self) {
        let running = match self.snapshotter.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = running {
            let _ = handle.join();
        }
    }
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
            self.start_snapshot(wal, &mut log)?;
        }
        Ok(())
    }

    /// Starts writing a snapshot of the current state in the background (called with the log
    /// lock held). The log is rotated first: `wal.log` becomes `wal.old`, which holds only
    /// records the snapshot covers and is deleted once the snapshot is in place; recovery replays
    /// `wal.old` then `wal.log` if a crash comes first.
    fn start_snapshot(&self, wal: &Wal, log: &mut LogFile) -> Result<(), StoreError> {
        let mut slot = wal
            .snapshotter
            .lock()
            .map_err(|_| internal("snapshot lock poisoned".to_owned()))?;
        if slot.as_ref().is_some_and(|running| !running.is_finished()) {
            return Ok(());
        }
        if let Some(finished) = slot.take() {
            let _ = finished.join();
        }
        let (revision, data) = {
            let state = self.lock()?;
            let data: Vec<KeyValue> = state.data.values().cloned().collect();
            (state.revision, data)
        };
        log.records = 0;
        let old = wal.dir.join(OLD_LOG_FILE);
        // A segment left by a failed snapshot is covered by this one too; keep appending.
        if !old.exists() {
            if let Err(e) = rotate(&wal.dir, log, &old) {
                let message = format!("rotating store log {}: {e}", log.path.display());
                tracing::error!(%message, "refusing further writes");
                if let Some(queue) = self.lock()?.queue.as_mut() {
                    queue.failed = Some(message.clone());
                }
                return Err(internal(message));
            }
        }
        let dir = wal.dir.clone();
        let log = wal.log.clone();
        let spawned = std::thread::Builder::new()
            .name("store-snapshot".to_owned())
            .spawn(move || write_snapshot(&dir, revision, &data, &old, &log));
        match spawned {
            Ok(handle) => *slot = Some(handle),
            // The log still holds everything; a later flush tries again.
            Err(e) => tracing::warn!(error = %e, "cannot start the store snapshot thread"),
        }
        Ok(())
    }
}

/// Moves the current log aside as `old` and continues in a fresh, empty log.
fn rotate(dir: &Path, log: &mut LogFile, old: &Path) -> io::Result<()> {
    fs::rename(&log.path, old)?;
    let fresh = OpenOptions::new().create(true).append(true).open(&log.path);
    let file = match fresh {
        Ok(file) => file,
        Err(e) => {
            // Keep `log.file` and the file named `wal.log` the same file.
            fs::rename(old, &log.path)?;
            return Err(e);
        }
    };
    File::open(dir)?.sync_all()?;
    log.file = file;
    log.bytes = 0;
    Ok(())
}

/// Body of the snapshot thread.
fn write_snapshot(
    dir: &Path,
    revision: Revision,
    data: &[KeyValue],
    old: &Path,
    log: &Mutex<LogFile>,
) {
    let written = persist::write_snapshot(dir, revision, data.iter()).and_then(|size| {
        match fs::remove_file(old) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(persist::io_err(old)(e)),
        }
        persist::sync_dir(dir)?;
        Ok(size)
    });
    match written {
        Ok(size) => {
            if let Ok(mut log) = log.lock() {
                log.snapshot_bytes = size;
            }
            tracing::info!(
                revision,
                keys = data.len(),
                bytes = size,
                "store snapshot written"
            );
        }
        // The logs still hold everything; a later flush tries again.
        Err(e) => tracing::warn!(error = %e, "store snapshot failed"),
    }
}
