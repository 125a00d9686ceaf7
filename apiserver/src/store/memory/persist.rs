//! On-disk format of a persistent memory store: a snapshot plus an append-only write log.
//!
//! Both files are sequences of frames
//! `[payload length: u32 LE][crc32 of the length bytes: u32 LE][crc32 of payload: u32 LE][payload]`.
//! The length has its own checksum so that a damaged length in the middle of the log is reported
//! as corruption instead of being mistaken for a torn tail (which would silently drop the rest).
//!
//! * `snapshot`: a header frame (`MAGIC`, revision, key count) followed by one frame per key. It is
//!   written to `snapshot.tmp`, fsynced and renamed, so it is either complete or absent.
//! * `wal.old` (only while a snapshot is being written, or after a crash during one) and
//!   `wal.log`: one frame per write since the snapshot, replayed in that order. A write is acknowledged only after the
//!   frame is fsynced. Records at or below the snapshot revision are skipped on recovery (a
//!   snapshot may already contain writes that reach the log after it was taken).
//!
//! Recovery drops a torn *last* frame with a warning (a crash mid-append: a frame prefix, a last
//! frame failing its checksum, or trailing zero bytes) and truncates the log there; any other bad
//! frame is reported as corruption at its offset.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::State;
use crate::store::{EventKind, KeyValue, Revision, WatchEvent};

const MAGIC: &[u8; 8] = b"KRSNAP01";
const FRAME_HEADER: usize = 12;
const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;

pub(super) const LOG_FILE: &str = "wal.log";
pub(super) const SNAPSHOT_FILE: &str = "snapshot";
/// The log segment a snapshot in progress covers (see `wal`).
pub(super) const OLD_LOG_FILE: &str = "wal.old";

/// Failure to open or recover a persistent memory store.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("state directory I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt store file {path} at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl PersistError {
    /// Whether opening again may succeed without operator action.
    pub fn is_retryable(&self) -> bool {
        match self {
            PersistError::Io { .. } => true,
            PersistError::Corrupt { .. } => false,
        }
    }

    /// A short, closed label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            PersistError::Io { .. } => "io",
            PersistError::Corrupt { .. } => "corrupt",
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PersistError + '_ {
    move |source| PersistError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Appends one framed payload to `out`.
fn frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn put_str(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes a write event as a log frame. A delete carries no value: recovery takes it from the
/// key's current value.
pub(super) fn encode_event(out: &mut Vec<u8>, event: &WatchEvent) {
    let kv = &event.kv;
    let mut payload = Vec::with_capacity(32 + kv.key.len() + kv.value.len());
    payload.push(match event.kind {
        EventKind::Put => OP_PUT,
        EventKind::Delete => OP_DELETE,
    });
    payload.extend_from_slice(&kv.mod_revision.to_le_bytes());
    payload.extend_from_slice(&kv.create_revision.to_le_bytes());
    put_str(&mut payload, kv.key.as_bytes());
    if event.kind == EventKind::Put {
        put_str(&mut payload, &kv.value);
    }
    frame(out, &payload);
}

/// A cursor over one frame's payload; every read reports truncation instead of panicking.
struct Fields<'a> {
    buf: &'a [u8],
}

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err(format!(
                "record ends early: wanted {n} more bytes, have {}",
                self.buf.len()
            ));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn i64(&mut self) -> Result<i64, String> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(i64::from_le_bytes(b))
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        self.take(u32::from_le_bytes(b) as usize)
    }

    fn key(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "key is not UTF-8".to_owned())
    }
}

/// One frame found in a file, or how the file ends.
enum Next<'a> {
    Frame(&'a [u8]),
    End,
    /// The file ends inside a frame, or its last frame fails its checksum.
    TornTail(String),
}

/// Reads the frame at `offset`; a bad frame that is not the last one is corruption.
fn next_frame<'a>(data: &'a [u8], offset: usize, path: &Path) -> Result<Next<'a>, PersistError> {
    let rest = &data[offset..];
    if rest.is_empty() {
        return Ok(Next::End);
    }
    let corrupt = |reason: &str| PersistError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason: reason.to_owned(),
    };
    // A crash mid-append leaves a prefix of the frame, possibly followed by zeroed blocks.
    let only_zeros = rest.iter().all(|&byte| byte == 0);
    if rest.len() < FRAME_HEADER {
        return Ok(Next::TornTail(format!(
            "{} trailing bytes are not a frame header",
            rest.len()
        )));
    }
    let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
    let len_check = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let crc = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
    if crc32fast::hash(&len_bytes) != len_check {
        if only_zeros {
            return Ok(Next::TornTail(format!(
                "{} trailing zero bytes",
                rest.len()
            )));
        }
        return Err(corrupt("frame length fails its checksum"));
    }
    let len = u32::from_le_bytes(len_bytes) as usize;
    if rest.len() < FRAME_HEADER + len {
        return Ok(Next::TornTail(format!(
            "frame of {len} bytes runs past the end of the file"
        )));
    }
    let payload = &rest[FRAME_HEADER..FRAME_HEADER + len];
    if crc32fast::hash(payload) != crc {
        if rest.len() == FRAME_HEADER + len {
            return Ok(Next::TornTail("last frame fails its checksum".to_owned()));
        }
        return Err(corrupt(
            "checksum mismatch in a frame followed by more data",
        ));
    }
    Ok(Next::Frame(payload))
}

fn read_all(path: &Path) -> Result<Option<Vec<u8>>, PersistError> {
    match File::open(path) {
        Ok(mut f) => {
            let mut data = Vec::new();
            f.read_to_end(&mut data).map_err(io_err(path))?;
            Ok(Some(data))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Loads the snapshot into `state`; returns the snapshot revision (0 without a snapshot).
pub(super) fn load_snapshot(path: &Path, state: &mut State) -> Result<Revision, PersistError> {
    let Some(data) = read_all(path)? else {
        return Ok(0);
    };
    let corrupt = |offset: usize, reason: String| PersistError::Corrupt {
        path: path.to_owned(),
        offset: offset as u64,
        reason,
    };
    // A snapshot is renamed into place only when complete, so a torn one is corruption too.
    let mut offset = 0;
    let mut frames = Vec::new();
    loop {
        match next_frame(&data, offset, path)? {
            Next::Frame(payload) => {
                frames.push((offset, payload));
                offset += FRAME_HEADER + payload.len();
            }
            Next::End => break,
            Next::TornTail(reason) => return Err(corrupt(offset, reason)),
        }
    }
    let Some(((_, header), entries)) = frames.split_first() else {
        return Err(corrupt(0, "empty snapshot".to_owned()));
    };
    let mut h = Fields { buf: header };
    let (magic, revision, count) = (|| Ok::<_, String>((h.take(8)?, h.i64()?, h.i64()?)))()
        .map_err(|reason| corrupt(0, reason))?;
    if magic != MAGIC || count != entries.len() as i64 {
        return Err(corrupt(
            0,
            format!("bad header (magic or key count {count})"),
        ));
    }
    for (offset, payload) in entries {
        let mut f = Fields { buf: payload };
        let kv = (|| {
            Ok::<_, String>(KeyValue {
                create_revision: f.i64()?,
                mod_revision: f.i64()?,
                key: f.key()?,
                value: Bytes::copy_from_slice(f.bytes()?),
            })
        })()
        .map_err(|reason| corrupt(*offset, reason))?;
        state.data.insert(kv.key.clone(), kv);
    }
    state.revision = revision;
    state.floor = revision;
    Ok(revision)
}

/// Replays the log into `state` (skipping records at or below `snapshot_revision`), truncating a
/// torn tail. Returns the number of records kept in the log.
pub(super) fn replay_log(
    path: &Path,
    state: &mut State,
    snapshot_revision: Revision,
    history_size: usize,
) -> Result<u64, PersistError> {
    let Some(data) = read_all(path)? else {
        return Ok(0);
    };
    let mut offset = 0;
    let mut records = 0;
    loop {
        let payload = match next_frame(&data, offset, path)? {
            Next::Frame(payload) => payload,
            Next::End => break,
            Next::TornTail(reason) => {
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    dropped_bytes = data.len() - offset,
                    %reason,
                    "dropping torn last record of the store log"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(io_err(path))?;
                file.set_len(offset as u64).map_err(io_err(path))?;
                file.sync_all().map_err(io_err(path))?;
                break;
            }
        };
        let event = decode_event(payload, state, snapshot_revision).map_err(|reason| {
            PersistError::Corrupt {
                path: path.to_owned(),
                offset: offset as u64,
                reason,
            }
        })?;
        offset += FRAME_HEADER + payload.len();
        records += 1;
        if let Some(event) = event {
            state.replay_event(&event);
            state.push_history(event, history_size);
        }
    }
    Ok(records)
}

/// Decodes a log record against the current state; `None` for a record the snapshot covers.
fn decode_event(
    payload: &[u8],
    state: &State,
    snapshot_revision: Revision,
) -> Result<Option<WatchEvent>, String> {
    let mut f = Fields { buf: payload };
    let op = f.u8()?;
    let mod_revision = f.i64()?;
    let create_revision = f.i64()?;
    let key = f.key()?;
    if mod_revision <= snapshot_revision {
        return Ok(None);
    }
    if mod_revision <= state.revision {
        return Err(format!(
            "revision {mod_revision} does not follow revision {}",
            state.revision
        ));
    }
    let prev = state.data.get(&key).cloned();
    match op {
        OP_PUT => {
            let value = Bytes::copy_from_slice(f.bytes()?);
            let kv = KeyValue {
                key,
                value,
                create_revision,
                mod_revision,
            };
            Ok(Some(WatchEvent {
                kind: EventKind::Put,
                kv,
                prev,
            }))
        }
        OP_DELETE => {
            let Some(last) = prev else {
                return Err(format!("delete of absent key {key}"));
            };
            let kv = KeyValue {
                mod_revision,
                ..last.clone()
            };
            Ok(Some(WatchEvent {
                kind: EventKind::Delete,
                kv,
                prev: Some(last),
            }))
        }
        other => Err(format!("unknown record type {other}")),
    }
}

/// Writes a complete snapshot of `data` at `revision` and atomically replaces the old one.
pub(super) fn write_snapshot<'a>(
    dir: &Path,
    revision: Revision,
    data: impl ExactSizeIterator<Item = &'a KeyValue>,
) -> Result<u64, PersistError> {
    let tmp = dir.join("snapshot.tmp");
    let file = File::create(&tmp).map_err(io_err(&tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut buf = Vec::new();
    let mut written = 0u64;
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&revision.to_le_bytes());
    header.extend_from_slice(&(data.len() as i64).to_le_bytes());
    frame(&mut buf, &header);
    for kv in data {
        let mut payload = Vec::with_capacity(24 + kv.key.len() + kv.value.len());
        payload.extend_from_slice(&kv.create_revision.to_le_bytes());
        payload.extend_from_slice(&kv.mod_revision.to_le_bytes());
        put_str(&mut payload, kv.key.as_bytes());
        put_str(&mut payload, &kv.value);
        frame(&mut buf, &payload);
        if buf.len() >= 1 << 20 {
            written += buf.len() as u64;
            out.write_all(&buf).map_err(io_err(&tmp))?;
            buf.clear();
        }
    }
    written += buf.len() as u64;
    out.write_all(&buf).map_err(io_err(&tmp))?;
    let file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    let dest = dir.join(SNAPSHOT_FILE);
    fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
    sync_dir(dir)?;
    Ok(written)
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}
